//! Health-check plugins end to end against a real BIRD 2 on loopback
//! (issue #4, "Must show" 1, 2 and 5): a local TCP service going down and up
//! moves a /32 at BIRD, within the hysteresis bounds; primary/backup by MED
//! across two wasmbgp instances; the Python twin behaves like the Rust one.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use wasmbgp_e2e::plugin_support::{
    BirdSession, Dnsmasq, MultiBird, Plugin, PluginBlock, PluginSpeaker, Rig, TcpService,
    WASMBGP_AS, component, dump_logs, same_since, wait_fast,
};
use wasmbgp_e2e::step;
use wasmbgp_e2e::workdir::WorkDir;

const POLL: Duration = Duration::from_millis(50);

/// Runs `body` on a started rig; on failure prints the daemons' logs first.
fn with_rig(
    test: &str,
    block: PluginBlock,
    plugins: &[Plugin],
    body: impl FnOnce(&Rig) -> Result<()>,
) {
    let rig = match Rig::start(test, block, plugins) {
        Ok(rig) => rig,
        Err(e) => panic!("[{test}] cannot start the rig: {e:#}"),
    };
    if let Err(e) = body(&rig) {
        rig.dump();
        panic!("[{test}] {e:#}");
    }
}

/// "Must show" 1 (and 5 with the Python component): service up → /32 at
/// BIRD; down → withdrawn within fall × interval + 1 s; up → back after
/// rise checks. Session never reset.
fn tcp_up_down(test: &str, block: PluginBlock, component_name: &str) {
    let service_addr = block.sock(10, 2);
    let mut service = TcpService::start(&service_addr).expect("service");
    let vip = block.vip(100);
    let plugin = Plugin::tcp(
        "web",
        component(component_name).expect("component"),
        &service_addr,
        &vip,
        100,
    );
    let (interval, rise, fall) = (Duration::from_secs(1), plugin.rise, plugin.fall);
    let started = Instant::now();
    with_rig(test, block, &[plugin], |rig| {
        let bird = &rig.bird;
        wait_fast("the VIP at BIRD", POLL, Duration::from_secs(20), || {
            bird.has_route(&vip)
        })?;
        let paths = bird.paths(&vip)?;
        ensure!(
            paths.len() == 1 && paths[0].med == Some(100),
            "VIP at BIRD: {paths:?}"
        );
        rig.step(format!(
            "{vip} at BIRD with MED 100, {:?} after start",
            started.elapsed()
        ));
        let status = rig.speaker.plugin("web")?;
        ensure!(
            status.state == "running"
                && status.health.as_deref() == Some("up")
                && status.restarts == 0,
            "show plugins: {:?}",
            status.raw
        );
        // Why it is up: the last answer, as the plugin gave it.
        let last = &status.raw["last-check"];
        ensure!(
            last["passed"] == true
                && last["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&service_addr.to_string())),
            "show plugins: last-check {last}"
        );
        ensure!(
            service.accepted() >= rise as usize,
            "the service saw {} checks",
            service.accepted()
        );

        // Down: fall failed checks, the first within one interval.
        service.stop();
        let took = wait_fast(
            "the VIP withdrawn at BIRD",
            POLL,
            Duration::from_secs(15),
            || Ok(!bird.has_route(&vip)?),
        )?;
        let bound = interval * fall + Duration::from_secs(1);
        rig.step(format!(
            "service down → withdrawn at BIRD after {took:?} (bound {bound:?})"
        ));
        ensure!(
            took <= bound,
            "withdrawn after {took:?}, more than fall × interval + 1 s = {bound:?}"
        );
        let status = rig.speaker.plugin("web")?;
        ensure!(
            status.health.as_deref() == Some("down"),
            "show plugins: {:?}",
            status.raw
        );

        // Up: rise passing checks (the second one a fast interval after the first).
        service.restart()?;
        let took = wait_fast(
            "the VIP back at BIRD",
            POLL,
            Duration::from_secs(15),
            || bird.has_route(&vip),
        )?;
        let bound = interval * rise + Duration::from_secs(1);
        rig.step(format!(
            "service up → back at BIRD after {took:?} (bound {bound:?})"
        ));
        ensure!(
            took <= bound,
            "announced after {took:?}, more than rise × interval + 1 s = {bound:?}"
        );
        ensure!(
            took >= interval * (rise - 1) - Duration::from_millis(100),
            "announced after {took:?}: fewer than rise = {rise} checks"
        );
        ensure!(bird.paths(&vip)?[0].med == Some(100));
        let status = rig.speaker.plugin("web")?;
        ensure!(
            status.health.as_deref() == Some("up") && status.restarts == 0 && status.calls >= 5,
            "show plugins: {:?}",
            status.raw
        );
        rig.step(format!(
            "show plugins: calls {} p50 {} µs p99 {} µs",
            status.calls, status.p50_us, status.p99_us
        ));
        rig.assert_session_untouched()
    });
}

#[test]
fn plugins_tcp_check_up_down() {
    tcp_up_down("plugins-tcp-up-down", PluginBlock(200), "tcp-check");
}

/// "Must show" 5: the Python twin passes the same test.
#[test]
fn plugins_tcp_check_py_up_down() {
    tcp_up_down("plugins-tcp-py-up-down", PluginBlock(201), "tcp-check-py");
}

/// The JavaScript twin (componentize-qjs) passes the same test.
#[test]
fn plugins_tcp_check_js_up_down() {
    tcp_up_down("plugins-tcp-js-up-down", PluginBlock(219), "tcp-check-js");
}

/// The C twin (clang, wasi-libc, `wit-bindgen c`) passes the same test.
#[test]
fn plugins_tcp_check_c_up_down() {
    tcp_up_down("plugins-tcp-c-up-down", PluginBlock(220), "tcp-check-c");
}

/// "Must show" 2: two wasmbgp instances (same AS, so BIRD compares MEDs)
/// announce the same /32 with MED 100 (primary, `med-down = 1000`) and 200
/// (backup); BIRD prefers the primary, moves to the backup while the
/// primary's service is down, and back when it recovers.
#[test]
fn plugins_primary_backup_by_med() {
    let test = "plugins-primary-backup";
    let block = PluginBlock(202);
    let vip = block.vip(100);
    let dir = WorkDir::new(test).expect("workdir");
    let tcp_check = component("tcp-check").expect("component");
    let primary_addr = block.sock(11, 2);
    let backup_addr = block.sock(13, 3);
    let mut primary_service = TcpService::start(&primary_addr).expect("service");
    let _backup_service = TcpService::start(&backup_addr).expect("service");

    let bird = MultiBird::start(
        &dir.subdir("bird").unwrap(),
        block.addr(2),
        &[
            BirdSession {
                name: "wasm_primary".into(),
                local: (block.addr(2), block.port(0)),
                remote: (block.addr(1), block.port(1), WASMBGP_AS),
            },
            BirdSession {
                name: "wasm_backup".into(),
                local: (block.addr(2), block.port(4)),
                remote: (block.addr(3), block.port(5), WASMBGP_AS),
            },
        ],
    )
    .expect("BIRD");
    let mut primary_plugin = Plugin::tcp("web", tcp_check.clone(), &primary_addr, &vip, 100);
    primary_plugin.med_down = Some(1000);
    let primary = PluginSpeaker::start(
        &dir.subdir("primary").unwrap(),
        &PluginSpeaker::base_config(block.addr(1), block.port(1), block.addr(2), block.port(0)),
        &[primary_plugin],
    )
    .expect("primary wasmbgp");
    let backup = PluginSpeaker::start(
        &dir.subdir("backup").unwrap(),
        &PluginSpeaker::base_config(block.addr(3), block.port(5), block.addr(2), block.port(4)),
        &[Plugin::tcp("web", tcp_check, &backup_addr, &vip, 200)],
    )
    .expect("backup wasmbgp");

    let result = (|| -> Result<()> {
        bird.wait_established(&["wasm_primary", "wasm_backup"])?;
        let since = (
            bird.protocol("wasm_primary")?.1,
            bird.protocol("wasm_backup")?.1,
        );
        let best_is = |protocol: &str, med: u32| -> Result<bool> {
            let paths = bird.paths(&vip)?;
            Ok(paths.len() == 2
                && paths
                    .iter()
                    .any(|p| p.best && p.protocol == protocol && p.med == Some(med)))
        };
        wait_fast(
            "BIRD's best path from the primary (MED 100)",
            POLL,
            Duration::from_secs(20),
            || best_is("wasm_primary", 100),
        )?;
        step(
            test,
            format!("both paths at BIRD, best: primary {:?}", bird.paths(&vip)?),
        );

        primary_service.stop();
        let took = wait_fast(
            "BIRD's best path from the backup (MED 200)",
            POLL,
            Duration::from_secs(15),
            || best_is("wasm_backup", 200),
        )?;
        let paths = bird.paths(&vip)?;
        step(
            test,
            format!("primary service down → best is the backup after {took:?}: {paths:?}"),
        );
        ensure!(
            took <= Duration::from_secs(3),
            "failover took {took:?} (> fall × interval + 1 s)"
        );
        ensure!(
            paths
                .iter()
                .any(|p| p.protocol == "wasm_primary" && !p.best && p.med == Some(1000)),
            "the primary should still announce with med-down 1000: {paths:?}"
        );

        primary_service.restart()?;
        let took = wait_fast(
            "BIRD's best path back at the primary",
            POLL,
            Duration::from_secs(15),
            || best_is("wasm_primary", 100),
        )?;
        step(
            test,
            format!("primary service up → best is the primary again after {took:?}"),
        );

        for (speaker, name) in [(&primary, "primary"), (&backup, "backup")] {
            let (state, count) = speaker.session()?;
            ensure!(
                state == "established" && count == 1,
                "{name}: {state}, established-count {count}"
            );
        }
        let now = (
            bird.protocol("wasm_primary")?.1,
            bird.protocol("wasm_backup")?.1,
        );
        ensure!(
            same_since(&now.0, &since.0) && same_since(&now.1, &since.1),
            "BIRD sessions restarted: since {since:?} → {now:?}"
        );
        Ok(())
    })();
    if let Err(e) = result {
        dump_logs(test, &bird, &[&primary, &backup]);
        panic!("[{test}] {e:#}");
    }
}

/// "Must show" 3: `dns-check` against a real DNS server (dnsmasq) on loopback
/// moves the resolver's anycast /32 at BIRD: up while it answers with the
/// expected address, withdrawn when it stops answering, back when it returns.
#[test]
fn plugins_dns_check_up_down() {
    let block = PluginBlock(207);
    let server = block.sock(10, 3);
    let mut dns = Dnsmasq::start(&server, "svc.test", "192.0.2.10").expect("dnsmasq");
    let vip = block.vip(53);
    let plugin =
        Plugin::dns("resolver", &server, "svc.test", "192.0.2.10", &vip, 100).expect("dns-check");
    with_rig("plugins-dns-up-down", block, &[plugin], |rig| {
        let bird = &rig.bird;
        wait_fast(
            "the resolver VIP at BIRD",
            POLL,
            Duration::from_secs(20),
            || bird.has_route(&vip),
        )?;
        let status = rig.speaker.plugin("resolver")?;
        ensure!(
            status.health.as_deref() == Some("up"),
            "show plugins: {:?}",
            status.raw
        );
        dns.stop();
        let took = wait_fast(
            "the resolver VIP withdrawn",
            POLL,
            Duration::from_secs(15),
            || Ok(!bird.has_route(&vip)?),
        )?;
        rig.step(format!("dnsmasq down → withdrawn at BIRD after {took:?}"));
        ensure!(took <= Duration::from_secs(4), "withdrawn after {took:?}");
        ensure!(rig.speaker.plugin("resolver")?.health.as_deref() == Some("down"));
        dns.restart()?;
        let took = wait_fast(
            "the resolver VIP back",
            POLL,
            Duration::from_secs(15),
            || bird.has_route(&vip),
        )?;
        rig.step(format!("dnsmasq up → back at BIRD after {took:?}"));
        rig.assert_session_untouched()
    });
}
