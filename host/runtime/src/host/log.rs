//! `log` and `clock`, and the guest's stdout and stderr, which go to the host log line
//! by line.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::MAX_LOG_LINE;
use super::bindings::wasmbgp::plugin::{clock, log};
use crate::supervisor::Shared;

/// What `log` may touch: the plugin's name, to tag its lines, and its secrets, to
/// keep them out of the log.
pub(crate) struct LogCtx {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
}

/// What `clock` may touch: when the plugin was first started (the monotonic origin).
pub(crate) struct ClockCtx {
    pub born: std::time::Instant,
}

impl log::Host for LogCtx {
    fn log(&mut self, level: log::Level, message: String) {
        let message = self.shared.redact(cut(&message, MAX_LOG_LINE));
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin = %plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin = %plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin = %plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin = %plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin = %plugin, "{message}"),
        }
    }
}

impl clock::Host for ClockCtx {
    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_us(&mut self) -> u64 {
        u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A guest's stdout or stderr, written line by line to the host log.
pub(crate) struct LogStream {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
    pub stream: &'static str,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            plugin: self.plugin.clone(),
            shared: self.shared.clone(),
            stream: self.stream,
            line: Vec::new(),
        })
    }
}

/// Buffers bytes into lines and logs each complete line.
struct LineLogger {
    plugin: Arc<str>,
    shared: Arc<Shared>,
    stream: &'static str,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = self.shared.redact(&String::from_utf8_lossy(&self.line));
        tracing::info!(plugin = %self.plugin, stream = self.stream, "{}", text.trim_end());
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for &b in buf {
            if b == b'\n' || self.line.len() >= MAX_LOG_LINE {
                self.emit();
            }
            if b != b'\n' {
                self.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_chars() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }
}
