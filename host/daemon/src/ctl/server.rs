//! The control socket server: reads command lines, hands them to the speaker in batches,
//! writes one JSON reply line per command. Every line gets its answer, in order: a line
//! too long or not UTF-8 is answered with an error and the lines after it still run.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use super::command;
use super::command::Farewell;
use super::json::Reply;
use crate::metrics::Metrics;
use crate::tasks::reload::Reloads;
use crate::tasks::speaker::SpeakerHandle;

/// Most commands handed to the speaker at once; lines already buffered are batched.
const MAX_BATCH: usize = 4096;
/// Longest command line, in bytes. A longer line is answered with an error and the
/// rest of it discarded as it arrives: a client cannot make the daemon buffer more.
pub const MAX_LINE: usize = 64 * 1024;

/// Binds the control socket at `path` with `mode`, refusing to steal a live daemon's socket.
pub fn bind(path: &Path, mode: u32) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "control socket {} is in use by another running daemon",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale control socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode of {}", path.display()))?;
    info!(socket = %path.display(), mode = format!("{mode:o}"), "control socket ready");
    Ok(listener)
}

/// Accepts control connections until the speaker stops.
pub async fn serve(
    listener: UnixListener,
    speaker: SpeakerHandle,
    reloads: Reloads,
    metrics: Arc<Metrics>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                crate::tasks::pause_after_accept_error("control socket", &e).await;
                continue;
            }
        };
        let speaker = speaker.clone();
        let reloads = reloads.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, speaker, reloads, &metrics).await {
                metrics.ctl_connection_error();
                warn!(error = %e, "control connection failed");
            }
        });
    }
}

async fn session(
    stream: UnixStream,
    speaker: SpeakerHandle,
    reloads: Reloads,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let (rd, wr) = stream.into_split();
    let mut reader = BufReader::with_capacity(256 * 1024, rd);
    let mut writer = BufWriter::with_capacity(256 * 1024, wr);
    let mut line = Vec::new();
    loop {
        let Some(first) = read_line(&mut reader, &mut line).await? else {
            return Ok(());
        };
        let mut batch = vec![first.and_then(command::parse)];
        // Take every complete line already buffered, without waiting for more.
        while batch.len() < MAX_BATCH && reader.buffer().contains(&b'\n') {
            match read_line(&mut reader, &mut line).await? {
                Some(next) => batch.push(next.and_then(command::parse)),
                None => break,
            }
        }
        let replies = run_batch(batch, &speaker, &reloads).await;
        for reply in replies {
            metrics.ctl_reply(reply.ok);
            let mut text = serde_json::to_string(&reply)?;
            text.push('\n');
            writer.write_all(text.as_bytes()).await?;
        }
        writer.flush().await?;
    }
}

/// Runs a batch in order: reloads and shutdown here (reloads are prepared off the
/// speaker; shutdown is the main task's), the rest
/// by the speaker, consecutive commands together.
async fn run_batch(
    batch: Vec<Result<command::Command, String>>,
    speaker: &SpeakerHandle,
    reloads: &Reloads,
) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(batch.len());
    let mut pending = Vec::new();
    for cmd in batch {
        let reload = matches!(
            &cmd,
            Ok(command::Command::Reload { .. }
                | command::Command::PluginReload { .. }
                | command::Command::Shutdown(_))
        );
        if !reload {
            pending.push(cmd);
            continue;
        }
        if !pending.is_empty() {
            replies.extend(execute(std::mem::take(&mut pending), speaker).await);
        }
        replies.push(match cmd {
            Ok(command::Command::Reload { json }) => reloads.config(json).await,
            Ok(command::Command::PluginReload { name, path }) => reloads.plugin(&name, path).await,
            Ok(command::Command::Shutdown(Farewell::GracefulRestart)) => {
                match speaker.running().await.map(|r| r.globals.graceful_restart) {
                    Some(0) => Reply::err(
                        "graceful-restart is off in the config: the peers would drop the routes anyway; use `shutdown`",
                    ),
                    Some(seconds) => {
                        reloads.stop().request(Farewell::GracefulRestart);
                        Reply::ok(format!(
                            "shutting down for a graceful restart: every session closes without a NOTIFICATION; peers keep the routes for {seconds} s"
                        ))
                    }
                    None => Reply::err("wasmbgp is stopping"),
                }
            }
            Ok(command::Command::Shutdown(farewell)) => {
                reloads.stop().request(farewell);
                Reply::ok("shutting down: every session ends with Cease/Administrative Shutdown")
            }
            _ => Reply::err("unreachable"),
        });
    }
    if !pending.is_empty() {
        replies.extend(execute(pending, speaker).await);
    }
    replies
}

async fn execute(
    batch: Vec<Result<command::Command, String>>,
    speaker: &SpeakerHandle,
) -> Vec<Reply> {
    let count = batch.len();
    match speaker.execute(batch).await {
        Some(r) => r,
        None => vec![Reply::err("the speaker has stopped; wasmbgp is exiting"); count],
    }
}

/// Reads one command line into `buf` (reused between calls): `None` at the end of the
/// stream, else the line's text, or the error to answer it with when it is longer
/// than [`MAX_LINE`] or not UTF-8. Either way the whole line is consumed, so the
/// commands after it still run; at most [`MAX_LINE`] bytes of it are ever held.
async fn read_line<'b, R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &'b mut Vec<u8>,
) -> std::io::Result<Option<Result<&'b str, String>>> {
    buf.clear();
    // Bytes of the line, without its newline; only the first MAX_LINE + 1 are kept.
    let mut length = 0usize;
    let mut seen_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            if !seen_any {
                return Ok(None);
            }
            break;
        }
        seen_any = true;
        let (content, complete) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..content.min(room)]);
        length += content;
        reader.consume(content + usize::from(complete));
        if complete {
            break;
        }
    }
    if length > MAX_LINE {
        return Ok(Some(Err(format!(
            "command line of {length} bytes is longer than the limit of {MAX_LINE} bytes"
        ))));
    }
    Ok(Some(match std::str::from_utf8(buf) {
        Ok(text) => Ok(text),
        Err(e) => Err(format!(
            "command line is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        )),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(mut input: &[u8]) -> Vec<Result<String, String>> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut input, &mut buf).await.unwrap() {
            out.push(line.map(str::to_string));
        }
        out
    }

    #[tokio::test]
    async fn every_line_gets_an_answer() {
        let mut input = b"show neighbors\n\xff\xfe bad\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b"\nshow plugins");
        let got = lines(&input).await;
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Ok("show neighbors".into()));
        assert!(got[1].as_ref().unwrap_err().contains("not valid UTF-8"));
        let long = got[2].as_ref().unwrap_err();
        assert!(long.contains("100000 bytes") && long.len() < 100, "{long}");
        assert_eq!(got[3], Ok("show plugins".into()));
    }

    #[tokio::test]
    async fn the_limit_is_exact() {
        let mut input = vec![b'a'; MAX_LINE];
        input.push(b'\n');
        input.extend(vec![b'b'; MAX_LINE + 1]);
        let got = lines(&input).await;
        assert_eq!(got[0].as_ref().map(String::len), Ok(MAX_LINE));
        assert!(got[1].is_err());
    }
}
