//! `state`: a small key/value store per plugin that outlives its instances.

use std::collections::BTreeMap;

use std::sync::Arc;

use super::bindings::wasmbgp::plugin::state;
use super::{STATE_MAX_KEY, STATE_MAX_TOTAL, STATE_MAX_VALUE};
use crate::supervisor::Shared;

/// What `state` may touch: the plugin's store, which outlives its instances.
pub(crate) struct StateCtx {
    pub shared: Arc<Shared>,
}

impl state::Host for StateCtx {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.shared.state().get(&key).cloned()
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.shared.state().set(key, value)
    }

    fn delete(&mut self, key: String) {
        self.shared.state().delete(&key);
    }

    fn keys(&mut self) -> Vec<String> {
        self.shared.state().map.keys().cloned().collect()
    }
}

/// The `state` store of one plugin (kept across restarts and reloads).
#[derive(Debug, Default, Clone)]
pub struct KvStore {
    map: BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

impl KvStore {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.map.get(key)
    }

    /// Stores a value, enforcing the limits.
    pub fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        if key.len() > STATE_MAX_KEY {
            return Err(format!("state key longer than {STATE_MAX_KEY} bytes"));
        }
        if value.len() > STATE_MAX_VALUE {
            return Err(format!("state value larger than {STATE_MAX_VALUE} bytes"));
        }
        let old = self.map.get(&key).map_or(0, |v| key.len() + v.len());
        let new_total = self.bytes - old + key.len() + value.len();
        if new_total > STATE_MAX_TOTAL {
            return Err(format!("state store would exceed {STATE_MAX_TOTAL} bytes"));
        }
        self.bytes = new_total;
        self.map.insert(key, value);
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &str) {
        if let Some(v) = self.map.remove(key) {
            self.bytes -= key.len() + v.len();
        }
    }

    /// A copy of every entry.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_limits() {
        let mut kv = KvStore::default();
        kv.set("a".into(), vec![0; 10]).unwrap();
        kv.set("a".into(), vec![0; 20]).unwrap();
        assert_eq!(kv.bytes, 21);
        assert!(kv.set("b".repeat(300), vec![]).is_err());
        assert!(kv.set("b".into(), vec![0; STATE_MAX_VALUE + 1]).is_err());
        for i in 0..15 {
            kv.set(format!("k{i}"), vec![0; STATE_MAX_VALUE]).unwrap();
        }
        assert!(kv.set("last".into(), vec![0; STATE_MAX_VALUE]).is_err());
        kv.delete("a");
        assert_eq!(kv.get("a"), None);
    }
}
