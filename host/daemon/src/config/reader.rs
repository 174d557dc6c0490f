//! A span-aware reader over a parsed TOML document that collects every problem with its
//! line and column instead of stopping at the first.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml_edit::{Item, Table, Value};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// The file, as given.
    pub file: String,
    /// The problems, in file order.
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics against the source text.
pub struct Sink<'s> {
    text: &'s str,
    items: Vec<Diagnostic>,
}

impl<'s> Sink<'s> {
    /// A sink for problems in `text`.
    pub fn new(text: &'s str) -> Self {
        Sink {
            text,
            items: Vec::new(),
        }
    }

    /// Records a problem at a byte span (or the file start when unknown).
    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        // Bytes, not `str` slicing: a span from the TOML parser's error need not fall on
        // a character boundary. Columns count bytes, 1-based.
        let at = span.map(|s| s.start).unwrap_or(0).min(self.text.len());
        let before = &self.text.as_bytes()[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(at + 1, |i| at - i);
        self.items.push(Diagnostic {
            line,
            col,
            message: message.into(),
        });
    }

    /// True if nothing was recorded.
    pub fn is_clean(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics, sorted by position.
    pub fn finish(mut self, file: &str) -> Diagnostics {
        self.items.sort_by_key(|d| (d.line, d.col));
        Diagnostics {
            file: file.to_string(),
            items: self.items,
        }
    }
}

/// Reads one table's keys, remembering which were used so that the rest are reported.
pub struct TableReader<'t> {
    table: &'t Table,
    /// Dotted name for messages, e.g. `neighbor[2]`.
    name: String,
    used: BTreeSet<String>,
}

impl<'t> TableReader<'t> {
    /// Reads `table`, called `name` in messages.
    pub fn new(table: &'t Table, name: impl Into<String>) -> Self {
        TableReader {
            table,
            name: name.into(),
            used: BTreeSet::new(),
        }
    }

    /// The table's span, for problems with the table as a whole.
    pub fn span(&self) -> Option<Range<usize>> {
        self.table.span()
    }

    /// The raw item under `key`, marking it used.
    pub fn item(&mut self, key: &str) -> Option<&'t Item> {
        self.used.insert(key.to_string());
        self.table.get(key)
    }

    /// The span of `key`'s value, or of the table.
    pub fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.table
            .get(key)
            .and_then(Item::span)
            .or_else(|| self.table.span())
    }

    fn value(&mut self, key: &str, sink: &mut Sink) -> Option<&'t Value> {
        match self.item(key)? {
            Item::Value(v) => Some(v),
            other => {
                sink.error(
                    other.span(),
                    format!("{}.{key} must be a value, not a table", self.name),
                );
                None
            }
        }
    }

    /// A required string.
    pub fn req_str(
        &mut self,
        key: &str,
        sink: &mut Sink,
    ) -> Option<(String, Option<Range<usize>>)> {
        let v = self.opt_str(key, sink);
        if v.is_none() && self.table.get(key).is_none() {
            sink.error(
                self.table.span(),
                format!("{} is missing required key `{key}`", self.name),
            );
        }
        v
    }

    /// An optional string, with its span.
    pub fn opt_str(
        &mut self,
        key: &str,
        sink: &mut Sink,
    ) -> Option<(String, Option<Range<usize>>)> {
        let v = self.value(key, sink)?;
        match v.as_str() {
            Some(s) => Some((s.to_string(), v.span())),
            None => {
                sink.error(v.span(), format!("{}.{key} must be a string", self.name));
                None
            }
        }
    }

    /// An optional integer within `min..=max`.
    pub fn opt_int(&mut self, key: &str, min: i64, max: i64, sink: &mut Sink) -> Option<i64> {
        let v = self.value(key, sink)?;
        match v.as_integer() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                sink.error(
                    v.span(),
                    format!("{}.{key} = {n} is out of range {min}..={max}", self.name),
                );
                None
            }
            None => {
                sink.error(v.span(), format!("{}.{key} must be an integer", self.name));
                None
            }
        }
    }

    /// A required integer within `min..=max`.
    pub fn req_int(&mut self, key: &str, min: i64, max: i64, sink: &mut Sink) -> Option<i64> {
        if self.table.get(key).is_none() {
            self.used.insert(key.to_string());
            sink.error(
                self.table.span(),
                format!("{} is missing required key `{key}`", self.name),
            );
            return None;
        }
        self.opt_int(key, min, max, sink)
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, key: &str, sink: &mut Sink) -> Option<bool> {
        let v = self.value(key, sink)?;
        let b = v.as_bool();
        if b.is_none() {
            sink.error(
                v.span(),
                format!("{}.{key} must be true or false", self.name),
            );
        }
        b
    }

    /// An optional duration written as a humantime string (`"1s"`, `"250ms"`) or seconds.
    pub fn opt_duration(&mut self, key: &str, sink: &mut Sink) -> Option<Duration> {
        let v = self.value(key, sink)?;
        if let Some(n) = v.as_integer().filter(|n| *n >= 0) {
            return Some(Duration::from_secs(n as u64));
        }
        match v.as_str().map(humantime::parse_duration) {
            Some(Ok(d)) => Some(d),
            _ => {
                sink.error(
                    v.span(),
                    format!(
                        "{}.{key} must be a duration such as \"1s\" or \"250ms\"",
                        self.name
                    ),
                );
                None
            }
        }
    }

    /// An optional list of strings, each with its span.
    pub fn opt_str_list(
        &mut self,
        key: &str,
        sink: &mut Sink,
    ) -> Option<Vec<(String, Option<Range<usize>>)>> {
        let v = self.value(key, sink)?;
        let Some(arr) = v.as_array() else {
            sink.error(
                v.span(),
                format!("{}.{key} must be a list of strings", self.name),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in arr.iter() {
            match item.as_str() {
                Some(s) => out.push((s.to_string(), item.span())),
                None => sink.error(
                    item.span(),
                    format!("{}.{key} must contain only strings", self.name),
                ),
            }
        }
        Some(out)
    }

    /// An optional list of integers.
    pub fn opt_int_list(
        &mut self,
        key: &str,
        sink: &mut Sink,
    ) -> Option<Vec<(i64, Option<Range<usize>>)>> {
        let v = self.value(key, sink)?;
        let Some(arr) = v.as_array() else {
            sink.error(
                v.span(),
                format!("{}.{key} must be a list of integers", self.name),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in arr.iter() {
            match item.as_integer() {
                Some(n) => out.push((n, item.span())),
                None => sink.error(
                    item.span(),
                    format!("{}.{key} must contain only integers", self.name),
                ),
            }
        }
        Some(out)
    }

    /// Reports every key that no accessor asked for.
    pub fn finish(self, sink: &mut Sink) {
        for (key, _) in self.table.iter() {
            if !self.used.contains(key) {
                let span = self.table.key(key).and_then(|k| k.span());
                sink.error(span, format!("unknown key `{key}` in {}", self.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        let mut sink = Sink::new(text);
        sink.error(Some(6..8), "x");
        sink.error(Some(0..1), "y");
        let d = sink.finish("f.toml");
        assert_eq!(d.to_string(), "f.toml:1:1: y\nf.toml:2:1: x");
    }
}
