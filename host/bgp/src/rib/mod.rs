//! Routing information bases: what each neighbor is sent ([`AdjRibOut`]) and what it sent
//! us ([`AdjRibIn`]), with attribute sets shared through an [`Interner`].

mod adj_in;
mod adj_out;
mod export;
mod interner;

pub use adj_in::{AdjRibIn, InChange, ReceivedChange, RouteIn};
pub use adj_out::{AdjRibOut, Advertised, EndOfRib, FlushStats, SourceId, SyncStats};
pub use export::ExportPolicy;
pub use interner::Interner;

use crate::packet::flowspec::FlowSpec;
use crate::packet::prefix::Family;

/// Where the tables keep a FlowSpec rule's family: 0 IPv4, 1 IPv6. One table per
/// family, so that counting, sending or sweeping a family never walks the other.
pub(crate) fn flow_slot(rule: &FlowSpec) -> usize {
    usize::from(rule.family() == Family::IPV6_FLOWSPEC)
}

/// The slot of a FlowSpec family, `None` for another family.
pub(crate) fn flow_family_slot(family: Family) -> Option<usize> {
    match family {
        Family::IPV4_FLOWSPEC => Some(0),
        Family::IPV6_FLOWSPEC => Some(1),
        _ => None,
    }
}
