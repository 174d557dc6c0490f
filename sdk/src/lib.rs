//! # wasmbgp-sdk
//!
//! Write [wasmbgp](../README.md) plugins in Rust. A plugin is a WebAssembly
//! component built for `wasm32-wasip2` against the `wasmbgp:plugin@0.1.0` WIT
//! package in `wit/`; this crate holds the generated bindings and the glue
//! that makes a health check a few lines long:
//!
//! ```ignore
//! use std::time::Duration;
//! use wasmbgp_sdk::{probe, Error, HealthCheck, Settings};
//!
//! struct TcpCheck { address: String, timeout: Duration }
//!
//! impl HealthCheck for TcpCheck {
//!     fn init(settings: &Settings) -> Result<Self, Error> {
//!         settings.only(&["address", "timeout"])?;
//!         Ok(TcpCheck {
//!             address: settings.required("address")?.to_string(),
//!             timeout: settings.duration_or("timeout", Duration::from_secs(1))?,
//!         })
//!     }
//!     fn check(&mut self) -> Result<String, Error> {
//!         let us = probe::tcp_connect(&self.address, self.timeout)?;
//!         Ok(format!("connected to {} in {us} µs", self.address))
//!     }
//! }
//!
//! wasmbgp_sdk::export_healthcheck!(TcpCheck);
//! ```
//!
//! `check` returning `Ok(detail)` means healthy; `Err(reason)` means
//! unhealthy. The host applies rise/fall hysteresis and announces or
//! withdraws the routes the operator configured.

#![warn(missing_docs)]

mod error;
mod settings;

pub use error::Error;
pub use settings::{Settings, SettingsError, parse_duration};

/// The bindings generated from `wit/` (world `healthcheck`). Most plugins
/// need only the friendlier modules re-exported at the crate root.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "healthcheck",
        pub_export_macro: true,
        export_macro_name: "__export_healthcheck_world",
        default_bindings_module: "wasmbgp_sdk::bindings",
    });
}

/// Shared types: [`types::Route`], [`types::Origin`], [`types::Health`].
pub use bindings::wasmbgp::plugin::types;

/// Announcing and withdrawing routes directly (needs `grants.neighbors`).
pub use bindings::wasmbgp::plugin::routes;

/// Wall-clock and monotonic time from the host.
pub use bindings::wasmbgp::plugin::clock;

/// The plugin's small key/value store that survives restarts and reloads.
pub use bindings::wasmbgp::plugin::state;

/// Network probes run by the host, limited to the plugin's grants.
pub mod probe {
    use std::time::Duration;

    pub use crate::bindings::wasmbgp::plugin::probe::{
        DnsAnswer, HttpResponse, ProbeError, RecordType,
    };
    use crate::bindings::wasmbgp::plugin::probe as raw;

    fn millis(timeout: Duration) -> u32 {
        u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
    }

    /// Connects to `target` ("IP:PORT") over TCP; returns the connect time
    /// in microseconds.
    pub fn tcp_connect(target: &str, timeout: Duration) -> Result<u64, ProbeError> {
        raw::tcp_connect(target, millis(timeout))
    }

    /// Asks the DNS server `server` ("IP:PORT") for records of `kind` for
    /// `name`.
    pub fn dns_query(
        server: &str,
        name: &str,
        kind: RecordType,
        timeout: Duration,
    ) -> Result<DnsAnswer, ProbeError> {
        raw::dns_query(server, name, kind, millis(timeout))
    }

    /// Sends `GET url` ("http://IP:PORT/path") and keeps at most `max_body`
    /// bytes of the body.
    pub fn http_get(url: &str, timeout: Duration, max_body: u32) -> Result<HttpResponse, ProbeError> {
        raw::http_get(url, millis(timeout), max_body)
    }

    /// A one-line description of a probe error, for check results and logs.
    pub fn describe(error: &ProbeError) -> String {
        match error {
            ProbeError::Denied(why) => format!("denied: {why}"),
            ProbeError::Timeout => "timed out".to_string(),
            ProbeError::Refused(why) => format!("refused: {why}"),
            ProbeError::Invalid(why) => format!("invalid: {why}"),
            ProbeError::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// Logging to the host log, tagged with the plugin's name.
pub mod log {
    pub use crate::bindings::wasmbgp::plugin::log::{Level, log};

    /// Logs `message` at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs `message` at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs `message` at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Logs `message` at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// A health check: the one trait a `healthcheck` plugin implements.
pub trait HealthCheck: Sized + 'static {
    /// Builds the check from the operator's settings. An error is a
    /// configuration error and is shown to the operator.
    fn init(settings: &Settings) -> Result<Self, Error>;

    /// Probes the service once: `Ok(detail)` when healthy, `Err(reason)`
    /// when not.
    fn check(&mut self) -> Result<String, Error>;
}

#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;

    use crate::{Error, HealthCheck, Settings};

    thread_local! {
        static INSTANCE: RefCell<Option<Box<dyn std::any::Any>>> = const { RefCell::new(None) };
    }

    pub fn init<T: HealthCheck>(settings: Vec<(String, String)>) -> Result<(), String> {
        let settings = Settings::new(settings);
        let check = T::init(&settings).map_err(|e| e.to_string())?;
        INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(check)));
        Ok(())
    }

    pub fn check<T: HealthCheck>() -> Result<String, String> {
        INSTANCE.with(|slot| {
            let mut slot = slot.borrow_mut();
            match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
                Some(check) => check.check().map_err(|e: Error| e.to_string()),
                None => Err("check called before a successful init".to_string()),
            }
        })
    }
}

/// Exports a [`HealthCheck`] implementation as the component's
/// `wasmbgp:plugin/health-check` interface. Invoke it once, at the crate's
/// top level: `wasmbgp_sdk::export_healthcheck!(MyCheck);`
#[macro_export]
macro_rules! export_healthcheck {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __WasmbgpHealthCheck;

        impl $crate::bindings::exports::wasmbgp::plugin::health_check::Guest for __WasmbgpHealthCheck {
            fn init(settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>)
                -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::init::<$ty>(settings)
            }
            fn check() -> ::std::result::Result<::std::string::String, ::std::string::String> {
                $crate::__private::check::<$ty>()
            }
        }

        $crate::bindings::__export_healthcheck_world!(__WasmbgpHealthCheck with_types_in $crate::bindings);
    };
}
