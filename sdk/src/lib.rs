//! # wasmbgp-sdk
//!
//! Write [wasmbgp](../README.md) plugins in Rust. A plugin is a WebAssembly
//! component built for `wasm32-wasip2` against the `wasmbgp:plugin@0.2.0`
//! WIT package in `wit/`, for one of three worlds:
//!
//! - **`healthcheck`**: implement [`HealthCheck`] and invoke
//!   [`export_healthcheck!`]. The host calls `check` on a schedule and,
//!   after rise/fall hysteresis, announces or withdraws the routes the
//!   operator configured. A check may also announce routes itself
//!   ([`routes`]).
//! - **`policy`**: implement [`Policy`] and invoke [`export_policy!`]. The
//!   host calls it with batches of routes received from a neighbor
//!   (import) or about to be sent to one (export); it accepts, rejects or
//!   modifies each route. FlowSpec rules go to [`Policy::evaluate_flow`],
//!   which accepts them unchanged unless the policy implements it.
//! - **`exporter`**: implement [`Exporter`] and invoke [`export_exporter!`].
//!   The host hands it batches of events (sessions, routes and FlowSpec
//!   rules as views over columns, End-of-RIB, NOTIFICATIONs, health,
//!   plugins); it passes them
//!   on through [`metrics`], [`output::append`] and the like. See
//!   [`exporter`].
//!
//! Every world may register and update [`metrics`].
//!
//! Routes travel in binary form (addresses as integers, communities as
//! numbers); this crate parses and prints the usual text:
//! [`Prefix`] ("192.0.2.0/24"), [`types::IpAddress`] ("2001:db8::1"),
//! [`Community`] ("65001:100", "no-export"), [`LargeCommunity`]
//! ("65001:1:2"), [`ExtendedCommunity`] ("target:65001:7").
//!
//! A health check:
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
//! unhealthy.
//!
//! A policy that tags the routes inside some prefixes:
//!
//! ```ignore
//! use wasmbgp_sdk::{Community, DataFile, Error, Modification, Policy, Prefix, PrefixSet, Route, Settings, Verdict};
//!
//! struct Tagger { prefixes: PrefixSet, tag: Modification }
//!
//! impl Policy for Tagger {
//!     fn init(settings: &Settings, _files: &[DataFile]) -> Result<Self, Error> {
//!         settings.only(&["prefixes", "community"])?;
//!         let community: Community = settings.required("community")?.parse()?;
//!         Ok(Tagger {
//!             prefixes: settings.parse_list::<Prefix>("prefixes")?.into_iter().collect(),
//!             tag: Modification::new().add_community(community),   // prepared once
//!         })
//!     }
//!     fn evaluate(&mut self, route: &Route<'_>) -> Verdict<'_> {
//!         if self.prefixes.covers(&route.prefix()) {
//!             Verdict::Modify(&self.tag)
//!         } else {
//!             Verdict::Accept
//!         }
//!     }
//! }
//!
//! wasmbgp_sdk::export_policy!(Tagger);
//! ```
//!
//! The policy glue is built for a budget of a few tens of nanoseconds per
//! route in the guest: a [`Route`] is a view over one row of the batch's
//! columns, and accept, reject and a modification kept by the plugin
//! allocate nothing per route; each distinct (attribute set, modification)
//! pair of a batch is applied once. See [`policy`] for the design.
//!
//! A policy imports only [`log`] and [`state`]; the other host interfaces
//! ([`probe`], [`routes`], [`clock`]) belong to the `healthcheck` world, and
//! a policy component that calls them is refused by the host.

#![warn(missing_docs)]

mod attributes;
mod error;
pub mod exporter;
pub mod flow;
mod flow_view;
mod hash;
pub mod metrics;
pub mod net;
pub mod policy;
mod prefix_map;
mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;

pub use attributes::OriginAs;
pub use error::Error;
pub use exporter::{Event, Exporter, Routes};
pub use flow::FlowRule;
pub use net::Prefix;
pub use policy::{
    BatchInfo, DataFile, Direction, FlowRoute, Modification, Policy, Route, Session, Verdict,
    find_file,
};
pub use prefix_map::{Covering, PrefixMap, PrefixSet};
pub use settings::{Settings, SettingsError, parse_duration};
pub use text::{
    Asn, Community, ExtendedCommunity, LargeCommunity, ParseError, parse_asn, push_json_string,
};
pub use types::{Attributes, IpAddress, Origin};

/// The bindings generated from `wit/`: world `healthcheck` here, world
/// `policy` in [`bindings::policy`], sharing the `types`, `log` and `state`
/// interfaces (the same Rust types in both). Most plugins need only the
/// friendlier modules re-exported at the crate root.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "healthcheck",
        pub_export_macro: true,
        export_macro_name: "__export_healthcheck_world",
        default_bindings_module: "wasmbgp_sdk::bindings",
        // Equality and hashing on attributes: the policy glue compares and
        // deduplicates them.
        additional_derives: [PartialEq, Eq, Hash],
    });

    /// World `policy`.
    pub mod policy {
        wit_bindgen::generate!({
            path: "../wit",
            world: "policy",
            pub_export_macro: true,
            export_macro_name: "__export_policy_world",
            default_bindings_module: "wasmbgp_sdk::bindings::policy",
            with: {
                "wasmbgp:plugin/types@0.2.0": crate::bindings::wasmbgp::plugin::types,
                "wasmbgp:plugin/log@0.2.0": crate::bindings::wasmbgp::plugin::log,
                "wasmbgp:plugin/state@0.2.0": crate::bindings::wasmbgp::plugin::state,
                "wasmbgp:plugin/metrics@0.2.0": crate::bindings::wasmbgp::plugin::metrics,
            },
            additional_derives: [PartialEq, Eq, Hash],
        });
    }

    /// World `exporter`.
    pub mod exporter {
        wit_bindgen::generate!({
            path: "../wit",
            world: "exporter",
            pub_export_macro: true,
            export_macro_name: "__export_exporter_world",
            default_bindings_module: "wasmbgp_sdk::bindings::exporter",
            with: {
                "wasmbgp:plugin/types@0.2.0": crate::bindings::wasmbgp::plugin::types,
                "wasmbgp:plugin/log@0.2.0": crate::bindings::wasmbgp::plugin::log,
                "wasmbgp:plugin/clock@0.2.0": crate::bindings::wasmbgp::plugin::clock,
                "wasmbgp:plugin/state@0.2.0": crate::bindings::wasmbgp::plugin::state,
                "wasmbgp:plugin/metrics@0.2.0": crate::bindings::wasmbgp::plugin::metrics,
            },
            additional_derives: [PartialEq, Eq, Hash],
        });
    }
}

/// The binary types of the WIT package: [`types::IpAddress`],
/// [`types::Prefix`] (the WIT record; the SDK's [`Prefix`] converts to and
/// from it), [`types::Attributes`], [`types::Origin`], [`types::AsSegment`],
/// [`types::Health`]...
pub use bindings::wasmbgp::plugin::types;

/// Wall-clock and monotonic time from the host (`healthcheck` and
/// `exporter` worlds). Outside a component (unit tests on the host), the
/// machine's clocks.
pub mod clock {
    /// Wall-clock time: milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::wasmbgp::plugin::clock::now_ms();
        #[cfg(not(target_arch = "wasm32"))]
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
    }

    /// Monotonic time in microseconds since an arbitrary fixed point; only
    /// differences are meaningful.
    pub fn monotonic_us() -> u64 {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::wasmbgp::plugin::clock::monotonic_us();
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::monotonic_us();
    }
}

/// The plugin's small key/value store that survives restarts and reloads.
pub use bindings::wasmbgp::plugin::state;

/// Announcing and withdrawing routes directly (`healthcheck` world; needs
/// `grants.neighbors`).
///
/// ```ignore
/// let attributes = Attributes::new().with_med(100).with_community("65001:100".parse()?);
/// routes::announce("192.0.2.1/32".parse()?, &attributes, &[])?;   // every granted neighbor
/// routes::withdraw("192.0.2.1/32".parse()?, &["127.0.0.2".parse()?])?;
/// ```
pub mod routes {
    use crate::Prefix;
    pub use crate::bindings::wasmbgp::plugin::routes::RouteError;
    use crate::types::{Attributes, IpAddress};

    /// The raw WIT functions: they send whatever they are given, malformed
    /// prefixes included (the host answers `invalid`).
    pub use crate::bindings::wasmbgp::plugin::routes as raw;

    /// Announces `prefix` with `attributes` to `neighbors` (empty: every
    /// granted neighbor). Announcing a prefix again replaces its attributes.
    pub fn announce(
        prefix: Prefix,
        attributes: &Attributes,
        neighbors: &[IpAddress],
    ) -> Result<(), RouteError> {
        raw::announce(prefix.into(), attributes, neighbors)
    }

    /// Withdraws `prefix` from `neighbors` (empty: every granted neighbor).
    pub fn withdraw(prefix: Prefix, neighbors: &[IpAddress]) -> Result<(), RouteError> {
        raw::withdraw(prefix.into(), neighbors)
    }
}

/// Network probes run by the host, limited to the plugin's grants
/// (`healthcheck` world).
pub mod probe {
    use std::time::Duration;

    use crate::bindings::wasmbgp::plugin::probe as raw;
    pub use crate::bindings::wasmbgp::plugin::probe::{
        DnsAnswer, HttpRequest, HttpResponse, ProbeError, RecordType,
    };

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

    /// Sends `GET url` ("http://IP:PORT/path", or "https://IP:PORT/path" with a
    /// certificate valid for the IP address) and keeps at most `max_body` bytes of
    /// the body.
    pub fn http_get(
        url: &str,
        timeout: Duration,
        max_body: u32,
    ) -> Result<HttpResponse, ProbeError> {
        raw::http_get(url, millis(timeout), max_body)
    }

    /// Sends `GET url` ("http://IP:PORT/path" or "https://IP:PORT/path") to the
    /// service named `server_name` (never resolved): the Host header and, for
    /// https://, the name the certificate must be valid for (sent as SNI). With
    /// `None`, the same as [`http_get`]. Keeps at most `max_body` bytes of the
    /// body.
    ///
    /// ```ignore
    /// let r = probe::http_fetch("https://192.0.2.10/healthz", Some("vip.example.net"),
    ///                           Duration::from_secs(1), 4096)?;
    /// ```
    pub fn http_fetch(
        url: &str,
        server_name: Option<&str>,
        timeout: Duration,
        max_body: u32,
    ) -> Result<HttpResponse, ProbeError> {
        raw::http_fetch(&HttpRequest {
            url: url.to_string(),
            server_name: server_name.map(str::to_string),
            timeout_ms: millis(timeout),
            max_body,
        })
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

/// Appending to the files the operator granted in `grants.append-files`
/// (`exporter` world).
///
/// ```ignore
/// output::append("/var/log/wasmbgp/events.jsonl", b"{\"type\":\"end-of-snapshot\"}\n")?;
/// ```
pub mod output {
    use crate::Error;

    /// Appends `data` to the file at `path` (exactly as written in the
    /// grant), creating it if needed. A path outside the grant is denied.
    /// Append a whole batch's worth at once: each call crosses into the host
    /// and writes.
    pub fn append(path: &str, data: &[u8]) -> Result<(), Error> {
        #[cfg(target_arch = "wasm32")]
        let result = crate::bindings::exporter::wasmbgp::plugin::output::append(path, data);
        #[cfg(not(target_arch = "wasm32"))]
        let result = crate::testing::append(path, data);
        result.map_err(|why| Error::new(format!("cannot append to {path}: {why}")))
    }
}

/// Requests an exporter makes of the event feed (`exporter` world).
pub mod feed {
    /// Asks for a fresh snapshot, typically after [`Event::Lagged`](crate::Event::Lagged):
    /// the events queued so far are dropped and the next batch starts with
    /// the sessions and their routes as they are now, closed by
    /// [`Event::EndOfSnapshot`](crate::Event::EndOfSnapshot).
    pub fn resync() {
        #[cfg(target_arch = "wasm32")]
        crate::bindings::exporter::wasmbgp::plugin::feed::resync();
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::resync();
    }
}

/// Logging to the host log, tagged with the plugin's name (every world).
pub mod log {
    pub use crate::bindings::wasmbgp::plugin::log::Level;

    /// Logs `message` at `level`. Outside a component (unit tests on the
    /// host), to standard error and [`crate::testing::logs`].
    pub fn log(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        crate::bindings::wasmbgp::plugin::log::log(level, message);
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::log(level, message);
    }

    /// Logs `message` at trace level.
    pub fn trace(message: &str) {
        log(Level::Trace, message)
    }
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
/// `wasmbgp:plugin/health-check` interface (world `healthcheck`). Invoke it
/// once, at the crate's top level: `wasmbgp_sdk::export_healthcheck!(MyCheck);`
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

/// Exports a [`Policy`] implementation as the component's
/// `wasmbgp:plugin/route-policy` interface (world `policy`). Invoke it once,
/// at the crate's top level: `wasmbgp_sdk::export_policy!(MyPolicy);`
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __WasmbgpPolicy;

        impl $crate::policy::Guest for __WasmbgpPolicy {
            fn init(
                settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                files: ::std::vec::Vec<$crate::policy::DataFile>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::policy::run_init::<$ty>(settings, files)
            }
            fn evaluate(batch: $crate::policy::RouteBatch) -> $crate::policy::Verdicts {
                $crate::policy::run_evaluate::<$ty>(batch)
            }
        }

        $crate::export_policy_guest!(__WasmbgpPolicy);
    };
}

/// The escape hatch under [`export_policy!`]: exports a type implementing
/// the raw WIT trait [`policy::Guest`] (columns in, verdict list out), for
/// plugins that need the batch as it is. Such a type can still delegate to
/// the SDK's glue with [`policy::run_init`] and [`policy::run_evaluate`].
#[macro_export]
macro_rules! export_policy_guest {
    ($guest:ident) => {
        $crate::bindings::policy::__export_policy_world!($guest with_types_in $crate::bindings::policy);
    };
}

/// Exports an [`Exporter`] implementation as the component's
/// `wasmbgp:plugin/event-sink` interface (world `exporter`). Invoke it once,
/// at the crate's top level: `wasmbgp_sdk::export_exporter!(MyExporter);`
#[macro_export]
macro_rules! export_exporter {
    ($ty:ty) => {
        #[doc(hidden)]
        pub struct __WasmbgpExporter;

        impl $crate::exporter::Guest for __WasmbgpExporter {
            fn init(
                settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::exporter::run_init::<$ty>(settings)
            }
            fn on_events(events: ::std::vec::Vec<$crate::exporter::RawEvent>) {
                $crate::exporter::run_on_events::<$ty>(events)
            }
        }

        $crate::export_exporter_guest!(__WasmbgpExporter);
    };
}

/// The escape hatch under [`export_exporter!`]: exports a type implementing
/// the raw WIT trait [`exporter::Guest`] (the batch of WIT events as it
/// is). Such a type can still delegate to [`exporter::run_init`] and
/// [`exporter::run_on_events`], or view events with [`exporter::Event::new`].
#[macro_export]
macro_rules! export_exporter_guest {
    ($guest:ident) => {
        $crate::bindings::exporter::__export_exporter_world!($guest with_types_in $crate::bindings::exporter);
    };
}
