//! HTTPS health checks against a real `openssl s_server` on loopback, with a
//! throwaway CA and server certificate made by `openssl` at test time: the
//! right server name and CA pass, a wrong name or an unknown CA fail with a
//! certificate reason, a target outside the grant is denied without a
//! connection. Addresses 127.1.6.0/24, ports 12620-12629 (block 262).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use wasmbgp_runtime::Health;
use wasmbgp_runtime::probes::{self, ProbeFailure, TlsTrust};

const T: Duration = Duration::from_secs(5);

/// Runs `cmd`, panicking with its output unless it exits 0.
fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (Debian's openssl is needed)"));
    assert!(
        out.status.success(),
        "{cmd:?} exited {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a server certificate it signed for `vip.test` and the
/// server's IP address, in a folder removed on drop; `health` is the file
/// `s_server -WWW` serves at /health.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str, ip: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("wasmbgp-https-probe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .current_dir(&dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=wasmbgp throwaway test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        run(Command::new("openssl")
            .current_dir(&dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=vip.test"]));
        std::fs::write(
            dir.join("server.ext"),
            format!(
                "subjectAltName=DNS:vip.test,IP:{ip}\n\
                 basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .current_dir(&dir)
            .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem"])
            .args(["-CAkey", "ca.key", "-CAcreateserial", "-days", "2"])
            .args(["-extfile", "server.ext", "-out", "server.pem"]));
        std::fs::write(dir.join("health"), "healthy\n").unwrap();
        Pki { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `openssl s_server -WWW` on `addr`, serving the files of the PKI folder.
struct SServer {
    child: Child,
    addr: SocketAddr,
}

impl SServer {
    async fn start(pki: &Pki, addr: &str) -> SServer {
        let log = std::fs::File::create(pki.dir.join("s_server.log")).unwrap();
        let child = Command::new("openssl")
            .current_dir(&pki.dir)
            .args(["s_server", "-accept", addr, "-cert", "server.pem"])
            .args(["-key", "server.key", "-WWW"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("openssl s_server (Debian openssl) starts");
        let mut server = SServer {
            child,
            addr: addr.parse().unwrap(),
        };
        // Ready when it accepts (bounded: 5 s).
        let start = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "openssl s_server exited {status}: {}",
                    std::fs::read_to_string(pki.dir.join("s_server.log")).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(server.addr).await.is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "openssl s_server did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An http-check spec for `url` with `server_name`, granted `grant` (and the CA when
/// `ca` is given).
fn https_spec(
    name: &str,
    url: &str,
    server_name: Option<&str>,
    grant: &str,
    ca: Option<&Path>,
) -> wasmbgp_runtime::PluginSpec {
    let mut settings = vec![
        ("url", url),
        ("expect-status", "200"),
        ("expect-body", "healthy"),
        ("timeout", "2s"),
    ];
    if let Some(server_name) = server_name {
        settings.push(("tls-server-name", server_name));
    }
    let mut spec = spec(name, "http-check", &settings);
    spec.grants.http = vec![grant.to_string()];
    spec.grants.http_ca = ca.map(Path::to_path_buf);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_check_with_the_right_name_and_ca_is_healthy() {
    let pki = Pki::new("good", "127.1.6.1");
    let server = SServer::start(&pki, "127.1.6.1:12620").await;
    let runtime = runtime();
    let url = format!("https://{}/health", server.addr);
    let spec = https_spec(
        "vip",
        &url,
        Some("vip.test"),
        "127.1.6.1:12620",
        Some(&pki.ca()),
    );
    let mut p = start(&runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "{reason}");
    assert!(reason.contains("(vip.test) answered 200"), "{reason}");
    assert_eq!(p.handle.status().denied, 0);
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_check_with_a_wrong_name_or_an_unknown_ca_fails_on_the_certificate() {
    let pki = Pki::new("bad", "127.1.6.2");
    let server = SServer::start(&pki, "127.1.6.2:12621").await;
    let runtime = runtime();
    let url = format!("https://{}/health", server.addr);

    let wrong_name = https_spec(
        "wrong-name",
        &url,
        Some("wrong.test"),
        "127.1.6.2:12621",
        Some(&pki.ca()),
    );
    let mut p = start(&runtime, wrong_name);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(
        reason.contains("certificate of 127.1.6.2:12621 for \"wrong.test\" rejected"),
        "{reason}"
    );
    assert!(reason.contains("not valid for name"), "{reason}");
    p.handle.stop().await;

    // The right name, but the private CA is not granted: Mozilla's roots alone.
    let no_ca = https_spec("no-ca", &url, Some("vip.test"), "127.1.6.2:12621", None);
    let mut p = start(&runtime, no_ca);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(reason.contains("certificate of"), "{reason}");
    assert!(reason.contains("unknown issuer"), "{reason}");
    p.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_target_outside_the_grant_is_denied_without_a_connection() {
    let runtime = runtime();
    // Something listening where the plugin points, which must never see it.
    let victim = Listener::bind("127.1.6.3:12622").await;
    let spec = https_spec(
        "nosy",
        "https://127.1.6.3:12622/health",
        Some("vip.test"),
        "127.1.6.3:12623",
        None,
    );
    let mut p = start(&runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Down, "{reason}");
    assert!(
        reason.contains("denied") && reason.contains("127.1.6.3:12622"),
        "{reason}"
    );
    eventually(T, "two denied probes", || p.handle.status().denied >= 2).await;
    p.handle.stop().await;
    assert_eq!(victim.count(), 0, "the denied target saw a connection");
}

/// The probe itself (no plugin): without a server name the certificate must be
/// valid for the IP address (as `http-get` of https:// asks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_probe_checks_the_ip_without_a_name() {
    let pki = Pki::new("ip", "127.1.6.4");
    let server = SServer::start(&pki, "127.1.6.4:12624").await;
    let cas = wasmbgp_runtime::grants::read_ca_file(&pki.ca()).unwrap();
    let trust = TlsTrust::new(&cas).unwrap();
    let url = probes::parse_http_url(&format!("https://{}/health", server.addr)).unwrap();
    let r = probes::http_get(&url, &trust, T, 4).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!((r.body.as_slice(), r.truncated), (&b"heal"[..], true));
    assert!(r.headers.iter().all(|(k, _)| *k == k.to_ascii_lowercase()));

    let named = url.clone().with_server_name("other.test").unwrap();
    match probes::http_get(&named, &trust, T, 4).await {
        Err(ProbeFailure::Failed(why)) => assert!(why.starts_with("certificate of"), "{why}"),
        other => panic!("expected a certificate failure, got {other:?}"),
    }
    // Nothing listens on the next port: refused, as for plain HTTP.
    let closed = probes::parse_http_url("https://127.1.6.4:12625/health").unwrap();
    assert!(matches!(
        probes::http_get(&closed, &trust, T, 4).await,
        Err(ProbeFailure::Refused(_))
    ));
}
