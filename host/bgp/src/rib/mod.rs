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
