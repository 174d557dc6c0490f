//! RIBs.
