//! `wasmbgp ctl` and `wasmbgp run` through the real binary: the client never reports
//! success for a command that got no answer, and a critical task that dies takes the
//! daemon down with a reason instead of leaving it running headless (issue 7).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmbgp-ctl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `wasmbgp ctl --socket SOCKET -` with `input` on standard input.
fn ctl_stream(socket: &Path, input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbgp"))
        .args(["ctl", "--socket"])
        .arg(socket)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A daemon at `socket` that reads the first command, answers it `ok` if `answer`,
/// then goes away.
fn fake_daemon(socket: &Path, answer: bool) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        if answer {
            (&stream)
                .write_all(b"{\"ok\":true,\"output\":\"\"}\n")
                .unwrap();
        }
    })
}

#[test]
fn a_connection_closed_before_every_answer_is_a_failure() {
    let dir = workdir("early-close");
    let socket = dir.join("fake.sock");
    let fake = fake_daemon(&socket, true);
    let out = ctl_stream(&socket, b"show neighbors\nshow plugins\nshow metrics\n");
    fake.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert!(
        stderr.contains("the daemon closed the connection after 1 of 3 answers"),
        "{stderr}"
    );
}

#[test]
fn a_command_without_an_answer_is_a_failure() {
    let dir = workdir("no-answer");
    let socket = dir.join("fake.sock");
    let fake = fake_daemon(&socket, false);
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbgp"))
        .args(["ctl", "--socket"])
        .arg(&socket)
        .args(["show", "neighbors"])
        .output()
        .unwrap();
    fake.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("closed the connection without answering"),
        "{stderr}"
    );
}

/// A daemon with one neighbor that never answers (connection refused on port 9).
struct Daemon {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    fn start(name: &str, fault_injection: bool) -> Daemon {
        let dir = workdir(name);
        let socket = dir.join("wasmbgp.sock");
        let config = dir.join("wasmbgp.toml");
        std::fs::write(
            &config,
            format!(
                "router-id = \"127.0.0.1\"\nlocal-as = 65001\n[control]\nsocket = \"{}\"\n\
                 [[neighbor]]\naddress = \"127.0.0.1\"\nport = 9\npeer-as = 65000\n\
                 connect-retry = \"1s\"\n",
                socket.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbgp"));
        cmd.arg("run")
            .arg(&config)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .env_remove("WASMBGP_FAULT_INJECTION")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("wasmbgp.log")).unwrap());
        if fault_injection {
            cmd.env("WASMBGP_FAULT_INJECTION", "1");
        }
        let mut daemon = Daemon {
            child: cmd.spawn().unwrap(),
            dir,
            socket,
        };
        let start = Instant::now();
        while daemon.ctl("show neighbors").0 != Some(0) {
            assert!(
                daemon.child.try_wait().unwrap().is_none(),
                "{}",
                daemon.log()
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    fn ctl(&self, command: &str) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmbgp"))
            .args(["ctl", "--socket"])
            .arg(&self.socket)
            .args(command.split(' '))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("wasmbgp.log")).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit.
    fn exit_within(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn dies_with_reason(task: &str, command: &str) {
    let mut daemon = Daemon::start(&format!("panic-{task}"), true);
    // The command may or may not be answered before the process goes.
    let _ = daemon.ctl(command);
    let (status, took) = daemon
        .exit_within(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after a {task} panic:\n{}", daemon.log()));
    let log = daemon.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(took < Duration::from_secs(1), "exited after {took:?}");
    let why = format!("the {task} task panicked: fault injection");
    assert!(log.contains(&why), "no {why:?} in:\n{log}");
    assert!(
        log.contains("exiting so that the service manager restarts wasmbgp"),
        "{log}"
    );
    assert!(
        !daemon.socket.exists(),
        "the control socket was left behind"
    );
}

#[test]
fn a_panicking_speaker_stops_the_daemon_with_its_reason() {
    dies_with_reason("speaker", "debug panic speaker");
}

#[test]
fn a_panicking_neighbor_task_stops_the_daemon_with_its_reason() {
    dies_with_reason("neighbor 127.0.0.1", "debug panic neighbor 127.0.0.1");
}

#[test]
fn debug_commands_are_refused_without_fault_injection() {
    let mut daemon = Daemon::start("no-fault-injection", false);
    let (code, text) = daemon.ctl("debug panic speaker");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("debug commands are off"), "{text}");
    assert!(daemon.exit_within(Duration::from_millis(300)).is_none());
    assert_eq!(daemon.ctl("show neighbors").0, Some(0), "{}", daemon.log());
}

/// `wasmbgp_ctl_replies_total{result}` counts answers, and a client that goes away
/// before reading its answers shows in `wasmbgp_ctl_connection_errors_total`.
#[test]
fn control_answers_and_failed_connections_are_counted() {
    let daemon = Daemon::start("ctl-metrics", false);
    let metric = |name: &str| -> u64 {
        let (code, text) = daemon.ctl("show metrics");
        assert_eq!(code, Some(0), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(daemon.ctl("frobnicate").0, Some(1));
    assert!(metric("wasmbgp_ctl_replies_total{result=\"error\"}") >= 1);
    assert!(metric("wasmbgp_ctl_replies_total{result=\"ok\"}") >= 1);
    assert_eq!(metric("wasmbgp_ctl_connection_errors_total"), 0);
    // Megabytes of answers to a client that closes without reading one.
    let stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    (&stream)
        .write_all(&b"show metrics\n".repeat(2000))
        .unwrap();
    drop(stream);
    let start = Instant::now();
    while metric("wasmbgp_ctl_connection_errors_total") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A reader that stops early (`ctl - | head -1`) ends the client: it neither hangs on
/// a daemon still answering nor reports the closed pipe as a failure.
#[test]
fn a_reader_that_stops_early_ends_the_client() {
    let dir = workdir("head");
    let socket = dir.join("fake.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A daemon that answers every command with 64 KiB of output.
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let answer = format!("{{\"ok\":true,\"output\":\"{}\"}}\n", "x".repeat(64 * 1024));
        for line in BufReader::new(&stream).lines() {
            if line.is_err() || (&stream).write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbgp"))
        .args(["ctl", "--socket"])
        .arg(&socket)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&b"show metrics\n".repeat(20_000));
    });
    // Read one answer line, then close the pipe, as `head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("xxx"),
        "{}",
        &first[..first.len().min(80)]
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ctl - hangs after its reader left"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    feeder.join().unwrap();
    fake.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
