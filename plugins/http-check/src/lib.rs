//! `http-check`: healthy while `GET url` answers with the expected status
//! (and, optionally, a body containing a given text).
//!
//! Settings: `url` ("http://IP:PORT/path", required), `expect-status`
//! (default 200), `expect-body` (substring, optional), `timeout` (default 1s).

use std::time::Duration;

use wasmbgp_sdk::{Error, HealthCheck, Settings, probe};

/// Bodies are read up to this many bytes.
const MAX_BODY: u32 = 64 * 1024;

struct HttpCheck {
    url: String,
    status: u16,
    body: Option<String>,
    timeout: Duration,
}

impl HealthCheck for HttpCheck {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&["url", "expect-status", "expect-body", "timeout"])?;
        Ok(HttpCheck {
            url: settings.required("url")?.to_string(),
            status: settings.parse_or("expect-status", 200)?,
            body: settings.get("expect-body").map(String::from),
            timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
        })
    }

    fn check(&mut self) -> Result<String, Error> {
        let response = probe::http_get(&self.url, self.timeout, MAX_BODY)?;
        if response.status != self.status {
            return Err(format!(
                "{} answered {} (expected {})",
                self.url, response.status, self.status
            )
            .into());
        }
        if let Some(needle) = &self.body
            && !String::from_utf8_lossy(&response.body).contains(needle.as_str())
        {
            return Err(format!("{} body lacks {needle:?}", self.url).into());
        }
        Ok(format!(
            "{} answered {} in {} µs",
            self.url, response.status, response.elapsed_us
        ))
    }
}

wasmbgp_sdk::export_healthcheck!(HttpCheck);
