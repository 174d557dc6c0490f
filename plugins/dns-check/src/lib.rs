//! `dns-check`: healthy while `server` resolves `name` (the anycast DNS
//! check: is this resolver answering?).
//!
//! Settings: `server` ("IP:PORT", required), `name` (required), `type`
//! ("A" or "AAAA", default A), `expect` (comma-separated addresses that must
//! all be in the answer; default: any address), `timeout` (default 1s).

use std::time::Duration;

use wasmbgp_sdk::probe::RecordType;
use wasmbgp_sdk::{Error, HealthCheck, Settings, probe};

struct DnsCheck {
    server: String,
    name: String,
    kind: RecordType,
    expect: Vec<String>,
    timeout: Duration,
}

impl HealthCheck for DnsCheck {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&["server", "name", "type", "expect", "timeout"])?;
        let kind = match settings.get_or("type", "A").to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            other => {
                return Err(
                    format!("setting `type` = {other:?} is invalid: expected A or AAAA").into(),
                );
            }
        };
        Ok(DnsCheck {
            server: settings.required("server")?.to_string(),
            name: settings.required("name")?.to_string(),
            kind,
            expect: settings.list("expect"),
            timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
        })
    }

    fn check(&mut self) -> Result<String, Error> {
        let answer = probe::dns_query(&self.server, &self.name, self.kind, self.timeout)?;
        if answer.rcode != 0 {
            return Err(format!(
                "{} answered rcode {} for {}",
                self.server, answer.rcode, self.name
            )
            .into());
        }
        if answer.addresses.is_empty() {
            return Err(format!("{} has no address for {}", self.server, self.name).into());
        }
        if let Some(missing) = self
            .expect
            .iter()
            .find(|want| !answer.addresses.contains(want))
        {
            return Err(format!(
                "{} lacks {missing} for {} (got {})",
                self.server,
                self.name,
                answer.addresses.join(", ")
            )
            .into());
        }
        Ok(format!(
            "{} resolved {} to {} in {} µs",
            self.server,
            self.name,
            answer.addresses.join(", "),
            answer.elapsed_us
        ))
    }
}

wasmbgp_sdk::export_healthcheck!(DnsCheck);
