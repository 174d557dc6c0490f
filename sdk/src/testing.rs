//! A stand-in for the host, for unit tests of plugin logic on the host
//! machine (`cargo test`, not inside a component): the [`metrics`](crate::metrics),
//! [`output`](crate::output) and [`feed`](crate::feed) wrappers of this
//! crate call it instead of the WIT imports when not built for `wasm32`.
//! [`crate::log`] and [`crate::clock`] work too (the log to standard error and
//! [`logs`], the machine's clocks). Everything is per thread, and each test thread starts empty (call
//! [`reset`] to start over within one).
//!
//! ```ignore
//! wasmbgp_sdk::testing::reset();
//! // ... drive the plugin ...
//! assert_eq!(wasmbgp_sdk::testing::metric("routes_active", &["192.0.2.1"]), Some(3.0));
//! assert_eq!(wasmbgp_sdk::testing::appended("/tmp/out.jsonl"), b"...");
//! ```
//!
//! The stand-in checks what the host checks cheaply: metric shapes, label
//! counts, counters going down, kinds. It grants every series and every
//! file.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::log::Level;
use crate::metrics::{MetricError, MetricKind};

#[derive(Default)]
struct Host {
    /// name → (kind, label names, buckets, help).
    metrics: HashMap<String, (MetricKind, Vec<String>, Vec<f64>)>,
    /// (name, label values) → (value or sum, observations).
    series: HashMap<(String, Vec<String>), (f64, u64)>,
    /// path → appended bytes.
    files: HashMap<String, Vec<u8>>,
    /// path → number of `append` calls.
    appends: HashMap<String, usize>,
    resyncs: usize,
    /// (level, message) of every log call.
    logs: Vec<(Level, String)>,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Forgets every metric, file and resync of this thread.
pub fn reset() {
    HOST.with(|h| *h.borrow_mut() = Host::default());
}

/// The value of a counter or gauge series, or the sum of a histogram
/// series' observations; `None` when the series does not exist.
pub fn metric(name: &str, label_values: &[&str]) -> Option<f64> {
    let key = (
        name.to_string(),
        label_values.iter().map(|v| v.to_string()).collect(),
    );
    HOST.with(|h| h.borrow().series.get(&key).map(|s| s.0))
}

/// The number of observations of a histogram series (0 if none).
pub fn observations(name: &str, label_values: &[&str]) -> u64 {
    let key = (
        name.to_string(),
        label_values.iter().map(|v| v.to_string()).collect(),
    );
    HOST.with(|h| h.borrow().series.get(&key).map_or(0, |s| s.1))
}

/// Every series of metric `name`: (label values, value), sorted.
pub fn series(name: &str) -> Vec<(Vec<String>, f64)> {
    HOST.with(|h| {
        let mut all: Vec<_> = h
            .borrow()
            .series
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), (value, _))| (labels.clone(), *value))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    })
}

/// What was appended to `path` so far.
pub fn appended(path: &str) -> Vec<u8> {
    HOST.with(|h| h.borrow().files.get(path).cloned().unwrap_or_default())
}

/// How many `output::append` calls wrote to `path`.
pub fn append_calls(path: &str) -> usize {
    HOST.with(|h| h.borrow().appends.get(path).copied().unwrap_or(0))
}

/// How many times `feed::resync` was called.
pub fn resyncs() -> usize {
    HOST.with(|h| h.borrow().resyncs)
}

/// Every message logged so far: (level, message).
pub fn logs() -> Vec<(Level, String)> {
    HOST.with(|h| h.borrow().logs.clone())
}

pub(crate) fn log(level: Level, message: &str) {
    eprintln!("{level:?}: {message}");
    HOST.with(|h| h.borrow_mut().logs.push((level, message.to_string())));
}

pub(crate) fn monotonic_us() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

pub(crate) fn append(path: &str, data: &[u8]) -> Result<(), String> {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        h.files
            .entry(path.to_string())
            .or_default()
            .extend_from_slice(data);
        *h.appends.entry(path.to_string()).or_default() += 1;
    });
    Ok(())
}

pub(crate) fn resync() {
    HOST.with(|h| h.borrow_mut().resyncs += 1);
}

/// The `metrics` interface's functions, as the stand-in serves them.
pub(crate) mod metrics_host {
    use super::*;

    pub fn register(
        name: &str,
        _help: &str,
        kind: MetricKind,
        label_names: &[String],
        buckets: &[f64],
    ) -> Result<(), MetricError> {
        let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
        crate::metrics::check_shape(name, kind, &names, buckets)?;
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            let shape = (kind, label_names.to_vec(), buckets.to_vec());
            match h.metrics.get(name) {
                Some(existing) if *existing != shape => Err(MetricError::Invalid(format!(
                    "metric {name:?} is already registered with another shape"
                ))),
                Some(_) => Ok(()),
                None => {
                    h.metrics.insert(name.to_string(), shape);
                    Ok(())
                }
            }
        })
    }

    fn update(
        name: &str,
        label_values: &[String],
        allowed: &[MetricKind],
        f: impl FnOnce(MetricKind, &mut (f64, u64)) -> Result<(), MetricError>,
    ) -> Result<(), MetricError> {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            let Some((kind, labels, _)) = h.metrics.get(name) else {
                return Err(MetricError::Invalid(format!("no metric {name:?}")));
            };
            let kind = *kind;
            if !allowed.contains(&kind) {
                return Err(MetricError::Invalid(format!(
                    "metric {name:?} is a {}",
                    kind.name()
                )));
            }
            if labels.len() != label_values.len() {
                return Err(MetricError::Invalid(format!(
                    "metric {name:?} has {} labels, given {} values",
                    labels.len(),
                    label_values.len()
                )));
            }
            let slot = h
                .series
                .entry((name.to_string(), label_values.to_vec()))
                .or_insert((0.0, 0));
            f(kind, slot)
        })
    }

    pub fn add(name: &str, label_values: &[String], value: f64) -> Result<(), MetricError> {
        let kinds = [MetricKind::Counter, MetricKind::Gauge];
        update(name, label_values, &kinds, |kind, slot| {
            if value.is_nan() || (kind == MetricKind::Counter && value < 0.0) {
                return Err(MetricError::Invalid(format!("{name}: cannot add {value}")));
            }
            slot.0 += value;
            Ok(())
        })
    }

    pub fn set(name: &str, label_values: &[String], value: f64) -> Result<(), MetricError> {
        update(name, label_values, &[MetricKind::Gauge], |_, slot| {
            slot.0 = value;
            Ok(())
        })
    }

    pub fn observe(name: &str, label_values: &[String], value: f64) -> Result<(), MetricError> {
        update(name, label_values, &[MetricKind::Histogram], |_, slot| {
            slot.0 += value;
            slot.1 += 1;
            Ok(())
        })
    }

    pub fn remove(name: &str, label_values: &[String]) {
        HOST.with(|h| {
            h.borrow_mut()
                .series
                .remove(&(name.to_string(), label_values.to_vec()));
        })
    }
}
