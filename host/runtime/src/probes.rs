//! The network probes behind the `probe` interface, on tokio. Each takes a
//! target already checked against the grants; none resolves names.
//!
//! These are deliberately small: TCP connect, one DNS question over UDP
//! (A/AAAA), and an HTTP/1.0 GET without TLS or redirects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use wasmbgp_bgp::text::quote;

/// Why a probe failed (mirrors the WIT `probe-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// Outside the grant.
    Denied(String),
    /// No answer in time.
    Timeout,
    /// Connection refused or reset.
    Refused(String),
    /// Bad argument.
    Invalid(String),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::Denied(s) => write!(f, "denied: {s}"),
            ProbeFailure::Timeout => write!(f, "timed out"),
            ProbeFailure::Refused(s) => write!(f, "refused: {s}"),
            ProbeFailure::Invalid(s) => write!(f, "invalid: {s}"),
            ProbeFailure::Failed(s) => write!(f, "failed: {s}"),
        }
    }
}

fn io_failure(e: std::io::Error) -> ProbeFailure {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted => {
            ProbeFailure::Refused(e.to_string())
        }
        TimedOut => ProbeFailure::Timeout,
        _ => ProbeFailure::Failed(e.to_string()),
    }
}

async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, ProbeFailure>>,
) -> Result<T, ProbeFailure> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(ProbeFailure::Timeout))
}

/// Parses a probe target "IP:PORT" / "[IPv6]:PORT".
pub fn parse_target(target: &str) -> Result<SocketAddr, ProbeFailure> {
    target
        .trim()
        .parse()
        .map_err(|_| ProbeFailure::Invalid(format!("target {} is not IP:PORT", quote(target))))
}

/// Connects to `addr` and closes; returns the connect time in µs.
pub async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<u64, ProbeFailure> {
    let start = Instant::now();
    within(timeout, async {
        let stream = TcpStream::connect(addr).await.map_err(io_failure)?;
        drop(stream);
        Ok(elapsed_us(start))
    })
    .await
}

fn elapsed_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// DNS record types the probe asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
}

impl RecordKind {
    fn code(self) -> u16 {
        match self {
            RecordKind::A => 1,
            RecordKind::Aaaa => 28,
        }
    }
}

/// A DNS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// Response code.
    pub rcode: u8,
    /// Addresses of matching records.
    pub addresses: Vec<IpAddr>,
    /// Round trip in µs.
    pub elapsed_us: u64,
}

static NEXT_ID: AtomicU16 = AtomicU16::new(0x3a1d);

/// Builds a standard recursive query for `name`/`kind` with `id`.
pub fn dns_encode_query(id: u16, name: &str, kind: RecordKind) -> Result<Vec<u8>, ProbeFailure> {
    let name = name.trim().trim_end_matches('.');
    if name.is_empty() || name.len() > 253 {
        return Err(ProbeFailure::Invalid(format!(
            "DNS name {} is empty or too long",
            quote(name)
        )));
    }
    let mut msg = Vec::with_capacity(18 + name.len());
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; QDCOUNT=1
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(ProbeFailure::Invalid(format!(
                "DNS name {} has a bad label",
                quote(name)
            )));
        }
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&kind.code().to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes()); // IN
    Ok(msg)
}

/// Skips a (possibly compressed) name at `pos`; returns the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xC0 == 0xC0 => return Some(pos + 2),
            l => pos += 1 + l as usize,
        }
    }
    None
}

/// Parses a response to the query `id`: (rcode, addresses of `kind`).
/// `None` when it is not a well-formed response to that query.
pub fn dns_decode_answer(msg: &[u8], id: u16, kind: RecordKind) -> Option<(u8, Vec<IpAddr>)> {
    if msg.len() < 12 || u16::from_be_bytes([msg[0], msg[1]]) != id || msg[2] & 0x80 == 0 {
        return None;
    }
    let rcode = msg[3] & 0x0F;
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..an {
        pos = skip_name(msg, pos)?;
        let header = msg.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let rdlen = u16::from_be_bytes([header[8], header[9]]) as usize;
        let data = msg.get(pos + 10..pos + 10 + rdlen)?;
        if rtype == kind.code() {
            match (kind, data.len()) {
                (RecordKind::A, 4) => addresses.push(IpAddr::V4(Ipv4Addr::new(
                    data[0], data[1], data[2], data[3],
                ))),
                (RecordKind::Aaaa, 16) => {
                    let octets: [u8; 16] = data.try_into().ok()?;
                    addresses.push(IpAddr::V6(Ipv6Addr::from(octets)));
                }
                _ => return None,
            }
        }
        pos += 10 + rdlen;
    }
    Some((rcode, addresses))
}

/// Sends one query to `server` over UDP and waits for its answer.
pub async fn dns_query(
    server: SocketAddr,
    name: &str,
    kind: RecordKind,
    timeout: Duration,
) -> Result<DnsAnswer, ProbeFailure> {
    let id = NEXT_ID.fetch_add(0x9e37, Ordering::Relaxed);
    let query = dns_encode_query(id, name, kind)?;
    let start = Instant::now();
    within(timeout, async {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(io_failure)?;
        socket.connect(server).await.map_err(io_failure)?;
        socket.send(&query).await.map_err(io_failure)?;
        let mut buf = vec![0u8; 4096];
        // Ignore stray datagrams; the timeout bounds the loop.
        loop {
            let n = socket.recv(&mut buf).await.map_err(io_failure)?;
            if let Some((rcode, addresses)) = dns_decode_answer(&buf[..n], id, kind) {
                return Ok(DnsAnswer {
                    rcode,
                    addresses,
                    elapsed_us: elapsed_us(start),
                });
            }
        }
    })
    .await
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, at most the cap.
    pub body: Vec<u8>,
    /// True when the body was cut.
    pub truncated: bool,
    /// Total time in µs.
    pub elapsed_us: u64,
}

/// A parsed "http://IP:PORT/path" URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The Host header value.
    pub host: String,
    /// The request target ("/..." with query).
    pub path: String,
}

/// Parses a plain-HTTP URL whose host is an IP literal.
pub fn parse_http_url(url: &str) -> Result<HttpUrl, ProbeFailure> {
    let invalid = |why: &str| ProbeFailure::Invalid(format!("URL {}: {why}", quote(url)));
    let rest = url
        .trim()
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid("bad characters in path"));
    }
    let addr = match authority.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let ip = authority
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| invalid("host must be an IP address (names are not resolved)"))?;
            SocketAddr::new(ip, 80)
        }
    };
    Ok(HttpUrl {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
    })
}

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Sends `GET` and reads the response, keeping at most `max_body` bytes.
pub async fn http_get(
    url: &HttpUrl,
    timeout: Duration,
    max_body: usize,
) -> Result<HttpResponse, ProbeFailure> {
    let start = Instant::now();
    within(timeout, async {
        let mut stream = TcpStream::connect(url.addr).await.map_err(io_failure)?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: wasmbgp-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            url.path, url.host
        );
        stream.write_all(request.as_bytes()).await.map_err(io_failure)?;
        let limit = MAX_HEAD + max_body + 1;
        let mut data = Vec::with_capacity(4096.min(limit));
        let mut chunk = [0u8; 8192];
        let mut head_end = None;
        let mut content_length: Option<usize> = None;
        loop {
            if let Some(end) = head_end {
                let body_len = data.len() - end;
                if body_len > max_body || content_length.is_some_and(|cl| body_len >= cl) {
                    break;
                }
            } else if data.len() > MAX_HEAD {
                return Err(ProbeFailure::Failed("response head too large".into()));
            }
            let n = stream.read(&mut chunk).await.map_err(io_failure)?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
            if head_end.is_none()
                && let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n")
            {
                head_end = Some(i + 4);
                let head = String::from_utf8_lossy(&data[..i]).to_string();
                content_length = head.lines().skip(1).find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
                });
            }
        }
        let end = head_end.ok_or_else(|| ProbeFailure::Failed("incomplete response head".into()))?;
        let head = String::from_utf8_lossy(&data[..end - 4]).to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts.next().and_then(|s| s.parse::<u16>().ok());
        let status = match (version.starts_with("HTTP/"), status) {
            (true, Some(status)) => status,
            _ => return Err(ProbeFailure::Failed(format!("bad status line {}", quote(status_line)))),
        };
        let headers = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
            })
            .collect();
        let mut body = data.split_off(end);
        let truncated = body.len() > max_body;
        body.truncate(max_body);
        Ok(HttpResponse { status, headers, body, truncated, elapsed_us: elapsed_us(start) })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_round_trip() {
        let q = dns_encode_query(7, "svc.test", RecordKind::A).unwrap();
        // Build a response: the query with QR set, ANCOUNT=1, one A record
        // whose name is a compression pointer to the question.
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10]);
        let (rcode, addrs) = dns_decode_answer(&r, 7, RecordKind::A).unwrap();
        assert_eq!(rcode, 0);
        assert_eq!(addrs, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
        assert!(dns_decode_answer(&r, 8, RecordKind::A).is_none());
        assert!(dns_decode_answer(&r[..20], 7, RecordKind::A).is_none());
        assert!(dns_encode_query(1, "a..b", RecordKind::A).is_err());
    }

    #[test]
    fn urls() {
        let u = parse_http_url("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.path, "/health?x=1");
        let u = parse_http_url("http://[::1]").unwrap();
        assert_eq!(u.addr, "[::1]:80".parse().unwrap());
        assert_eq!(u.path, "/");
        assert!(parse_http_url("https://127.0.0.1/").is_err());
        assert!(parse_http_url("http://example.com/").is_err());
    }
}
