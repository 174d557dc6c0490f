//! `webhook-alert`: POSTs a JSON alert to `url` (granted in
//! `grants.http-out`) when a BGP session leaves established or a
//! NOTIFICATION is received. See README.md.
//!
//! The pure parts are plain modules tested natively: `alert` (the JSON),
//! `queue` (bounded, retries with backoff), `webhook` (which events alert,
//! the delivery loop), `http` (the URL; the `wasi:http` transport in the
//! component). This file adapts the SDK's exporter events to them.

mod alert;
mod http;
mod queue;
mod webhook;

use std::time::Duration;

use wasmbgp_sdk::exporter::MessageDirection;
use wasmbgp_sdk::{Error, Event, Exporter, Settings, clock, log};

use crate::http::Url;
use crate::queue::RetryPolicy;
use crate::webhook::{Options, Report, StateChange, Webhook};

/// The settings the plugin knows.
const SETTINGS: &[&str] = &[
    "url",
    "retries",
    "timeout",
    "max-pending",
    "max-wait",
    "session-up",
    "sent-notifications",
];

fn flag(settings: &Settings, key: &str) -> Result<bool, Error> {
    match settings.get_or(key, "false") {
        "true" => Ok(true),
        "false" => Ok(false),
        other => {
            Err(format!("setting `{key}` = {other:?} is invalid: expected true or false").into())
        }
    }
}

/// Parses the settings.
fn options(settings: &Settings) -> Result<(Options, Url), Error> {
    settings.only(SETTINGS)?;
    let text = settings.required("url")?;
    let url = Url::parse(text).map_err(|why| Error::from(format!("setting `url`: {why}")))?;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let options = Options {
        url: text.to_string(),
        policy: RetryPolicy {
            retries: settings.parse_or("retries", 3)?,
            initial_ms: 500,
            max_ms: 30_000,
        },
        timeout_ms: ms(settings.duration_or("timeout", Duration::from_secs(2))?),
        max_pending: settings.parse_or("max-pending", 100)?,
        max_wait_ms: ms(settings.duration_or("max-wait", Duration::from_millis(20))?),
        session_up: flag(settings, "session-up")?,
        sent_notifications: flag(settings, "sent-notifications")?,
    };
    Ok((options, url))
}

struct Log;

impl Report for Log {
    fn info(&mut self, message: &str) {
        log::info(message);
    }
    fn warn(&mut self, message: &str) {
        log::warn(message);
    }
}

/// The exporter.
struct WebhookAlert {
    hook: Webhook,
    transport: http::WasiHttp,
}

impl Exporter for WebhookAlert {
    fn init(settings: &Settings) -> Result<Self, Error> {
        let (options, url) = options(settings)?;
        let transport = http::WasiHttp::new(url, options.timeout_ms);
        Ok(WebhookAlert {
            hook: Webhook::new(options),
            transport,
        })
    }

    fn on_event(&mut self, event: Event<'_>) {
        match event {
            Event::Session(change) => {
                let s = &change.session;
                let change = StateChange {
                    neighbor: s.neighbor.to_string(),
                    peer_as: s.peer_as,
                    old: change.old.name(),
                    new: change.new.name(),
                    reason: &change.reason,
                };
                self.hook.on_state(&change, clock::now_ms(), &mut Log);
            }
            Event::Notification(n) => self.hook.on_notification(
                n.session.neighbor.to_string(),
                n.session.peer_as,
                n.direction == MessageDirection::Received,
                n.code,
                n.subcode,
                &n.description,
                clock::now_ms(),
                &mut Log,
            ),
            Event::EndOfSnapshot => self.hook.end_of_snapshot(),
            Event::Lagged(n) => {
                // Changes were lost: alerting from a partial view could
                // report a session down that came back; start over.
                log::warn(&format!("{n} events were dropped (lagged): resyncing"));
                self.hook.snapshot_starts();
                wasmbgp_sdk::feed::resync();
            }
            _ => {}
        }
    }

    fn end_batch(&mut self) {
        self.hook.pump(
            &mut self.transport,
            &mut || clock::monotonic_us() / 1000,
            &mut Log,
        );
    }
}

wasmbgp_sdk::export_exporter!(WebhookAlert);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<(Options, Url), Error> {
        options(&Settings::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    #[test]
    fn settings() {
        let (o, url) = parse(&[("url", "http://127.0.0.1:9000/hook")]).unwrap();
        assert_eq!(o.policy.retries, 3);
        assert_eq!(o.timeout_ms, 2_000);
        assert_eq!(o.max_pending, 100);
        assert!(!o.session_up);
        assert_eq!(url.path, "/hook");
        let (o, _) = parse(&[
            ("url", "http://h/"),
            ("retries", "0"),
            ("timeout", "500ms"),
            ("session-up", "true"),
        ])
        .unwrap();
        assert_eq!(
            (o.policy.retries, o.timeout_ms, o.session_up),
            (0, 500, true)
        );
        assert!(parse(&[]).is_err());
        assert!(parse(&[("url", "ftp://h/")]).is_err());
        assert!(parse(&[("url", "http://h/"), ("retry", "1")]).is_err());
        assert!(parse(&[("url", "http://h/"), ("session-up", "yes")]).is_err());
    }
}
