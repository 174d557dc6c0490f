//! The control socket server: reads command lines, hands them to the speaker in batches,
//! writes one JSON reply line per command.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, info};
use wasmbgp_runtime::Runtime;

use super::command;
use super::json::Reply;
use crate::tasks::speaker::SpeakerHandle;

/// Most commands handed to the speaker at once; lines already buffered are batched.
const MAX_BATCH: usize = 4096;

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
    runtime: Runtime,
    path: PathBuf,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let speaker = speaker.clone();
        let runtime = runtime.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, speaker, runtime).await {
                debug!(error = %e, "control connection ended");
            }
        });
        if !path.exists() {
            return;
        }
    }
}

async fn session(
    stream: UnixStream,
    speaker: SpeakerHandle,
    runtime: Runtime,
) -> anyhow::Result<()> {
    let (rd, wr) = stream.into_split();
    let mut reader = BufReader::with_capacity(256 * 1024, rd);
    let mut writer = BufWriter::with_capacity(256 * 1024, wr);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut batch = vec![command::parse(line.trim())];
        // Take every complete line already buffered, without waiting for more.
        while batch.len() < MAX_BATCH && reader.buffer().contains(&b'\n') {
            line.clear();
            reader.read_line(&mut line).await?;
            batch.push(command::parse(line.trim()));
        }
        for cmd in &batch {
            if let Ok(command::Command::Plugin {
                action: command::PluginAction::Reload,
                name,
            }) = cmd
            {
                speaker.precompile(&runtime, name).await;
            }
        }
        let replies = match speaker.execute(batch).await {
            Some(r) => r,
            None => vec![Reply::err("daemon is shutting down")],
        };
        for reply in replies {
            let mut text = serde_json::to_string(&reply)?;
            text.push('\n');
            writer.write_all(text.as_bytes()).await?;
        }
        writer.flush().await?;
    }
}
