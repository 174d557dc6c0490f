//! `tcp-check`: healthy while a TCP connection to `address` succeeds.
//!
//! Settings: `address` ("IP:PORT", required), `timeout` (default 1s).

use std::time::Duration;

use wasmbgp_sdk::{Error, HealthCheck, Settings, probe};

struct TcpCheck {
    address: String,
    timeout: Duration,
}

impl HealthCheck for TcpCheck {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.only(&["address", "timeout"])?;
        Ok(TcpCheck {
            address: settings.required("address")?.to_string(),
            timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
        })
    }

    fn check(&mut self) -> Result<String, Error> {
        let micros = probe::tcp_connect(&self.address, self.timeout)?;
        Ok(format!("connected to {} in {micros} µs", self.address))
    }
}

wasmbgp_sdk::export_healthcheck!(TcpCheck);
