//! Sandbox and fault containment end to end (issue #4, "Must show" 4): one
//! wasmbgp runs a healthy plugin beside the fault fixture in every mode,
//! peered with a real BIRD. Denied probes never reach the network, WASI
//! gives nothing, a runaway loop is interrupted at its deadline, allocation
//! past the memory cap and a panic trap; faulty plugins restart with capped
//! backoff; routes follow `on-failure`; the BGP session never resets.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use wasmbgp_e2e::plugin_support::{
    Plugin, PluginBlock, Rig, RouteWatch, TcpService, component, log_field, plugin_log_lines,
    wait_fast,
};

#[test]
fn plugins_faults_are_contained() {
    let test = "plugins-faults";
    let block = PluginBlock(203);
    let vip = |n: u8| block.vip(n);

    // Services: the healthy plugin's target, the victim of the denied probe
    // (listening, never granted) and the WASI fixture's socket target.
    let control_addr = block.sock(10, 2);
    let _control_service = TcpService::start(&control_addr).expect("service");
    let victim = TcpService::start(&block.sock(20, 3)).expect("victim");
    let granted = TcpService::start(&block.sock(21, 4)).expect("granted");
    let wasi_target = TcpService::start(&block.sock(22, 5)).expect("wasi target");

    let mut plugins = vec![Plugin::tcp(
        "control",
        component("tcp-check").expect("component"),
        &control_addr,
        &vip(1),
        100,
    )];
    let mut nosy =
        Plugin::faulty("nosy", "probe", &[("target", &block.sock(20, 3))], &vip(2)).unwrap();
    nosy.tcp = vec![block.sock(21, 4)];
    plugins.push(nosy);
    let mut ambient = Plugin::faulty(
        "ambient",
        "wasi",
        &[("target", &block.sock(22, 5))],
        &vip(3),
    )
    .unwrap();
    ambient.tcp = vec![block.sock(22, 5)];
    plugins.push(ambient);
    let mut spin = Plugin::faulty("spin", "loop", &[], &vip(4)).unwrap();
    spin.deadline = Some("50ms".into());
    spin.on_failure = "keep".into();
    plugins.push(spin);
    let mut hog = Plugin::faulty("hog", "alloc", &[], &vip(5)).unwrap();
    hog.memory = Some("16MiB".into());
    hog.deadline = Some("1s".into());
    plugins.push(hog);
    plugins.push(Plugin::faulty("oops", "panic", &[], &vip(6)).unwrap());
    // Up after 2 checks, panics once at its 4th check, up again 2 checks
    // after the restart: the route follows on-failure in between.
    for (name, on_failure, n) in [("flaky-withdraw", "withdraw", 7), ("flaky-keep", "keep", 8)] {
        let mut p = Plugin::faulty(name, "counter", &[("panic-at", "4")], &vip(n)).unwrap();
        p.rise = 2;
        p.fall = 2;
        p.on_failure = on_failure.into();
        plugins.push(p);
    }

    let rig = Rig::start(test, block, &plugins).expect("rig");
    let started = Instant::now();
    let watched: Vec<String> = (1..=8).map(vip).collect();
    let watch = RouteWatch::start(&rig.bird, &watched);
    let result = (|| -> Result<()> {
        // Long enough for the flaky plugins to panic and come back, and for
        // the failing ones to exhaust their burst (100+200+400+800 ms).
        wait_fast(
            "flaky-withdraw to be up again after its restart",
            Duration::from_millis(200),
            Duration::from_secs(20),
            || {
                let s = rig.speaker.plugin("flaky-withdraw")?;
                Ok(s.restarts == 1 && s.health.as_deref() == Some("up"))
            },
        )?;
        wait_fast(
            "the looping plugin to be marked failed",
            Duration::from_millis(200),
            Duration::from_secs(10),
            || Ok(rig.speaker.plugin("spin")?.state == "failed"),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        let samples = watch.finish();
        rig.step(format!(
            "{} route samples at BIRD over {:?}",
            samples.len(),
            started.elapsed()
        ));
        ensure!(samples.len() >= 20, "too few samples");
        let column = |i: usize| {
            samples
                .iter()
                .map(|(_, present)| present[i])
                .collect::<Vec<bool>>()
        };
        // Present from its first appearance on, without a gap.
        let steady = |i: usize| -> Result<()> {
            let col = column(i);
            let first = col
                .iter()
                .position(|&p| p)
                .with_context(|| format!("{} never at BIRD", watched[i]))?;
            if let Some(gap) = col[first..].iter().position(|&p| !p) {
                bail!(
                    "{} vanished from BIRD at {:?}",
                    watched[i],
                    samples[first + gap].0
                );
            }
            Ok(())
        };
        steady(0).context("the healthy plugin's route")?;
        steady(7).context("on-failure = keep")?;
        steady(2).context("the WASI fixture (healthy only if WASI gave it nothing)")?;
        for (i, what) in [
            (1, "denied prober"),
            (3, "loop"),
            (4, "alloc"),
            (5, "panic"),
        ] {
            ensure!(
                !column(i).contains(&true),
                "{} ({what}) reached BIRD",
                watched[i]
            );
        }
        // on-failure = withdraw: up, gone while restarting, back.
        let col = column(6);
        let up = col
            .iter()
            .position(|&p| p)
            .context("flaky-withdraw never up")?;
        let gone = up
            + col[up..]
                .iter()
                .position(|&p| !p)
                .context("flaky-withdraw never withdrawn")?;
        let back = gone
            + col[gone..]
                .iter()
                .position(|&p| p)
                .context("flaky-withdraw never back")?;
        rig.step(format!(
            "on-failure = withdraw: up at {:?}, withdrawn at {:?}, back at {:?}",
            samples[up].0, samples[gone].0, samples[back].0
        ));
        ensure!(
            !col[back..].contains(&false),
            "flaky-withdraw flapped again"
        );

        let log = rig.speaker.log();
        // Denied: an answer, not a fault; nothing reached the victim.
        let s = rig.speaker.plugin("nosy")?;
        rig.step(format!("nosy: {}", s.raw));
        ensure!(
            s.denied >= 3 && s.restarts == 0 && s.health.as_deref() == Some("down"),
            "nosy: {}",
            s.raw
        );
        ensure!(
            plugin_log_lines(&log, "nosy", "health transition")
                .iter()
                .any(|l| l.contains("denied")),
            "no denied health transition in the log"
        );
        ensure!(
            victim.accepted() == 0,
            "the denied target saw {} connections",
            victim.accepted()
        );
        ensure!(
            granted.accepted() == 0,
            "the granted target was never asked for"
        );
        // WASI: files, environment, arguments, sockets all empty.
        let s = rig.speaker.plugin("ambient")?;
        ensure!(
            s.health.as_deref() == Some("up") && s.restarts == 0,
            "ambient: {}",
            s.raw
        );
        ensure!(
            wasi_target.accepted() == 0,
            "a raw WASI socket reached {}",
            block.sock(22, 5)
        );
        for dir in [rig.dir.path().join("wasmbgp"), std::env::current_dir()?] {
            ensure!(
                !dir.join("leak.txt").exists(),
                "the WASI fixture wrote {}",
                dir.display()
            );
        }

        // Faults: restarts with doubling, capped backoff; then failed.
        for (name, error) in [
            ("spin", "deadline"),
            ("hog", "trap"),
            ("oops", "unreachable"),
        ] {
            let s = rig.speaker.plugin(name)?;
            rig.step(format!("{name}: {}", s.raw));
            ensure!(
                s.state == "failed" || s.state == "backoff",
                "{name}: {}",
                s.raw
            );
            ensure!(s.restarts >= 3, "{name}: {}", s.raw);
            let last = s.last_error.clone().unwrap_or_default();
            ensure!(
                last.contains(error),
                "{name}: last error {last:?} lacks {error:?}"
            );
            ensure!(s.health.as_deref() != Some("up"), "{name}: {}", s.raw);
            let delays: Vec<String> = plugin_log_lines(&log, name, "restarting with backoff")
                .iter()
                .filter_map(|l| log_field(l, "restart_in").map(str::to_owned))
                .collect();
            rig.step(format!("{name}: restart delays {delays:?}"));
            ensure!(
                delays.len() as u64 == s.restarts
                    && delays.starts_with(&["100ms".into(), "200ms".into(), "400ms".into()]),
                "{name}: restart delays {delays:?}"
            );
        }
        let hog = rig.speaker.plugin("hog")?;
        ensure!(
            hog.p99_us < 500_000
                && !hog
                    .last_error
                    .clone()
                    .unwrap_or_default()
                    .contains("deadline"),
            "hog should trap at its 16 MiB cap long before its 1 s deadline: {}",
            hog.raw
        );
        rig.step(format!(
            "allocation past 16 MiB trapped after {} µs (p99, deadline 1 s)",
            hog.p99_us
        ));
        let spin = rig.speaker.plugin("spin")?;
        ensure!(
            spin.state == "failed" && spin.restarts == 5,
            "spin: {}",
            spin.raw
        );
        ensure!(
            (50_000..300_000).contains(&spin.p99_us),
            "the runaway check ran {} µs (p99) against a 50 ms deadline",
            spin.p99_us
        );
        rig.step(format!(
            "runaway loop interrupted after {} µs (p99, deadline 50 ms)",
            spin.p99_us
        ));
        for name in ["flaky-withdraw", "flaky-keep"] {
            let s = rig.speaker.plugin(name)?;
            ensure!(
                s.restarts == 1 && s.state == "running" && s.health.as_deref() == Some("up"),
                "{name}: {}",
                s.raw
            );
        }
        // Capped: a failed plugin is left alone until the longest backoff.
        std::thread::sleep(Duration::from_secs(2));
        let later = rig.speaker.plugin("spin")?;
        ensure!(
            later.restarts == 5 && later.state == "failed",
            "spin kept restarting: {}",
            later.raw
        );
        let control = rig.speaker.plugin("control")?;
        ensure!(
            control.restarts == 0 && control.health.as_deref() == Some("up"),
            "control: {}",
            control.raw
        );
        rig.assert_session_untouched()
    })();
    if let Err(e) = result {
        rig.dump();
        panic!("[{test}] {e:#}");
    }
}
