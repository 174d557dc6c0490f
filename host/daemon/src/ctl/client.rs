//! `wasmbgp ctl`: sends commands to the running daemon and prints the answers.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::Context as _;

use super::json::Reply;

/// Sends one command; prints its output; returns false if the daemon reported an error
/// or closed the connection without answering.
pub fn run_one(socket: &Path, command: &str) -> anyhow::Result<bool> {
    let stream = connect(socket)?;
    let mut w = BufWriter::new(&stream);
    writeln!(w, "{command}")
        .and_then(|()| w.flush())
        .context("sending the command to the daemon")?;
    let mut r = BufReader::new(&stream);
    let mut line = String::new();
    if r.read_line(&mut line)
        .context("reading the daemon's reply")?
        == 0
    {
        eprintln!("error: the daemon closed the connection without answering");
        return Ok(false);
    }
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
/// command (`ok`, the output, or `error: ...`). Returns false if any command failed, or
/// if fewer answers came back than commands were sent. Lines go to the daemon as bytes,
/// so one that is not UTF-8 is answered by the daemon like any other bad command.
pub fn run_stream(socket: &Path) -> anyhow::Result<bool> {
    let stream = connect(socket)?;
    let writer_stream = stream.try_clone()?;
    // A separate writer keeps the pipe full while answers are read back.
    let writer = std::thread::spawn(move || -> (usize, std::io::Result<()>) {
        let mut sent = 0;
        let result = send_commands(&writer_stream, &mut sent);
        // Always end our half, so the answers end too, even after a failed read.
        let _ = writer_stream.shutdown(std::net::Shutdown::Write);
        (sent, result)
    });
    let mut answers = 0usize;
    let mut all_ok = true;
    let mut reader_gone = false;
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    for line in BufReader::with_capacity(256 * 1024, &stream).lines() {
        let reply: Reply =
            serde_json::from_str(&line?).context("the daemon's reply is not valid JSON")?;
        answers += 1;
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
            reader_gone = true; // the reader went away (`| head`)
            break;
        }
    }
    let _ = out.flush();
    if reader_gone {
        // Nobody reads the answers any more: stop sending too, or the writer could
        // wait forever on a daemon waiting for us to read.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let (sent, result) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("stdin reader panicked"))?;
    if reader_gone {
        return Ok(all_ok);
    }
    result.context("sending commands")?;
    if answers < sent {
        eprintln!("error: the daemon closed the connection after {answers} of {sent} answers");
        return Ok(false);
    }
    Ok(all_ok)
}

/// Copies standard input to the daemon line by line, skipping blank and `#` lines.
fn send_commands(stream: &UnixStream, sent: &mut usize) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(256 * 1024, stream);
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        let text = line.trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            continue;
        }
        w.write_all(&line)?;
        w.write_all(b"\n")?;
        *sent += 1;
    }
    w.flush()
}

fn connect(socket: &Path) -> anyhow::Result<UnixStream> {
    UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the daemon at {} (is `wasmbgp run` up?)",
            socket.display()
        )
    })
}
