//! `{{name}}`: a wasmbgp exporter (world `exporter`). Counts the routes each
//! neighbor announces and withdraws (after import policy) into two metrics,
//! served on wasmbgp's `/metrics` as `wasmbgp_plugin_routes_announced_total` and
//! `wasmbgp_plugin_routes_withdrawn_total` with labels `plugin` and `neighbor`.
//!
//! No settings.

use wasmbgp_sdk::exporter::{Event, Exporter, RouteDirection};
use wasmbgp_sdk::metrics::Counter;
use wasmbgp_sdk::{Error, Settings};

struct RouteCounter {
    announced: Counter,
    withdrawn: Counter,
    /// Every instance first receives a snapshot of the routes as they are (closed
    /// by `EndOfSnapshot`). Metric values outlive restarts, so only the changes
    /// after it are counted.
    in_snapshot: bool,
}

impl Exporter for RouteCounter {
    /// Called once per instance with `[plugin.settings]`. An error is a
    /// configuration error: the plugin does not start.
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&[])?;
        Ok(RouteCounter {
            announced: Counter::register(
                "routes_announced_total",
                "Routes announced by the neighbor.",
                &["neighbor"],
            )?,
            withdrawn: Counter::register(
                "routes_withdrawn_total",
                "Routes withdrawn by the neighbor.",
                &["neighbor"],
            )?,
            in_snapshot: true,
        })
    }

    /// Called for each event, in the order the speaker saw them.
    fn on_event(&mut self, event: Event<'_>) {
        match event {
            Event::EndOfSnapshot => self.in_snapshot = false,
            Event::Routes(routes)
                if !self.in_snapshot && routes.direction() == RouteDirection::Received =>
            {
                let neighbor = routes.session().neighbor.to_string();
                // A failed update (past `grants.max-series`) is counted by the host.
                let _ = self.announced.add(&[&neighbor], routes.announced_count() as f64);
                let _ = self.withdrawn.add(&[&neighbor], routes.withdrawn_count() as f64);
            }
            _ => {}
        }
    }
}

wasmbgp_sdk::export_exporter!(RouteCounter);
