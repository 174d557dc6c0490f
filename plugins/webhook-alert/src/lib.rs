//! `webhook-alert`: POSTs a JSON alert to `url` when a BGP session leaves
//! established or a NOTIFICATION is received. See README.md.

mod alert;
mod http;
mod queue;
mod webhook;
