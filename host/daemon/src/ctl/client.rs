//! `wasmbgp ctl`: sends commands to the running daemon and prints the answers.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context as _;

use super::json::Reply;

/// Sends one command; prints its output; returns false if the daemon reported an error.
pub fn run_one(socket: &Path, command: &str) -> anyhow::Result<bool> {
    let stream = connect(socket)?;
    let mut w = BufWriter::new(&stream);
    writeln!(w, "{command}")?;
    w.flush()?;
    let mut r = BufReader::new(&stream);
    let mut line = String::new();
    r.read_line(&mut line)
        .context("reading the daemon's reply")?;
    let reply: Reply =
        serde_json::from_str(&line).context("the daemon's reply is not valid JSON")?;
    if reply.ok {
        if !reply.output.is_empty() {
            // A reader that stops early (`| head`) is not an error.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", reply.output.trim_end()).and_then(|_| out.flush());
        }
        Ok(true)
    } else {
        eprintln!("error: {}", reply.error);
        Ok(false)
    }
}

/// Streams commands from standard input, one per line, printing one answer line per
/// command (`ok`, the output, or `error: ...`). Returns false if any command failed.
pub fn run_stream(socket: &Path) -> anyhow::Result<bool> {
    let stream = connect(socket)?;
    let writer_stream = stream.try_clone()?;
    // A separate writer keeps the pipe full while answers are read back.
    let writer = std::thread::spawn(move || -> std::io::Result<usize> {
        let mut w = BufWriter::with_capacity(256 * 1024, &writer_stream);
        let mut sent = 0;
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            writeln!(w, "{line}")?;
            sent += 1;
        }
        w.flush()?;
        writer_stream.shutdown(std::net::Shutdown::Write)?;
        Ok(sent)
    });
    let mut all_ok = true;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    for line in BufReader::with_capacity(256 * 1024, &stream).lines() {
        let reply: Reply =
            serde_json::from_str(&line?).context("the daemon's reply is not valid JSON")?;
        let written = if reply.ok {
            if reply.output.is_empty() {
                writeln!(out, "ok")
            } else {
                writeln!(out, "{}", reply.output.trim_end())
            }
        } else {
            all_ok = false;
            writeln!(out, "error: {}", reply.error)
        };
        if written.is_err() {
            break; // the reader went away
        }
    }
    out.flush()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("stdin reader panicked"))??;
    Ok(all_ok)
}

fn connect(socket: &Path) -> anyhow::Result<UnixStream> {
    UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the daemon at {} (is `wasmbgp run` up?)",
            socket.display()
        )
    })
}
