//! `{{name}}`: a wasmbgp health check (world `healthcheck`). Healthy while a TCP
//! connection to `address` succeeds.
//!
//! Settings: `address` ("IP:PORT", required; the config must grant it in
//! `grants.tcp`), `timeout` (default 1s).

use std::time::Duration;

use wasmbgp_sdk::{Error, HealthCheck, Settings, probe};

struct Check {
    address: String,
    timeout: Duration,
}

impl HealthCheck for Check {
    /// Called once per instance with `[plugin.settings]`. An error is a
    /// configuration error: the plugin does not start and the operator is told.
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&["address", "timeout"])?; // a misspelt setting is an error
        Ok(Check {
            address: settings.required("address")?.to_string(),
            timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
        })
    }

    /// Called on the host's schedule: `Ok(detail)` is healthy, `Err(reason)` is not.
    /// The host applies rise/fall hysteresis and announces or withdraws the routes.
    fn check(&mut self) -> Result<String, Error> {
        let micros = probe::tcp_connect(&self.address, self.timeout)?;
        Ok(format!("connected to {} in {micros} µs", self.address))
    }
}

wasmbgp_sdk::export_healthcheck!(Check);
