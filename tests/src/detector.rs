//! A DDoS detector's HTTP endpoint for the tests: a loopback HTTP/1.1 server in a
//! thread that answers every request with the JSON document the test set last, and
//! counts the requests. Each connection is served once and closed; reads and writes
//! time out, and the thread stops when the [`Detector`] is dropped.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::Worker;

/// The endpoint; stopped on drop.
pub struct Detector {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    _worker: Worker,
}

impl Detector {
    /// Listens on `addr` (`IP:PORT`, port 0 for any), answering `body`.
    pub fn start(addr: &str, body: &str) -> Result<Self> {
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let body = Arc::new(Mutex::new(body.to_owned()));
        let requests = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (body, requests) = (body.clone(), requests.clone());
            Worker::spawn(move |stop| {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let answer = body.lock().map(|b| b.clone()).unwrap_or_default();
                            if serve(stream, &answer).is_ok() {
                                requests.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(Self {
            addr,
            body,
            requests,
            _worker: worker,
        })
    }

    /// The URL of the endpoint, `http://IP:PORT/attacks`.
    pub fn url(&self) -> String {
        format!("http://{}/attacks", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `body` from now on.
    pub fn set(&self, body: &str) {
        if let Ok(mut b) = self.body.lock() {
            *b = body.to_owned();
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Reads one request's head (its body, if any, is ignored) and answers `body`.
fn serve(stream: TcpStream, body: &str) -> Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    Ok(())
}

/// The detector's document listing `attacks` (JSON objects, already rendered).
pub fn attacks_json(attacks: &[String]) -> String {
    format!("{{\"attacks\":[{}]}}", attacks.join(","))
}
