//! A DDoS detector's HTTP endpoint for the tests: a loopback HTTP/1.1 server in a
//! thread that answers every request with the JSON document the test set last, and
//! counts the requests (and keeps when each came, [`Detector::request_times`]). Each
//! connection is served once and closed; reads and writes time out, and the thread
//! stops when the [`Detector`] is dropped (the port then refuses connections).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::process::Worker;

/// The endpoint; stopped on drop.
pub struct Detector {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    times: Arc<Mutex<Vec<Instant>>>,
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
        let times = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (body, requests, times) = (body.clone(), requests.clone(), times.clone());
            Worker::spawn(move |stop| {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let answer = body.lock().map(|b| b.clone()).unwrap_or_default();
                            // After the document was taken: a request timed at or
                            // after a `set` returned got that document or a later one.
                            let taken = Instant::now();
                            if serve(stream, &answer).is_ok() {
                                requests.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut t) = times.lock() {
                                    t.push(taken);
                                }
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
            times,
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

    /// When each request answered so far took its document, oldest first.
    pub fn request_times(&self) -> Vec<Instant> {
        self.times.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// When the first request answered at or after `since` took its document.
    pub fn first_request_after(&self, since: Instant) -> Option<Instant> {
        self.request_times().into_iter().find(|t| *t >= since)
    }

    /// When the last request answered before `until` took its document.
    pub fn last_request_before(&self, until: Instant) -> Option<Instant> {
        self.request_times().into_iter().rfind(|t| *t < until)
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
