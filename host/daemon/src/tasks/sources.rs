//! Names of route sources (config, ctl, plugin:NAME), shared by the speaker and neighbors.

use std::sync::{Arc, RwLock};

use wasmbgp_bgp::rib::SourceId;

/// The source registry: a [`SourceId`] is an index into it.
#[derive(Debug, Clone, Default)]
pub struct Sources(Arc<RwLock<Vec<String>>>);

/// Static routes from the config file.
pub const CONFIG: SourceId = 0;
/// Routes announced over the control socket.
pub const CTL: SourceId = 1;

impl Sources {
    /// A registry holding `config` and `ctl`.
    pub fn new() -> Self {
        let s = Sources::default();
        s.register("config");
        s.register("ctl");
        s
    }

    /// The id of `name`, registering it on first use.
    pub fn register(&self, name: &str) -> SourceId {
        let mut names = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return i as SourceId;
        }
        names.push(name.to_string());
        (names.len() - 1) as SourceId
    }

    /// A copy of all names, indexed by id.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
