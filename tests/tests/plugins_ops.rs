//! Operating plugins end to end against a real BIRD 2 (issue #4, "Must
//! show" 6 and hot reload): `ctl plugin disable|enable` withdraws or re-MEDs
//! and restores; replacing the component file or `ctl plugin reload` swaps
//! the component in place without the route or the session blinking.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use wasmbgp_e2e::plugin_support::{
    Plugin, PluginBlock, Rig, RouteWatch, TcpService, component, plugin_log_lines, wait_fast,
};

const POLL: Duration = Duration::from_millis(50);

fn run(rig: Rig, body: impl FnOnce(&Rig) -> Result<()>) {
    if let Err(e) = body(&rig) {
        rig.dump();
        panic!("[{}] {e:#}", rig.test);
    }
}

/// "Must show" 6: `disable` withdraws one plugin's route and re-MEDs the
/// other's (`med-disabled = 500`); `enable` restores both.
#[test]
fn plugins_disable_enable() {
    let block = PluginBlock(204);
    let (vip_withdraw, vip_remed) = (block.vip(1), block.vip(2));
    let service_addr = block.sock(10, 2);
    let _service = TcpService::start(&service_addr).expect("service");
    let tcp_check = component("tcp-check").expect("component");
    let plain = Plugin::tcp(
        "plain",
        tcp_check.clone(),
        &service_addr,
        &vip_withdraw,
        100,
    );
    let mut remed = Plugin::tcp("remed", tcp_check, &service_addr, &vip_remed, 100);
    remed.med_disabled = Some(500);
    let rig = Rig::start("plugins-disable-enable", block, &[plain, remed]).expect("rig");
    run(rig, |rig| {
        let bird = &rig.bird;
        let med =
            |vip: &str| -> Result<Option<u32>> { Ok(bird.paths(vip)?.first().and_then(|p| p.med)) };
        wait_fast(
            "both VIPs at BIRD with MED 100",
            POLL,
            Duration::from_secs(20),
            || Ok(med(&vip_withdraw)? == Some(100) && med(&vip_remed)? == Some(100)),
        )?;

        rig.speaker.ctl(&["plugin", "disable", "plain"])?;
        rig.speaker.ctl(&["plugin", "disable", "remed"])?;
        let took = wait_fast(
            "disable to reach BIRD",
            POLL,
            Duration::from_secs(10),
            || Ok(!bird.has_route(&vip_withdraw)? && med(&vip_remed)? == Some(500)),
        )?;
        rig.step(format!(
            "disabled: {vip_withdraw} withdrawn, {vip_remed} MED 500 at BIRD after {took:?}"
        ));
        ensure!(took < Duration::from_secs(1), "disable took {took:?}");
        for name in ["plain", "remed"] {
            let s = rig.speaker.plugin(name)?;
            ensure!(
                s.state == "disabled" && s.health.as_deref() == Some("disabled"),
                "{name}: {}",
                s.raw
            );
        }
        // Disabled means no checks at all, and nothing flaps back.
        let calls = rig.speaker.plugin("plain")?.calls;
        std::thread::sleep(Duration::from_millis(2500));
        ensure!(
            rig.speaker.plugin("plain")?.calls == calls,
            "a disabled plugin is still called"
        );
        ensure!(!bird.has_route(&vip_withdraw)? && med(&vip_remed)? == Some(500));

        rig.speaker.ctl(&["plugin", "enable", "plain"])?;
        rig.speaker.ctl(&["plugin", "enable", "remed"])?;
        let took = wait_fast(
            "enable to reach BIRD",
            POLL,
            Duration::from_secs(10),
            || Ok(med(&vip_withdraw)? == Some(100) && med(&vip_remed)? == Some(100)),
        )?;
        rig.step(format!(
            "enabled: both VIPs back with MED 100 after {took:?}"
        ));
        for name in ["plain", "remed"] {
            let s = rig.speaker.plugin(name)?;
            ensure!(
                s.state == "running" && s.health.as_deref() == Some("up"),
                "{name}: {}",
                s.raw
            );
        }
        rig.assert_session_untouched()
    });
}

/// Hot reload: with the VIP up at BIRD, the component file is overwritten in
/// place (Rust → Python twin), replaced by rename (→ Rust), and reloaded by
/// `ctl plugin reload`. BIRD, polled every 50 ms, never loses the route; the
/// session is not reset; the plugin keeps running the new component.
#[test]
fn plugins_hot_reload() {
    let block = PluginBlock(205);
    let vip = block.vip(1);
    let service_addr = block.sock(10, 2);
    let _service = TcpService::start(&service_addr).expect("service");
    let test = "plugins-hot-reload";
    // The component lives in the test directory, so that it can be replaced.
    let work = wasmbgp_e2e::workdir::WorkDir::new(&format!("{test}-components")).expect("workdir");
    let file = work.path().join("web.wasm");
    let rust = component("tcp-check").expect("component");
    let python = component("tcp-check-py").expect("component");
    std::fs::copy(&rust, &file).expect("copy component");
    let rig = Rig::start(
        test,
        block,
        &[Plugin::tcp("web", file.clone(), &service_addr, &vip, 100)],
    )
    .expect("rig");
    run(rig, |rig| {
        let bird = &rig.bird;
        wait_fast("the VIP at BIRD", POLL, Duration::from_secs(20), || {
            bird.has_route(&vip)
        })?;
        let watch = RouteWatch::start(bird, std::slice::from_ref(&vip));
        let reloads =
            || plugin_log_lines(&rig.speaker.log(), "web", "plugin reloaded in place").len();
        // Waits for reload number `n` and then for two checks of the new
        // component; returns how long the swap took.
        let await_reload = |n: usize, what: &str| -> Result<Duration> {
            let took = wait_fast(what, POLL, Duration::from_secs(40), || Ok(reloads() >= n))?;
            let calls = rig.speaker.plugin("web")?.calls;
            wait_fast(
                "two checks by the new component",
                POLL,
                Duration::from_secs(10),
                || Ok(rig.speaker.plugin("web")?.calls >= calls + 2),
            )?;
            let s = rig.speaker.plugin("web")?;
            ensure!(
                s.state == "running" && s.health.as_deref() == Some("up") && s.restarts == 0,
                "after {what}: {}",
                s.raw
            );
            Ok(took)
        };

        // 1. Overwrite in place with the Python twin.
        std::fs::copy(&python, &file).context("overwrite the component")?;
        // Meanwhile, how long does the control socket take to answer?
        let mut slowest = Duration::ZERO;
        let window = Instant::now();
        while window.elapsed() < Duration::from_secs(3) && reloads() == 0 {
            let t = Instant::now();
            rig.speaker.ctl(&["show", "neighbors", "--json"])?;
            slowest = slowest.max(t.elapsed());
            std::thread::sleep(POLL);
        }
        rig.step(format!(
            "slowest ctl answer while the new component loads: {slowest:?}"
        ));
        let took = await_reload(1, "reload after overwriting the file with tcp-check-py")?;
        let s = rig.speaker.plugin("web")?;
        rig.step(format!(
            "file overwritten (Rust → Python): reloaded after {took:?}; {}",
            s.raw
        ));
        ensure!(
            plugin_log_lines(&rig.speaker.log(), "web", "component file changed").len() == 1,
            "the file watcher did not log the change"
        );

        // 2. Replace by rename with the Rust component again.
        let tmp = file.with_extension("wasm.new");
        std::fs::copy(&rust, &tmp)?;
        std::fs::rename(&tmp, &file)?;
        let took = await_reload(2, "reload after renaming tcp-check over the file")?;
        rig.step(format!(
            "file replaced by rename (Python → Rust): reloaded after {took:?}"
        ));

        // 3. ctl plugin reload.
        rig.speaker.ctl(&["plugin", "reload", "web"])?;
        let took = await_reload(3, "reload after ctl plugin reload")?;
        rig.step(format!("ctl plugin reload: reloaded after {took:?}"));

        let samples = watch.finish();
        let missing: Vec<Duration> = samples
            .iter()
            .filter(|(_, p)| !p[0])
            .map(|(t, _)| *t)
            .collect();
        rig.step(format!(
            "{} samples of {vip} at BIRD during the reloads, {} missing",
            samples.len(),
            missing.len()
        ));
        ensure!(samples.len() >= 20, "too few samples");
        ensure!(missing.is_empty(), "{vip} missing from BIRD at {missing:?}");
        ensure!(bird.paths(&vip)?.first().and_then(|p| p.med) == Some(100));
        rig.assert_session_untouched()
    });
    drop(work);
}

/// While one plugin's new component is being loaded (the Python twin takes
/// seconds to compile), another plugin's verdict must still reach BIRD
/// within fall × interval + 1 s, and the control socket must keep answering.
#[test]
fn plugins_reload_does_not_stall_other_plugins() {
    let block = PluginBlock(206);
    let (vip_web, vip_other) = (block.vip(1), block.vip(2));
    let web_addr = block.sock(10, 2);
    let other_addr = block.sock(11, 3);
    let _web_service = TcpService::start(&web_addr).expect("service");
    let mut other_service = TcpService::start(&other_addr).expect("service");
    let test = "plugins-reload-stall";
    let work = wasmbgp_e2e::workdir::WorkDir::new(&format!("{test}-components")).expect("workdir");
    let file = work.path().join("web.wasm");
    std::fs::copy(component("tcp-check").expect("component"), &file).expect("copy component");
    let python = component("tcp-check-py").expect("component");
    let web = Plugin::tcp("web", file.clone(), &web_addr, &vip_web, 100);
    let mut other = Plugin::tcp(
        "other",
        component("tcp-check").expect("component"),
        &other_addr,
        &vip_other,
        100,
    );
    other.rise = 1;
    other.fall = 1;
    let rig = Rig::start(test, block, &[web, other]).expect("rig");
    run(rig, |rig| {
        let bird = &rig.bird;
        wait_fast("both VIPs at BIRD", POLL, Duration::from_secs(20), || {
            Ok(bird.has_route(&vip_web)? && bird.has_route(&vip_other)?)
        })?;
        std::fs::copy(&python, &file).context("overwrite the component")?;
        // Past the watcher's 300 ms settle time: the swap is under way.
        std::thread::sleep(Duration::from_millis(500));
        other_service.stop();
        let t = Instant::now();
        rig.speaker.ctl(&["show", "plugins", "--json"])?;
        let ctl = t.elapsed();
        let took = wait_fast(
            "the other plugin's VIP withdrawn",
            POLL,
            Duration::from_secs(30),
            || Ok(!bird.has_route(&vip_other)?),
        )?;
        let took = took + ctl;
        rig.step(format!(
            "during the reload of `web`: ctl answered after {ctl:?}; `other` withdrawn at BIRD after {took:?}"
        ));
        ensure!(
            ctl < Duration::from_millis(500),
            "the control socket stalled for {ctl:?} during a reload"
        );
        ensure!(
            took <= Duration::from_secs(2),
            "`other` withdrawn after {took:?} (bound fall × interval + 1 s = 2 s)"
        );
        Ok(())
    });
    drop(work);
}
