//! BGP protocol core.
