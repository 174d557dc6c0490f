use std::collections::HashSet;
use std::sync::Arc;

use crate::packet::attributes::PathAttributes;

/// Shares equal attribute sets so that a million routes with one set of attributes cost
/// one allocation, and so that UPDATE packing can group routes by pointer.
///
/// Sets no route uses any more are forgotten as the interner grows: whenever it holds
/// twice what the last prune kept, it prunes. A plugin announcing a new MED in a loop
/// thus costs memory for the sets in use only, and pruning costs O(1) per insertion.
#[derive(Debug)]
pub struct Interner {
    set: HashSet<Arc<PathAttributes>>,
    /// Prune when the set reaches this size.
    prune_at: usize,
}

/// The smallest size at which the interner prunes itself.
const MIN_PRUNE_AT: usize = 4096;

impl Default for Interner {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
            prune_at: MIN_PRUNE_AT,
        }
    }
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
        self.insert(a.clone());
        a
    }

    /// Adds a new set, pruning first if the interner has doubled since it last did.
    fn insert(&mut self, attrs: Arc<PathAttributes>) {
        if self.set.len() >= self.prune_at {
            self.prune();
        }
        self.set.insert(attrs);
    }

    /// The shared copy of an attribute set already behind an `Arc` (a policy's
    /// rewrite): equal sets from different batches end up as one allocation.
    pub fn intern_arc(&mut self, attrs: Arc<PathAttributes>) -> Arc<PathAttributes> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        self.insert(attrs.clone());
        attrs
    }

    /// Forgets attribute sets no route uses any more.
    pub fn prune(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.prune_at = (2 * self.set.len()).max(MIN_PRUNE_AT);
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

    #[test]
    fn sets_no_one_uses_go_as_the_interner_grows() {
        let mut i = Interner::new();
        let med = |m: u32| PathAttributes {
            med: Some(m),
            ..Default::default()
        };
        // 100 sets in use; a million more interned and dropped at once (a plugin
        // announcing a new MED in a loop).
        let kept: Vec<_> = (0..100).map(|m| i.intern(med(m))).collect();
        let mut most = 0;
        for m in 100..1_000_100 {
            drop(i.intern(med(m)));
            most = most.max(i.len());
        }
        assert!(most <= MIN_PRUNE_AT + 1, "the interner grew to {most}");
        i.prune();
        assert_eq!(i.len(), kept.len());
        // Sets in use survive every prune and are still shared.
        assert!(Arc::ptr_eq(&kept[7], &i.intern(med(7))));
    }
}
