//! Graceful restart (RFC 4724) in both roles, end to end with BIRD 2 on loopback (the
//! hardening issue's "Must show" 4).
//!
//! - wasmbgp restarting: it announces 100,001 routes and a health-checked VIP to a BIRD
//!   with `graceful restart on` and is killed with SIGKILL. BIRD keeps them (graceful
//!   restart active) while wasmbgp is gone; a new wasmbgp, announcing the same routes
//!   but one, sends its table, the VIP once its health check passes, and only then its
//!   End-of-RIB; BIRD drops that one route and ends its graceful restart. Then `ctl shutdown --graceful-restart` (a binary upgrade) stops the new
//!   wasmbgp without a NOTIFICATION: BIRD keeps the routes again until a third wasmbgp
//!   is back. BIRD's count of wasmbgp's routes, read every 50 ms on its own thread,
//!   never drops below 100,001 (the VIP's included), and BIRD receives no withdrawal.
//! - wasmbgp receiving: BIRD sends 100,001 routes and is killed with SIGKILL, then
//!   started again in recovery (`bird -R`) without one of them. wasmbgp's Adj-RIB-In,
//!   read every 50 ms, never drops below 100,000 and shows the routes stale meanwhile;
//!   after BIRD's End-of-RIB the one route BIRD no longer sends is withdrawn, and an
//!   exporter sees that withdrawal and no other.
//!
//! Blocks 264 and 265 ([`LimitBlock`]).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Result, ensure};
use wasmbgp_e2e::exporter_support::{ExporterPlugin, kind, read_records};
use wasmbgp_e2e::graceful_support::{
    GrBird, GrSpeaker, SAMPLE_EVERY, Sampler, neighbor_of, slash24s,
};
use wasmbgp_e2e::limits_support::LimitBlock;
use wasmbgp_e2e::peers::bird;
use wasmbgp_e2e::plugin_support::{Plugin, component};
use wasmbgp_e2e::policy_support::tail;
use wasmbgp_e2e::step;
use wasmbgp_e2e::wait::wait_until;
use wasmbgp_e2e::workdir::WorkDir;

/// Routes in each direction.
const ROUTES: u32 = 100_000;
/// wasmbgp restarting.
const SPEAKER_BLOCK: LimitBlock = LimitBlock(264);
/// wasmbgp receiving.
const RECEIVER_BLOCK: LimitBlock = LimitBlock(265);
/// How long a table of 100,000 routes may take to arrive.
const TABLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints both logs' tails when `result` is an error, then fails the test with it.
fn report(test: &str, result: Result<()>, logs: &[(&str, String)]) {
    if let Err(e) = result {
        for (name, log) in logs {
            eprintln!("[{test}] --- {name} log tail ---\n{}", tail(log, 60));
        }
        panic!("[{test}] {e:#}");
    }
}

#[test]
fn graceful_restart_wasmbgp_killed_keeps_its_routes_at_bird() {
    let test = "graceful_restart_wasmbgp_killed";
    let dir = WorkDir::new(test).expect("work directory");
    let block = SPEAKER_BLOCK;
    let bird_dir = dir.subdir("bird").expect("bird directory");
    let bird = GrBird::start(&bird_dir, block, &[], false).expect("BIRD starts");
    // The first wasmbgp also sends one route the second no longer has: BIRD keeps it
    // stale meanwhile, and drops it at the second one's End-of-RIB.
    let table = slash24s(Ipv4Addr::new(44, 0, 0, 0), ROUTES);
    let dropped = "203.0.113.0/24".to_owned();
    let mut first = table.clone();
    first.push(dropped.clone());
    // And a VIP a health check controls (tcp-check of a socket the test holds open):
    // each new wasmbgp must have its verdict before its End-of-RIB, or BIRD drops
    // the VIP then and gets it back a check later.
    let service = std::net::TcpListener::bind((block.addr(5), block.port(5))).expect("service");
    let vip = "198.51.100.10/32".to_owned();
    let check = Plugin::tcp(
        "vip",
        component("tcp-check").expect("tcp-check"),
        &service.local_addr().expect("address").to_string(),
        &vip,
        100,
    )
    .render();
    let mut speakers = Vec::new();
    let result = (|| -> Result<()> {
        speakers.push(GrSpeaker::start(
            &dir.subdir("wasmbgp-1")?,
            block,
            &first,
            &check,
        )?);
        // The table, the route dropped later and the VIP.
        let all = u64::from(ROUTES) + 2;
        let kept_after = u64::from(ROUTES) + 1;
        wait_until("BIRD has wasmbgp's 100,002 routes", TABLE_TIMEOUT, || {
            Ok(bird.imported()? == all)
        })?;
        ensure!(
            !bird.graceful_restart_active()?,
            "graceful restart before any restart"
        );

        // BIRD's count, every 50 ms, from now until wasmbgp is back.
        let sampled = bird_dir.clone();
        let sampler = Sampler::start(move || {
            bird::parse_count(&bird::birdc(
                &sampled,
                &["show", "route", "protocol", "wasm", "count"],
            )?)
        });
        std::thread::sleep(10 * SAMPLE_EVERY);
        step(test, "kill -9 wasmbgp");
        speakers[0].kill()?;
        bird.wait_graceful_restart()?;
        let kept = bird.prefixes()?;
        ensure!(
            kept.len() as u64 == all && kept.contains(&dropped) && kept.contains(&vip),
            "while wasmbgp is gone BIRD should keep its {all} routes as stale: it has {}",
            kept.len()
        );
        step(
            test,
            format!(
                "BIRD keeps {} routes, stale, graceful restart active",
                kept.len()
            ),
        );

        // A while without wasmbgp, for the sampler to see it.
        std::thread::sleep(Duration::from_secs(1));
        step(test, "start wasmbgp again (without one route)");
        speakers.push(GrSpeaker::start(
            &dir.subdir("wasmbgp-2")?,
            block,
            &table,
            &check,
        )?);
        wait_until(
            "BIRD to end its graceful restart at wasmbgp's End-of-RIB",
            TABLE_TIMEOUT,
            || Ok(bird.established()? && !bird.graceful_restart_active()?),
        )?;
        ensure!(
            speakers[1]
                .log()
                .contains("sent the End-of-RIB held for the health checks"),
            "the new wasmbgp did not hold its End-of-RIB for the health check"
        );
        let now = bird.prefixes()?;
        ensure!(
            now.len() as u64 == kept_after && !now.contains(&dropped) && now.contains(&vip),
            "after the End-of-RIB BIRD should have the {kept_after} routes sent again (the VIP's included) and not {dropped}: it has {} ({})",
            now.len(),
            if now.contains(&dropped) {
                "with it"
            } else {
                "without it"
            }
        );

        step(test, "ctl shutdown --graceful-restart (a binary upgrade)");
        let reply = speakers[1].ctl(&["shutdown", "--graceful-restart"])?;
        ensure!(
            reply.contains("graceful restart") && reply.contains("120 s"),
            "unexpected reply {reply:?}"
        );
        speakers[1].wait_exit(Duration::from_secs(10))?;
        bird.wait_graceful_restart()?;
        ensure!(
            bird.imported()? == kept_after,
            "BIRD dropped routes at `shutdown --graceful-restart`"
        );
        speakers.push(GrSpeaker::start(
            &dir.subdir("wasmbgp-3")?,
            block,
            &table,
            &check,
        )?);
        wait_until(
            "BIRD to end its graceful restart at the third wasmbgp's End-of-RIB",
            TABLE_TIMEOUT,
            || Ok(bird.established()? && !bird.graceful_restart_active()?),
        )?;
        std::thread::sleep(5 * SAMPLE_EVERY);
        let samples = sampler.finish();
        let counters = bird.counters()?;
        ensure!(
            counters.import_withdraws == 0,
            "BIRD received withdrawals: {counters:?}"
        );
        ensure!(
            samples.errors.is_empty(),
            "birdc failed while sampling: {:?}",
            samples.errors
        );
        let min = samples.values.iter().map(|(_, v)| *v).min().unwrap_or(0);
        let before_sweep = samples.values.iter().filter(|(_, v)| *v == all).count();
        ensure!(
            min >= kept_after,
            "BIRD's count of wasmbgp's routes (the VIP's included) dropped to {min}"
        );
        ensure!(
            samples.longest_gap() < Duration::from_secs(1),
            "BIRD was not read for {:?}",
            samples.longest_gap()
        );
        step(
            test,
            format!(
                "{} samples of BIRD's count over {:?} ({before_sweep} at {all}), never below {min}; longest gap {:?}",
                samples.values.len(),
                samples.values.last().map(|(t, _)| *t).unwrap_or_default(),
                samples.longest_gap()
            ),
        );
        Ok(())
    })();
    let mut logs = vec![("BIRD", bird.log())];
    for (i, s) in speakers.iter().enumerate() {
        logs.push((
            ["wasmbgp (killed)", "wasmbgp (shut down)", "wasmbgp"][i.min(2)],
            s.log(),
        ));
    }
    report(test, result, &logs);
}

#[test]
fn graceful_restart_bird_killed_keeps_its_routes_in_wasmbgp() {
    let test = "graceful_restart_bird_killed";
    let dir = WorkDir::new(test).expect("work directory");
    let block = RECEIVER_BLOCK;
    let table = slash24s(Ipv4Addr::new(45, 0, 0, 0), ROUTES);
    let gone = "203.0.113.0/24".to_owned();
    let groups = [("bulk", table.clone()), ("gone", vec![gone.clone()])];
    let mut bird =
        GrBird::start(&dir.subdir("bird").expect("bird"), block, &groups, false).expect("BIRD");
    let events = dir.subdir("out").expect("out").join("events.jsonl");
    let extra = ExporterPlugin::fixture("events", &events)
        .expect("fixture-exporter")
        .render();
    let speaker = GrSpeaker::start(&dir.subdir("wasmbgp").expect("wasmbgp"), block, &[], &extra)
        .expect("wasmbgp starts");
    let all = u64::from(ROUTES) + 1;
    let result = (|| -> Result<()> {
        wait_until("wasmbgp has BIRD's 100,001 routes", TABLE_TIMEOUT, || {
            let (state, received, _, _) = speaker.neighbor()?;
            Ok(state == "established" && received == all)
        })?;
        let announced = |records: &[serde_json::Value]| {
            records
                .iter()
                .filter(|r| kind(r) == "announce" && r["direction"] == "received")
                .count()
        };
        wait_until("the exporter has the 100,001 routes", TABLE_TIMEOUT, || {
            Ok(announced(&read_records(&events)?) >= all as usize)
        })?;
        let before = read_records(&events)?.len();

        let socket = speaker.socket().to_path_buf();
        let sampler = Sampler::start(move || neighbor_of(&socket));
        std::thread::sleep(10 * SAMPLE_EVERY);
        step(
            test,
            format!("kill -9 BIRD, start it again with -R without {gone}"),
        );
        bird.kill()?;
        wait_until(
            "wasmbgp to see the session end",
            Duration::from_secs(30),
            || Ok(speaker.neighbor()?.0 != "established"),
        )?;
        bird.restart(&groups[..1])?;
        wait_until(
            "wasmbgp to have BIRD's routes again, none stale",
            TABLE_TIMEOUT,
            || {
                let (state, received, stale, count) = speaker.neighbor()?;
                Ok(state == "established"
                    && count == 2
                    && stale == 0
                    && received == u64::from(ROUTES))
            },
        )?;
        std::thread::sleep(5 * SAMPLE_EVERY);
        let samples = sampler.finish();

        ensure!(
            samples.errors.is_empty(),
            "ctl failed while sampling: {:?}",
            samples.errors
        );
        let min = samples.values.iter().map(|(_, v)| v.1).min().unwrap_or(0);
        let most_stale = samples.values.iter().map(|(_, v)| v.2).max().unwrap_or(0);
        ensure!(
            min == u64::from(ROUTES),
            "wasmbgp's Adj-RIB-In dropped to {min} (only {gone} may go)"
        );
        ensure!(
            most_stale == all,
            "wasmbgp should have held all {all} routes stale while BIRD restarted; at most {most_stale}"
        );
        let stale_for =
            samples.values.iter().filter(|(_, v)| v.2 > 0).count() as u32 * SAMPLE_EVERY;
        step(
            test,
            format!(
                "{} samples; Adj-RIB-In never below {min}; {most_stale} routes stale for about {stale_for:?}; longest gap {:?}",
                samples.values.len(),
                samples.longest_gap()
            ),
        );

        // The exporter: exactly one withdrawal since the kill, of the route BIRD no
        // longer has; the others were announced again, never withdrawn.
        wait_until(
            "the exporter to see the withdrawal",
            Duration::from_secs(30),
            || {
                Ok(read_records(&events)?[before..]
                    .iter()
                    .any(|r| kind(r) == "withdraw"))
            },
        )?;
        std::thread::sleep(5 * SAMPLE_EVERY);
        let records = read_records(&events)?;
        let withdrawn: BTreeSet<&str> = records[before..]
            .iter()
            .filter(|r| kind(r) == "withdraw")
            .filter_map(|r| r["prefix"].as_str())
            .collect();
        ensure!(
            withdrawn == BTreeSet::from([gone.as_str()]),
            "the exporter saw withdrawals of {withdrawn:?}, expected only {gone}"
        );
        step(
            test,
            format!(
                "the exporter saw {} records since the kill: {} announcements, 1 withdrawal ({gone})",
                records.len() - before,
                announced(&records[before..])
            ),
        );
        let log = speaker.log();
        ensure!(
            log.contains("marked stale") && log.contains("stale routes removed"),
            "wasmbgp's log does not tell the graceful restart"
        );
        Ok(())
    })();
    report(
        test,
        result,
        &[("BIRD", bird.log()), ("wasmbgp", speaker.log())],
    );
}
