//! The operator's settings, with typed getters and clear errors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A problem with one setting, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// A required key is absent.
    Missing(String),
    /// A key's value does not parse; `expected` says what would.
    Invalid {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What the value should look like.
        expected: String,
    },
    /// A key's value, or one item of a comma-separated list, does not
    /// parse; `reason` is the parser's error.
    Unparsable {
        /// The key.
        key: String,
        /// The value or the item (trimmed).
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Keys the plugin does not know (likely typos).
    Unknown(Vec<String>),
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::Missing(key) => write!(f, "setting `{key}` is required"),
            SettingsError::Invalid {
                key,
                value,
                expected,
            } => {
                write!(
                    f,
                    "setting `{key}` = {value:?} is invalid: expected {expected}"
                )
            }
            // The SDK's parsers already quote the value: say it once.
            SettingsError::Unparsable { key, value, reason }
                if reason.contains(&format!("{value:?}")) =>
            {
                write!(f, "setting `{key}`: {reason}")
            }
            SettingsError::Unparsable { key, value, reason } => {
                write!(f, "setting `{key}` = {value:?} is invalid: {reason}")
            }
            SettingsError::Unknown(keys) => write!(f, "unknown setting(s): {}", keys.join(", ")),
        }
    }
}

impl std::error::Error for SettingsError {}

/// The operator's `[plugin.settings]` as handed to `init`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Wraps the (key, value) pairs; a later duplicate key wins.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Settings { pairs }
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or [`SettingsError::Missing`].
    pub fn required(&self, key: &str) -> Result<&str, SettingsError> {
        self.get(key)
            .ok_or_else(|| SettingsError::Missing(key.to_string()))
    }

    /// The value of `key`, or `default` when unset.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Fails with [`SettingsError::Unknown`] when a key is not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), SettingsError> {
        let unknown: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Unknown(unknown))
        }
    }

    /// `key` parsed with [`FromStr`], if set.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, SettingsError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| SettingsError::Invalid {
                    key: key.to_string(),
                    value: value.to_string(),
                    expected: std::any::type_name::<T>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("a value")
                        .to_string(),
                }),
        }
    }

    /// `key` parsed with [`FromStr`], or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T, SettingsError> {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// `key` parsed with [`FromStr`]; required.
    pub fn parse_required<T: FromStr>(&self, key: &str) -> Result<T, SettingsError> {
        self.parse(key)?
            .ok_or_else(|| SettingsError::Missing(key.to_string()))
    }

    /// `key` as a duration ("500ms", "2s", "1m30s"), if set.
    pub fn get_duration(&self, key: &str) -> Result<Option<Duration>, SettingsError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => parse_duration(value)
                .map(Some)
                .ok_or_else(|| SettingsError::Invalid {
                    key: key.to_string(),
                    value: value.to_string(),
                    expected: "a duration such as 500ms, 2s or 1m".to_string(),
                }),
        }
    }

    /// `key` as a duration, or `default` when unset.
    pub fn duration_or(&self, key: &str, default: Duration) -> Result<Duration, SettingsError> {
        Ok(self.get_duration(key)?.unwrap_or(default))
    }

    /// `key` as a duration; required.
    pub fn duration_required(&self, key: &str) -> Result<Duration, SettingsError> {
        self.get_duration(key)?
            .ok_or_else(|| SettingsError::Missing(key.to_string()))
    }

    /// `key` as a comma-separated list of trimmed, non-empty items (empty
    /// when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `key` parsed with [`FromStr`], if set; unlike [`Settings::parse`],
    /// an error carries the parser's own message (for the SDK's text types:
    /// prefixes, communities, addresses).
    pub fn parse_text<T>(&self, key: &str) -> Result<Option<T>, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(value) => {
                value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|e: T::Err| SettingsError::Unparsable {
                        key: key.to_string(),
                        value: value.to_string(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// `key` as a comma-separated list of items parsed with [`FromStr`]
    /// (empty when unset); an error names the key and the bad item, with
    /// the item's parse error as the reason.
    pub fn parse_list<T>(&self, key: &str) -> Result<Vec<T>, SettingsError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.list(key)
            .into_iter()
            .map(|item| {
                item.parse().map_err(|e: T::Err| SettingsError::Unparsable {
                    key: key.to_string(),
                    reason: e.to_string(),
                    value: item,
                })
            })
            .collect()
    }

    /// Every (key, value) pair as given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Parses a duration: one or more `<number><unit>` terms with units `us`,
/// `ms`, `s`, `m`, `h` ("1m30s", "250ms"); a bare number means seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let term = match rest[..unit_len].trim() {
            "us" | "µs" => Duration::from_micros(number),
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" | "min" => Duration::from_secs(number.checked_mul(60)?),
            "h" => Duration::from_secs(number.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(term)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn errors_name_the_key() {
        let s = Settings::new(vec![("timeout".into(), "soon".into())]);
        let err = s.get_duration("timeout").unwrap_err().to_string();
        assert!(err.contains("`timeout`"), "{err}");
        assert!(
            s.required("address")
                .unwrap_err()
                .to_string()
                .contains("`address` is required")
        );
        assert!(
            s.only(&["address"])
                .unwrap_err()
                .to_string()
                .contains("timeout")
        );
    }

    #[test]
    fn lists_parse_item_by_item() {
        let s = Settings::new(vec![
            ("ports".into(), " 1, 2 ,,3 ".into()),
            ("bad".into(), "1, x".into()),
        ]);
        assert_eq!(s.parse_list::<u16>("ports").unwrap(), [1, 2, 3]);
        assert_eq!(s.parse_list::<u16>("unset").unwrap(), Vec::<u16>::new());
        let err = s.parse_list::<u16>("bad").unwrap_err().to_string();
        assert!(err.contains("`bad`") && err.contains("\"x\""), "{err}");
    }
}
