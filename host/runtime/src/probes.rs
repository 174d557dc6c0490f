//! The network probes behind the `probe` interface, on tokio. Each takes a
//! target already checked against the grants; none resolves names.
//!
//! - TCP: connect and close.
//! - DNS: one question (A/AAAA) over UDP; the query is built and the answer
//!   parsed by `hickory-proto`, the exchange is a tokio UDP socket.
//! - HTTP(S): one `GET` on a fresh connection through hyper's HTTP/1.1 client
//!   connection (no pool, no redirects), over rustls (ring) for `https://`. The
//!   server's certificate must chain to Mozilla's roots (`webpki-roots`) or to a
//!   CA of `grants.http-ca` ([`TlsTrust`]) and be valid for the server name the
//!   plugin gives (else for the URL's IP address); sessions are never resumed,
//!   so every check verifies the certificate afresh. The body is read frame by
//!   frame and cut at the cap.
//!
//! Built with the `engine` feature only (the config loader needs none of it).

#![cfg(feature = "engine")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures::future::{Either, select};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
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
    fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
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

/// One DNS question: a standard recursive query for a name and a record type, with
/// a random id; what its answer must match.
#[derive(Debug, Clone)]
pub struct DnsQuestion {
    message: Message,
    kind: RecordKind,
}

impl DnsQuestion {
    /// The question for `name` (ASCII, absolute: never searched) and `kind`.
    pub fn new(name: &str, kind: RecordKind) -> Result<Self, ProbeFailure> {
        let text = name.trim().trim_end_matches('.');
        let bad = |why: String| ProbeFailure::Invalid(format!("DNS name {}: {why}", quote(name)));
        if text.is_empty() || text.len() > 253 {
            return Err(bad("empty or too long".into()));
        }
        let mut qname = Name::from_ascii(text).map_err(|e| bad(e.to_string()))?;
        qname.set_fqdn(true);
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(qname, kind.record_type()));
        Ok(DnsQuestion { message, kind })
    }

    /// The query's id.
    pub fn id(&self) -> u16 {
        self.message.metadata.id
    }

    /// The query in wire format.
    pub fn encode(&self) -> Result<Vec<u8>, ProbeFailure> {
        self.message
            .to_vec()
            .map_err(|e| ProbeFailure::Invalid(format!("DNS query: {e}")))
    }

    /// Parses `msg` as the answer to this question: (rcode, the addresses of the
    /// records of the type asked in the answer section). `None` when it is not a
    /// well-formed response to it (another id, a query, another question).
    pub fn decode_answer(&self, msg: &[u8]) -> Option<(u8, Vec<IpAddr>)> {
        let answer = Message::from_vec(msg).ok()?;
        if answer.metadata.id != self.id() || answer.metadata.message_type != MessageType::Response
        {
            return None;
        }
        // Some servers leave the question out of an error answer; when it is there,
        // it must be ours.
        if !answer.queries.is_empty() && answer.queries != self.message.queries {
            return None;
        }
        let rcode = u8::try_from(u16::from(answer.metadata.response_code)).unwrap_or(u8::MAX);
        let addresses = answer
            .answers
            .iter()
            .filter_map(|record| match (&record.data, self.kind) {
                (RData::A(a), RecordKind::A) => Some(IpAddr::V4(a.0)),
                (RData::AAAA(aaaa), RecordKind::Aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect();
        Some((rcode, addresses))
    }
}

/// Sends one query to `server` over UDP and waits for its answer.
pub async fn dns_query(
    server: SocketAddr,
    name: &str,
    kind: RecordKind,
    timeout: Duration,
) -> Result<DnsAnswer, ProbeFailure> {
    let question = DnsQuestion::new(name, kind)?;
    let query = question.encode()?;
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
            if let Some((rcode, addresses)) = question.decode_answer(&buf[..n]) {
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
    /// Header fields, names lower-cased (a repeated name's values together).
    pub headers: Vec<(String, String)>,
    /// The body, at most the cap.
    pub body: Vec<u8>,
    /// True when the body was cut.
    pub truncated: bool,
    /// Total time in µs.
    pub elapsed_us: u64,
}

/// A parsed "http://IP:PORT/path" or "https://IP:PORT/path" URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// True for https://.
    pub https: bool,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The Host header value.
    pub host: String,
    /// The request target ("/..." with query).
    pub path: String,
    /// HTTPS: the name sent as SNI that the certificate must be valid for (the
    /// URL's IP address unless [`HttpUrl::with_server_name`] says otherwise).
    pub tls_name: ServerName<'static>,
}

impl HttpUrl {
    /// The URL's port when the scheme's default.
    fn default_port(&self) -> u16 {
        if self.https { 443 } else { 80 }
    }

    /// Names the service behind the address: `name` becomes the Host header
    /// ("name", or "name:port" on a port that is not the scheme's default) and,
    /// for https://, the TLS server name. Names are never resolved.
    pub fn with_server_name(mut self, name: &str) -> Result<Self, ProbeFailure> {
        let name = name.trim().trim_end_matches('.');
        let tls_name = ServerName::try_from(name.to_string()).map_err(|_| {
            ProbeFailure::Invalid(format!("server name {} is not a DNS name", quote(name)))
        })?;
        let host = match &tls_name {
            ServerName::IpAddress(ip) => match IpAddr::from(*ip) {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            },
            _ => name.to_ascii_lowercase(),
        };
        self.host = if self.addr.port() == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.addr.port())
        };
        self.tls_name = tls_name;
        Ok(self)
    }
}

/// Parses an HTTP or HTTPS URL whose host is an IP literal (port 80 / 443 by
/// default).
pub fn parse_http_url(url: &str) -> Result<HttpUrl, ProbeFailure> {
    let invalid = |why: &str| ProbeFailure::Invalid(format!("URL {}: {why}", quote(url)));
    let trimmed = url.trim();
    let (https, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(invalid("only http:// and https:// are supported"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid("bad characters in path"));
    }
    let path = path.split('#').next().unwrap_or("/");
    if path.parse::<hyper::Uri>().is_err() {
        return Err(invalid("bad characters in path"));
    }
    let addr = match authority.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let ip = authority
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(authority)
                .parse::<IpAddr>()
                .map_err(|_| invalid("host must be an IP address (names are not resolved)"))?;
            SocketAddr::new(ip, if https { 443 } else { 80 })
        }
    };
    Ok(HttpUrl {
        https,
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        tls_name: ServerName::IpAddress(addr.ip().into()),
    })
}

/// What HTTPS probes trust: Mozilla's roots (`webpki-roots`) and the CAs of
/// `grants.http-ca`, as a rustls client config (ring; TLS 1.2 and 1.3; no session
/// resumption, so every probe verifies the certificate).
#[derive(Clone)]
pub struct TlsTrust {
    config: Arc<ClientConfig>,
    extra_cas: usize,
}

impl TlsTrust {
    /// Mozilla's roots plus `extra_cas` (each must be a usable trust anchor).
    pub fn new(extra_cas: &[CertificateDer<'static>]) -> anyhow::Result<Self> {
        if extra_cas.is_empty() {
            return Ok(Self::default());
        }
        let mut roots = mozilla_roots();
        for (i, ca) in extra_cas.iter().enumerate() {
            roots
                .add(ca.clone())
                .map_err(|e| anyhow::anyhow!("certificate {} is not a usable CA: {e}", i + 1))?;
        }
        Ok(TlsTrust {
            config: client_config(roots)?,
            extra_cas: extra_cas.len(),
        })
    }
}

fn mozilla_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn client_config(roots: RootCertStore) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

impl Default for TlsTrust {
    /// Mozilla's roots alone (built once).
    fn default() -> Self {
        static MOZILLA: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| {
            client_config(mozilla_roots()).expect("ring offers the default TLS versions")
        });
        TlsTrust {
            config: MOZILLA.clone(),
            extra_cas: 0,
        }
    }
}

impl std::fmt::Debug for TlsTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTrust")
            .field("mozilla_roots", &webpki_roots::TLS_SERVER_ROOTS.len())
            .field("extra_cas", &self.extra_cas)
            .finish()
    }
}

/// The largest response head accepted (hyper's read buffer).
const MAX_HEAD: usize = 64 * 1024;

/// Sends `GET` (HTTP/1.1, `Connection: close`) on a fresh connection, over TLS for
/// https:// checked against `trust`, and reads the response, keeping at most
/// `max_body` bytes of body.
pub async fn http_get(
    url: &HttpUrl,
    trust: &TlsTrust,
    timeout: Duration,
    max_body: usize,
) -> Result<HttpResponse, ProbeFailure> {
    let start = Instant::now();
    within(timeout, async {
        let tcp = TcpStream::connect(url.addr).await.map_err(io_failure)?;
        if url.https {
            let tls = TlsConnector::from(trust.config.clone())
                .connect(url.tls_name.clone(), tcp)
                .await
                .map_err(|e| tls_failure(e, url))?;
            exchange(TokioIo::new(tls), url, max_body, start).await
        } else {
            exchange(TokioIo::new(tcp), url, max_body, start).await
        }
    })
    .await
}

/// One request and its response on `io`, driving hyper's connection in this task
/// (nothing outlives the probe's timeout).
async fn exchange<T>(
    io: T,
    url: &HttpUrl,
    max_body: usize,
    start: Instant,
) -> Result<HttpResponse, ProbeFailure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
    let request = hyper::Request::get(url.path.as_str())
        .header(HOST, url.host.as_str())
        .header(USER_AGENT, "wasmbgp-probe")
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ProbeFailure::Invalid(format!("request: {e}")))?;
    let (mut sender, conn) = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake(io)
        .await
        .map_err(hyper_failure)?;
    let response = pin!(async move {
        let response = sender.send_request(request).await.map_err(hyper_failure)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
                (name.as_str().to_string(), value)
            })
            .collect();
        let mut incoming = response.into_body();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(frame) = incoming.frame().await {
            let Ok(data) = frame.map_err(hyper_failure)?.into_data() else {
                continue; // trailers
            };
            let room = max_body - body.len();
            if data.len() > room {
                body.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&data);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
            truncated,
            elapsed_us: elapsed_us(start),
        })
    });
    match select(response, pin!(conn)).await {
        Either::Left((result, _conn)) => result,
        // The connection ended first: what it delivered is still readable, and a
        // failure of the exchange is best told by the connection's own error.
        Either::Right((ended, response)) => match (response.await, ended) {
            (Err(_), Err(e)) => Err(hyper_failure(e)),
            (result, _) => result,
        },
    }
}

/// A hyper error as a probe failure: I/O errors as such, the rest with their causes.
fn hyper_failure(e: hyper::Error) -> ProbeFailure {
    use std::error::Error;
    if e.is_timeout() {
        return ProbeFailure::Timeout;
    }
    let mut source = e.source();
    let mut text = e.to_string();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | ConnectionReset | ConnectionAborted => {
                    return ProbeFailure::Refused(io.to_string());
                }
                TimedOut => return ProbeFailure::Timeout,
                _ => {}
            }
        }
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    ProbeFailure::Failed(text)
}

/// A failed TLS handshake: a rejected certificate is named as such.
fn tls_failure(e: std::io::Error, url: &HttpUrl) -> ProbeFailure {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return match io_failure(e) {
            ProbeFailure::Failed(why) => {
                ProbeFailure::Failed(format!("TLS handshake with {}: {why}", url.addr))
            }
            other => other,
        };
    };
    let name = match &url.tls_name {
        ServerName::DnsName(name) => name.as_ref().to_string(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    };
    match tls {
        rustls::Error::InvalidCertificate(why) => {
            let why = match why {
                rustls::CertificateError::UnknownIssuer => {
                    "unknown issuer (not signed by Mozilla's roots or a grants.http-ca CA)"
                        .to_string()
                }
                other => other.to_string(),
            };
            ProbeFailure::Failed(format!(
                "certificate of {} for {name:?} rejected: {why}",
                url.addr
            ))
        }
        other => ProbeFailure::Failed(format!(
            "TLS handshake with {} for {name:?}: {other}",
            url.addr
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn dns_round_trip() {
        let q = DnsQuestion::new("svc.test", RecordKind::A).unwrap();
        let wire = q.encode().unwrap();
        // The wire format by hand: header (RD, QDCOUNT=1), then the question.
        assert_eq!(&wire[..2], &q.id().to_be_bytes());
        assert_eq!(&wire[2..12], &[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&wire[12..], b"\x03svc\x04test\x00\x00\x01\x00\x01");
        // A response built by hand: the query with QR set, ANCOUNT=1, one A record
        // whose name is a compression pointer to the question.
        let mut r = wire.clone();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10]);
        let (rcode, addrs) = q.decode_answer(&r).unwrap();
        assert_eq!(rcode, 0);
        assert_eq!(addrs, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
        // Not an answer to it: the query itself, another id, a cut message.
        assert!(q.decode_answer(&wire).is_none());
        let mut other = r.clone();
        other[0] ^= 0xff;
        assert!(q.decode_answer(&other).is_none());
        assert!(q.decode_answer(&r[..20]).is_none());
        assert!(q.decode_answer(&[]).is_none());
        for bad in ["a..b", "", ".", &"x".repeat(64), &"a.".repeat(130)] {
            assert!(
                matches!(
                    DnsQuestion::new(bad, RecordKind::A),
                    Err(ProbeFailure::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dns_answers_keep_the_type_asked_and_the_rcode() {
        let q = DnsQuestion::new("www.svc.test.", RecordKind::Aaaa).unwrap();
        let name = Name::from_ascii("www.svc.test.").unwrap();
        let target = Name::from_ascii("edge.svc.test.").unwrap();
        let mut m = Message::response(q.id(), hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::AAAA));
        m.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::CNAME(CNAME(target.clone())),
        ));
        m.add_answer(Record::from_rdata(
            target.clone(),
            60,
            RData::AAAA(AAAA("2001:db8::10".parse().unwrap())),
        ));
        m.add_answer(Record::from_rdata(
            target,
            60,
            RData::A(A("192.0.2.1".parse().unwrap())),
        ));
        let (rcode, addrs) = q.decode_answer(&m.to_vec().unwrap()).unwrap();
        assert_eq!(rcode, 0);
        assert_eq!(addrs, vec!["2001:db8::10".parse::<IpAddr>().unwrap()]);

        // NXDOMAIN, question echoed; then another question: not ours.
        let mut nx = Message::error_msg(
            q.id(),
            hickory_proto::op::OpCode::Query,
            ResponseCode::NXDomain,
        );
        nx.add_query(Query::query(name, RecordType::AAAA));
        assert_eq!(q.decode_answer(&nx.to_vec().unwrap()), Some((3, vec![])));
        let mut wrong = nx.clone();
        wrong.queries[0].query_type = RecordType::A;
        assert!(q.decode_answer(&wrong.to_vec().unwrap()).is_none());
        // REFUSED without a question section.
        let refused = Message::error_msg(
            q.id(),
            hickory_proto::op::OpCode::Query,
            ResponseCode::Refused,
        );
        assert_eq!(
            q.decode_answer(&refused.to_vec().unwrap()),
            Some((5, vec![]))
        );
    }

    #[test]
    fn urls() {
        let u = parse_http_url("http://127.0.0.1:8080/health?x=1").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.path, "/health?x=1");
        assert_eq!(u.host, "127.0.0.1:8080");
        assert!(!u.https);
        let u = parse_http_url("http://[::1]").unwrap();
        assert_eq!(u.addr, "[::1]:80".parse().unwrap());
        assert_eq!(u.path, "/");
        let u = parse_http_url("https://192.0.2.1/x#frag").unwrap();
        assert!(u.https);
        assert_eq!(u.addr, "192.0.2.1:443".parse().unwrap());
        assert_eq!(u.path, "/x");
        assert_eq!(u.tls_name, ServerName::try_from("192.0.2.1").unwrap());
        let u = u.with_server_name("VIP.test").unwrap();
        assert_eq!(u.host, "vip.test");
        assert_eq!(u.tls_name, ServerName::try_from("vip.test").unwrap());
        let u = parse_http_url("https://[2001:db8::1]:8443/")
            .unwrap()
            .with_server_name("vip.test")
            .unwrap();
        assert_eq!(u.host, "vip.test:8443");
        for bad in [
            "ftp://127.0.0.1/",
            "http://example.com/",
            "https://example.com/",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/a\tb",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
        let u = parse_http_url("https://192.0.2.1/").unwrap();
        for bad in ["", "a b", "vip.test\r\nX: y", "*"] {
            assert!(u.clone().with_server_name(bad).is_err(), "{bad:?}");
        }
    }

    /// A one-shot server on loopback answering with `response` (raw bytes), then
    /// closing; returns its address and what it read.
    async fn serve_once(response: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16384 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(response).await;
            let _ = stream.shutdown().await;
            seen
        });
        (addr, task)
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn http_chunked_body_is_cut_at_the_cap() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nX-Mixed-Case: Yes\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await;
        let url = parse_http_url(&format!("http://{addr}/h"))
            .unwrap()
            .with_server_name("vip.test")
            .unwrap();
        let r = http_get(&url, &TlsTrust::default(), T, 7).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello w");
        assert!(r.truncated);
        assert!(
            r.headers.contains(&("x-mixed-case".into(), "Yes".into())),
            "{:?}",
            r.headers
        );
        let request = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(request.starts_with("GET /h HTTP/1.1\r\n"), "{request}");
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("host: vip.test:{}\r\n", addr.port())),
            "{request}"
        );
        assert!(lower.contains("connection: close\r\n"), "{request}");
    }

    #[tokio::test]
    async fn http_body_to_close_and_exact_cap() {
        // HTTP/1.0 without a length: the body ends when the server closes.
        let (addr, _server) =
            serve_once(b"HTTP/1.0 503 Busy\r\nContent-Type: text/plain\r\n\r\nsick\n").await;
        let url = parse_http_url(&format!("http://{addr}/")).unwrap();
        let r = http_get(&url, &TlsTrust::default(), T, 5).await.unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.truncated),
            (503, &b"sick\n"[..], false)
        );
        assert!(r.elapsed_us > 0);
        // A bad response head.
        let (addr, _server) = serve_once(b"SMTP ready\r\n\r\n").await;
        let url = parse_http_url(&format!("http://{addr}/")).unwrap();
        let e = http_get(&url, &TlsTrust::default(), T, 5)
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeFailure::Failed(_)), "{e:?}");
    }

    #[tokio::test]
    async fn http_refused_and_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = parse_http_url(&format!("http://{addr}/")).unwrap();
        let e = http_get(&url, &TlsTrust::default(), T, 5)
            .await
            .unwrap_err();
        assert!(matches!(e, ProbeFailure::Refused(_)), "{e:?}");
        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = parse_http_url(&format!("https://{}/", listener.local_addr().unwrap())).unwrap();
        let e = http_get(&url, &TlsTrust::default(), Duration::from_millis(200), 5)
            .await
            .unwrap_err();
        assert_eq!(e, ProbeFailure::Timeout);
    }

    #[test]
    fn tls_trust_refuses_a_non_ca() {
        assert!(TlsTrust::new(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]).is_err());
        let debug = format!("{:?}", TlsTrust::default());
        assert!(debug.contains("extra_cas: 0"), "{debug}");
    }
}
