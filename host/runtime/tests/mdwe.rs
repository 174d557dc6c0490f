//! Plugins under MemoryDenyWriteExecute: `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`,
//! the kernel's form of what systemd's `MemoryDenyWriteExecute=yes` asks for. Once set
//! (inherited by children, kept across exec) no memory may gain execute permission,
//! which is how wasmtime makes compiled code executable by default.
//!
//! `plugins_run_under_mdwe` runs this test binary again as a child that sets MDWE
//! before exec and runs `under_mdwe_child` there: wasmtime's own code loading must fail
//! (the proof that MDWE is on), while the default runtime (`CodeMemory::Auto`: memfd
//! mappings) compiles a component fresh, loads others from the `.cwasm` cache, runs
//! Rust and Python health checks until they report up, and calls Rust and Python
//! policies. Both processes time the same policy calls; the parent prints both and
//! fails if the cost under MDWE is that of interpreted code. A last child runs the same
//! checks under systemd 252's form of MemoryDenyWriteExecute= instead: a seccomp filter (EPERM for
//! `mprotect(PROT_EXEC)` and `mmap(PROT_WRITE | PROT_EXEC)`), as on Debian 12.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Listener, root, start};
use wasmbgp_bgp::Prefix;
use wasmbgp_bgp::packet::attributes::PathAttributes;
use wasmbgp_runtime::engine::{CodeMemory, ExecGain};
use wasmbgp_runtime::{
    Direction, Health, PluginSpec, PolicySession, Runtime, RuntimeOptions, Verdict, World,
};

const T: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "WASMBGP_MDWE_CHILD";
const RESULT: &str = "mdwe-result";
/// Measurement rounds (parent, child, parent with memfd code): at least this many...
const MIN_ROUNDS: usize = 2;
/// ...and more, up to this many, while the costs differ by 20 % or more either way
/// (noise on a shared machine).
const MAX_ROUNDS: usize = 6;
/// Above this ratio of call costs (under MDWE / without) the plugin code is not running
/// compiled: the interpreter is 6.5x or more.
const NATIVE_BOUND: f64 = 3.0;

/// Call costs of one process, in ns (medians).
#[derive(Debug, Clone, Copy)]
struct Costs {
    /// bogon-filter (Rust), one route per call.
    rust_one: f64,
    /// bogon-filter (Rust), 4096 routes per call.
    rust_batch: f64,
    /// bogon-filter-py, one route per call.
    python_one: f64,
}

impl Costs {
    fn line(&self, label: &str) -> String {
        format!(
            "{RESULT} {label} rust_one_ns={:.0} rust_batch_ns={:.0} python_one_ns={:.0}",
            self.rust_one, self.rust_batch, self.python_one
        )
    }

    fn parse(line: &str) -> Option<Costs> {
        let mut fields = line
            .split_whitespace()
            .skip(2)
            .map(|kv| kv.split_once('=').and_then(|(_, v)| v.parse::<f64>().ok()));
        Some(Costs {
            rust_one: fields.next()??,
            rust_batch: fields.next()??,
            python_one: fields.next()??,
        })
    }

    /// The element-wise minimum (the steadier of two runs).
    fn min(self, other: Costs) -> Costs {
        Costs {
            rust_one: self.rust_one.min(other.rust_one),
            rust_batch: self.rust_batch.min(other.rust_batch),
            python_one: self.python_one.min(other.python_one),
        }
    }
}

fn cached_runtime(code_memory: CodeMemory) -> Runtime {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("wasmbgp_runtime=info,warn")
        .try_init();
    Runtime::with_options(RuntimeOptions {
        cache_dir: Some(root().join("target/plugin-cache")),
        code_memory,
        ..RuntimeOptions::default()
    })
    .unwrap()
}

fn session() -> PolicySession {
    PolicySession {
        neighbor: "127.0.0.2".parse().unwrap(),
        peer_as: 65002,
        local_as: 65001,
    }
}

/// `target/plugins/NAME.wasm`: built by the parent (scripts/build-plugins.sh, which
/// waits for cargo's lock), taken as it is by the child.
fn component(name: &str) -> std::path::PathBuf {
    if std::env::var_os(CHILD_ENV).is_some() {
        let path = root().join("target/plugins").join(format!("{name}.wasm"));
        assert!(path.is_file(), "{} missing", path.display());
        path
    } else {
        common::component(name)
    }
}

fn policy(name: &str, component_name: &str) -> PluginSpec {
    PluginSpec::new(name, World::Policy, component(component_name))
}

/// `n` distinct public /24s (accepted by the bogon filters) sharing one attribute set.
fn routes(n: u32) -> Vec<(Prefix, Arc<PathAttributes>)> {
    let attrs = Arc::new(PathAttributes::default());
    (0..n)
        .map(|i| {
            let p: Prefix = format!("20.{}.{}.0/24", i >> 8, i & 0xff).parse().unwrap();
            (p, attrs.clone())
        })
        .collect()
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The median time of `calls` evaluations of `batch` routes by policy `component_name`
/// (after a warm-up), checking the verdicts.
async fn time_policy(runtime: &Runtime, component_name: &str, batch: u32, calls: usize) -> f64 {
    let p = start(runtime, policy(component_name, component_name));
    let client = p.handle.policy().expect("a policy client").clone();
    let input = routes(batch);
    let input: Vec<(Prefix, &PathAttributes)> =
        input.iter().map(|(p, a)| (p.clone(), &**a)).collect();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls + calls / 5 {
        let t = Instant::now();
        let v = client
            .evaluate(Direction::Import, session(), &input)
            .await
            .unwrap_or_else(|e| panic!("{component_name}: {e:?}"));
        let elapsed = t.elapsed();
        assert_eq!(v.len(), input.len());
        assert_eq!(v.get(0), Verdict::Accept, "{component_name}");
        if i >= calls / 5 {
            times.push(elapsed.as_nanos() as f64);
        }
    }
    p.handle.stop().await;
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The fastest of 5 `check`s of `name` from the disk cache, each by a new runtime,
/// and the size of the memfd code mappings of the last runtime.
fn load_cost(code_memory: CodeMemory, name: &str) -> (Duration, u64) {
    let memfd_code = || -> u64 {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|l| l.contains("memfd:wasmbgp-plugin-code"))
            .filter_map(|l| {
                let (from, to) = l.split_whitespace().next()?.split_once('-')?;
                Some(u64::from_str_radix(to, 16).ok()? - u64::from_str_radix(from, 16).ok()?)
            })
            .sum()
    };
    let spec = PluginSpec::new(name, World::Healthcheck, component(name));
    let mut best = Duration::MAX;
    let mut mapped = 0;
    for _ in 0..5 {
        let runtime = cached_runtime(code_memory);
        let before = memfd_code();
        let t = Instant::now();
        runtime.check(&spec).unwrap();
        best = best.min(t.elapsed());
        mapped = memfd_code().saturating_sub(before);
    }
    (best, mapped)
}

fn measure(code_memory: CodeMemory) -> Costs {
    let runtime = cached_runtime(code_memory);
    tokio().block_on(async {
        Costs {
            rust_one: time_policy(&runtime, "bogon-filter", 1, 3000).await,
            rust_batch: time_policy(&runtime, "bogon-filter", 4096, 200).await,
            python_one: time_policy(&runtime, "bogon-filter-py", 1, 1000).await,
        }
    })
}

/// A health check of `component_name` against a local listener: Up within `T`.
async fn health_up(runtime: &Runtime, component_name: &str) {
    let listener = Listener::bind("127.0.0.1:0").await;
    let addr = listener.addr.to_string();
    let mut spec = PluginSpec::new("web", World::Healthcheck, component(component_name));
    spec.settings = vec![("address".into(), addr.clone())];
    spec.interval = Duration::from_millis(100);
    spec.grants.tcp = vec![addr.clone()];
    let mut p = start(runtime, spec);
    let (health, reason) = p.health(T).await;
    assert_eq!(health, Health::Up, "{component_name}: {reason}");
    assert!(listener.count() >= 1);
    p.handle.stop().await;
}

#[test]
fn plugins_run_under_mdwe() {
    if ExecGain::probe().is_refused() {
        // Already under MDWE (the whole suite run that way): the child test's checks
        // are this process's own.
        eprintln!("this process already may not make memory executable: running the checks here");
        under_mdwe_checks();
        return;
    }
    // Compile every component once into the disk cache outside MDWE, so that the child
    // also loads `.cwasm` files (deserialization) besides compiling one fresh.
    let warm = cached_runtime(CodeMemory::Auto);
    assert_eq!(
        warm.code_memory(),
        CodeMemory::Mprotect,
        "no MDWE here: wasmtime's own loading"
    );
    for name in [
        "tcp-check",
        "tcp-check-py",
        "bogon-filter",
        "bogon-filter-py",
    ] {
        let world = if name.contains("check") {
            World::Healthcheck
        } else {
            World::Policy
        };
        warm.check(&PluginSpec::new(name, world, component(name)))
            .unwrap();
    }
    drop(warm);

    // Interleaved rounds on a shared machine: the minimum of each side's medians.
    let mut without: Option<Costs> = None;
    let mut memfd_no_mdwe: Option<Costs> = None;
    let mut under: Option<Costs> = None;
    let merge = |acc: &mut Option<Costs>, c: Costs| *acc = Some(acc.map_or(c, |a| a.min(c)));
    for round in 1..=MAX_ROUNDS {
        merge(&mut without, measure(CodeMemory::Mprotect));
        merge(&mut under, run_child(Denial::Prctl));
        merge(&mut memfd_no_mdwe, measure(CodeMemory::Memfd));
        let (w, u) = (without.unwrap(), under.unwrap());
        let close = [
            u.rust_one / w.rust_one,
            u.rust_batch / w.rust_batch,
            u.python_one / w.python_one,
        ]
        .iter()
        .all(|r| (1.0 / 1.2..1.2).contains(r));
        if round >= MIN_ROUNDS && close {
            break;
        }
    }
    let (without, memfd_no_mdwe, under) =
        (without.unwrap(), memfd_no_mdwe.unwrap(), under.unwrap());
    for name in ["tcp-check", "tcp-check-py"] {
        let (mprotect, _) = load_cost(CodeMemory::Mprotect, name);
        let (memfd, shmem) = load_cost(CodeMemory::Memfd, name);
        eprintln!(
            "{RESULT} load {name} from .cwasm (check): mprotect {mprotect:?}, memfd {memfd:?} \
             ({} KiB of code in memfds)",
            shmem / 1024
        );
    }

    eprintln!("{}", without.line("without-mdwe"));
    eprintln!("{}", memfd_no_mdwe.line("memfd-without-mdwe"));
    eprintln!("{}", under.line("mdwe"));
    // systemd 252 (Debian 12) makes MemoryDenyWriteExecute= a seccomp filter instead.
    if cfg!(target_arch = "x86_64") {
        eprintln!("{}", run_child(Denial::Seccomp).line("seccomp-mdwe"));
    }
    let ratios = [
        ("rust, 1 route", under.rust_one / without.rust_one),
        ("rust, 4096 routes", under.rust_batch / without.rust_batch),
        ("python, 1 route", under.python_one / without.python_one),
    ];
    for (what, ratio) in ratios {
        eprintln!("call cost under MDWE / without, {what}: {ratio:.2}");
    }
    // What this test proves is that plugins run compiled under MDWE, not interpreted:
    // the interpreter (Pulley) costs 6.5x to 29x. The same machine code on the same kind
    // of pages costs the same, but a 2-core CI machine has spread one side 1.66x even
    // running alone, so the bound sits between that noise and the interpreter. The
    // printed figures are the measurement.
    for (what, ratio) in ratios {
        assert!(
            ratio < NATIVE_BOUND,
            "{what}: under MDWE {ratio:.2}x the cost without: interpreted, not compiled?"
        );
    }
}

/// How the child is denied executable memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denial {
    /// `prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)`: systemd 254+ on Linux 6.3+.
    Prctl,
    /// systemd's seccomp filter (systemd up to 253, or older kernels): `mprotect` and
    /// `pkey_mprotect` with `PROT_EXEC`, and `mmap` with `PROT_WRITE | PROT_EXEC`, fail
    /// with EPERM.
    Seccomp,
}

impl Denial {
    fn env(self) -> &'static str {
        match self {
            Denial::Prctl => "prctl",
            Denial::Seccomp => "seccomp",
        }
    }
}

/// systemd's MemoryDenyWriteExecute= seccomp filter (src/shared/seccomp-util.c) for
/// x86_64, as classic BPF.
#[cfg(target_arch = "x86_64")]
fn mdwe_seccomp_filter() -> Vec<libc::sock_filter> {
    const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JSET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32; // SECCOMP_RET_ERRNO | EPERM
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let exec = libc::PROT_EXEC as u32;
    let write_exec = (libc::PROT_WRITE | libc::PROT_EXEC) as u32;
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (the low half first).
    vec![
        /* 0 */ op(LD_ABS_W, 0, 0, 4),
        /* 1 */ op(JEQ, 0, 10, AUDIT_ARCH_X86_64), // else 12: allow
        /* 2 */ op(LD_ABS_W, 0, 0, 0),
        /* 3 */ op(JEQ, 3, 0, libc::SYS_mprotect as u32), // 7
        /* 4 */ op(JEQ, 2, 0, libc::SYS_pkey_mprotect as u32), // 7
        /* 5 */ op(JEQ, 3, 0, libc::SYS_mmap as u32), // 9
        /* 6 */ op(RET, 0, 0, ALLOW),
        /* 7 */ op(LD_ABS_W, 0, 0, 32), // prot
        /* 8 */ op(JSET, 4, 3, exec), // 13: deny, 12: allow
        /* 9 */ op(LD_ABS_W, 0, 0, 32), // prot
        /* 10 */ op(AND, 0, 0, write_exec),
        /* 11 */ op(JEQ, 1, 0, write_exec), // 13: deny, 12: allow
        /* 12 */ op(RET, 0, 0, ALLOW),
        /* 13 */ op(RET, 0, 0, EPERM),
    ]
}

/// Runs `under_mdwe_child` in a child process denied executable memory by `denial`;
/// its costs.
fn run_child(denial: Denial) -> Costs {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe);
    child
        .args([
            "under_mdwe_child",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, denial.env());
    match denial {
        // SAFETY: only prctl between fork and exec (async-signal-safe).
        Denial::Prctl => unsafe {
            child.pre_exec(|| {
                let on = libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong;
                let zero = 0 as libc::c_ulong;
                if libc::prctl(libc::PR_SET_MDWE, on, zero, zero, zero) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        },
        Denial::Seccomp => {
            #[cfg(target_arch = "x86_64")]
            {
                let filter = mdwe_seccomp_filter();
                // SAFETY: prctl between fork and exec; the filter was built before the
                // fork and is only read.
                unsafe {
                    child.pre_exec(move || {
                        let prog = libc::sock_fprog {
                            len: filter.len() as u16,
                            filter: filter.as_ptr() as *mut libc::sock_filter,
                        };
                        let one = 1 as libc::c_ulong;
                        let zero = 0 as libc::c_ulong;
                        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) != 0
                            || libc::prctl(
                                libc::PR_SET_SECCOMP,
                                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                                &prog as *const libc::sock_fprog as libc::c_ulong,
                                zero,
                                zero,
                            ) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            panic!("the seccomp filter here is x86_64's");
        }
    }
    let out = child.output().expect("running the test binary under MDWE");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child under MDWE ({denial:?}) failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{RESULT} {} ", denial.env())))
        .and_then(Costs::parse)
        .unwrap_or_else(|| panic!("no result line from the child:\n{stdout}"))
}

#[test]
#[ignore = "run by plugins_run_under_mdwe in a child process that set PR_SET_MDWE"]
fn under_mdwe_child() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "run by plugins_run_under_mdwe, not alone"
    );
    under_mdwe_checks();
    let label = std::env::var(CHILD_ENV).unwrap();
    println!("{}", measure(CodeMemory::Auto).line(&label));
}

fn under_mdwe_checks() {
    let gain = ExecGain::probe();
    assert!(
        gain.is_refused(),
        "memory may still become executable: {gain:?}"
    );
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("prctl") => assert!(
            gain.prctl_mdwe,
            "PR_GET_MDWE does not say REFUSE_EXEC_GAIN: {gain:?}"
        ),
        Ok("seccomp") => assert!(
            !gain.prctl_mdwe
                && gain
                    .refused
                    .as_deref()
                    .is_some_and(|e| e.contains("not permitted")),
            "the seccomp filter, not MDWE, refuses (EPERM): {gain:?}"
        ),
        _ => {}
    }

    // wasmtime's own loading (mprotect) fails here: MDWE is really on.
    let plain = Runtime::with_options(RuntimeOptions {
        code_memory: CodeMemory::Mprotect,
        ..RuntimeOptions::default()
    })
    .unwrap();
    let e = plain
        .check(&PluginSpec::new(
            "plain",
            World::Healthcheck,
            component("tcp-check"),
        ))
        .expect_err("mprotect(PROT_EXEC) works under MDWE?");
    assert!(
        format!("{e:#}").contains("unable to make memory executable"),
        "{e:#}"
    );
    drop(plain);

    // The default resolves to memfd mappings: a component compiled fresh in memory...
    let fresh = Runtime::new().unwrap();
    assert_eq!(fresh.code_memory(), CodeMemory::Memfd);
    // ...and from the `.cwasm` cache (written outside MDWE by the parent).
    let cached = cached_runtime(CodeMemory::Auto);
    assert_eq!(cached.code_memory(), CodeMemory::Memfd);
    tokio().block_on(async {
        health_up(&fresh, "tcp-check").await;
        health_up(&cached, "tcp-check").await;
        health_up(&cached, "tcp-check-py").await;
    });
}
