//! The error type of health checks.

use std::fmt;

use crate::bindings::wasmbgp::plugin::probe::ProbeError;
use crate::bindings::wasmbgp::plugin::routes::RouteError;
use crate::settings::SettingsError;

/// Why a health check failed or could not start: a message for the operator.
///
/// Converts from strings, [`SettingsError`], probe and route errors, so `?`
/// works on all of them.
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
