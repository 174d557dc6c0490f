//! The error type of plugins.

use std::fmt;

use crate::bindings::wasmbgp::plugin::probe::ProbeError;
use crate::bindings::wasmbgp::plugin::routes::RouteError;
use crate::settings::SettingsError;
use crate::text::ParseError;

/// Why a plugin could not start, or a health check failed: a message for
/// the operator.
///
/// Converts from strings, [`SettingsError`], [`ParseError`], probe and route
/// errors, so `?` works on all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_string())
    }
}

impl From<SettingsError> for Error {
    fn from(error: SettingsError) -> Self {
        Error(error.to_string())
    }
}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Self {
        Error(error.to_string())
    }
}

impl std::error::Error for Error {}

impl From<ProbeError> for Error {
    fn from(error: ProbeError) -> Self {
        Error(crate::probe::describe(&error))
    }
}

impl From<RouteError> for Error {
    fn from(error: RouteError) -> Self {
        Error(match error {
            RouteError::Denied(why) => format!("route denied: {why}"),
            RouteError::LimitExceeded(why) => format!("route limit exceeded: {why}"),
            RouteError::Invalid(why) => format!("invalid route: {why}"),
        })
    }
}
