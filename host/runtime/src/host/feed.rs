//! `feed`: what an exporter may ask of the host: a fresh snapshot.

use super::bindings::exporter::wasmbgp::plugin::feed;

/// What `feed` may touch: a flag the exporter's driver reads after each call.
#[derive(Debug, Default)]
pub(crate) struct FeedCtx {
    /// `resync` was called during the current call.
    pub resync: bool,
}

impl feed::Host for FeedCtx {
    fn resync(&mut self) {
        self.resync = true;
    }
}
