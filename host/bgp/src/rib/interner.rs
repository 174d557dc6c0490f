use std::collections::HashSet;
use std::sync::Arc;

use crate::packet::attributes::PathAttributes;

/// Shares equal attribute sets so that a million routes with one set of attributes cost
/// one allocation, and so that UPDATE packing can group routes by pointer.
#[derive(Debug, Default)]
pub struct Interner {
    set: HashSet<Arc<PathAttributes>>,
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `attrs`.
    pub fn intern(&mut self, attrs: PathAttributes) -> Arc<PathAttributes> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        a
    }

    /// The shared copy of an attribute set already behind an `Arc` (a policy's
    /// rewrite): equal sets from different batches end up as one allocation.
    pub fn intern_arc(&mut self, attrs: Arc<PathAttributes>) -> Arc<PathAttributes> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        self.set.insert(attrs.clone());
        attrs
    }

    /// Forgets attribute sets no route uses any more.
    pub fn prune(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
    }

    /// Number of distinct attribute sets held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True if none is held.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_share_one_allocation() {
        let mut i = Interner::new();
        let a = i.intern(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let b = i.intern(PathAttributes {
            med: Some(1),
            ..Default::default()
        });
        let c = i.intern(PathAttributes {
            med: Some(2),
            ..Default::default()
        });
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b));
        i.prune();
        assert_eq!(i.len(), 1);
    }
}
