//! `http-check`: healthy while `GET url` answers with the expected status
//! (and, optionally, a body containing a given text).
//!
//! Settings: `url` ("http://IP:PORT/path" or "https://IP:PORT/path",
//! required), `tls-server-name` (https: the name the certificate must be valid
//! for, sent as SNI and Host; default: the certificate must be valid for the
//! IP), `expect-status` (default 200), `expect-body` (substring, optional),
//! `timeout` (default 1s).

use std::time::Duration;

use wasmbgp_sdk::{Error, HealthCheck, Settings, probe};

/// Bodies are read up to this many bytes.
const MAX_BODY: u32 = 64 * 1024;

struct HttpCheck {
    url: String,
    server_name: Option<String>,
    status: u16,
    body: Option<String>,
    timeout: Duration,
}

impl HttpCheck {
    /// The URL, with the server name when there is one, for check results.
    fn target(&self) -> String {
        match &self.server_name {
            Some(name) => format!("{} ({name})", self.url),
            None => self.url.clone(),
        }
    }
}

impl HealthCheck for HttpCheck {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&[
            "url",
            "tls-server-name",
            "expect-status",
            "expect-body",
            "timeout",
        ])?;
        let url = settings.required("url")?.trim().to_string();
        let server_name = settings
            .get("tls-server-name")
            .map(|n| n.trim().to_string());
        if server_name.is_some() && !url.starts_with("https://") {
            return Err(format!(
                "setting `tls-server-name` is for https:// URLs, and `url` is {url:?}"
            )
            .into());
        }
        if server_name.as_deref() == Some("") {
            return Err("setting `tls-server-name` is empty".into());
        }
        Ok(HttpCheck {
            url,
            server_name,
            status: settings.parse_or("expect-status", 200)?,
            body: settings.get("expect-body").map(String::from),
            timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
        })
    }

    fn check(&mut self) -> Result<String, Error> {
        let response = probe::http_fetch(
            &self.url,
            self.server_name.as_deref(),
            self.timeout,
            MAX_BODY,
        )?;
        if response.status != self.status {
            return Err(format!(
                "{} answered {} (expected {})",
                self.target(),
                response.status,
                self.status
            )
            .into());
        }
        if let Some(needle) = &self.body
            && !String::from_utf8_lossy(&response.body).contains(needle.as_str())
        {
            return Err(format!("{} body lacks {needle:?}", self.target()).into());
        }
        Ok(format!(
            "{} answered {} in {} µs",
            self.target(),
            response.status,
            response.elapsed_us
        ))
    }
}

wasmbgp_sdk::export_healthcheck!(HttpCheck);

#[cfg(test)]
mod tests {
    use super::*;

    fn init(pairs: &[(&str, &str)]) -> Result<HttpCheck, Error> {
        HttpCheck::init(&Settings::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    #[test]
    fn tls_server_name_is_for_https() {
        let c = init(&[
            ("url", "https://192.0.2.10:8443/healthz"),
            ("tls-server-name", "vip.example.net"),
        ])
        .unwrap();
        assert_eq!(c.server_name.as_deref(), Some("vip.example.net"));
        assert_eq!(
            c.target(),
            "https://192.0.2.10:8443/healthz (vip.example.net)"
        );
        assert!(
            init(&[("url", "https://192.0.2.10/")])
                .unwrap()
                .server_name
                .is_none()
        );
        let e = init(&[
            ("url", "http://192.0.2.10/"),
            ("tls-server-name", "vip.example.net"),
        ])
        .err()
        .unwrap();
        assert!(e.to_string().contains("https://"), "{e}");
        assert!(init(&[("url", "https://192.0.2.10/"), ("tls-server-name", " ")]).is_err());
        assert!(init(&[("url", "http://192.0.2.10/"), ("colour", "red")]).is_err());
    }
}
