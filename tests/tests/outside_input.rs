//! Outside input never stops the speaker (issue 7), against a real BIRD: a plugin's
//! malformed route requests are answered `invalid` at the boundary, the control socket
//! answers every line of a batch holding bad input, and through it all the session
//! stays Established with its routes.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use wasmbgp_e2e::plugin_support::{Plugin, PluginBlock, Rig, wait_fast};

#[test]
fn outside_input_never_stops_the_speaker() {
    let test = "outside-input";
    let block = PluginBlock(208);
    let vip = |n: u8| block.vip(n);
    let reproducer = "0x0é0000000000000";

    // Its health route (vip 1) comes up only if every malformed request got
    // `invalid`; the well-formed one (vip 2) goes through the routes interface.
    let mut bad = Plugin::faulty("bad", "bad-routes", &[("prefix", &vip(2))], &vip(1)).unwrap();
    bad.neighbors = vec![block.addr(2).to_string()];
    bad.max_routes = Some(1);
    let rig = Rig::start(test, block, &[bad]).expect("rig");

    let result = (|| -> Result<()> {
        // 1. The plugin: invalid for each, and the speaker keeps serving.
        wait_fast(
            "both plugin routes at BIRD",
            Duration::from_millis(100),
            Duration::from_secs(15),
            || Ok(rig.bird.has_route(&vip(1))? && rig.bird.has_route(&vip(2))?),
        )?;
        let status = rig.speaker.plugin("bad")?;
        ensure!(status.health.as_deref() == Some("up"), "{:?}", status.raw);
        ensure!(
            status.invalid >= 7
                && status.denied >= 1
                && status.routes_owned == 1
                && status.restarts == 0,
            "{:?}",
            status.raw
        );
        let text = rig.speaker.ctl(&["show", "plugins"])?;
        ensure!(text.contains("invalid "), "{text}");
        rig.step(format!(
            "plugin: {} malformed requests answered invalid, routes up",
            status.invalid
        ));
        ensure!(
            !rig.speaker.log().contains("panicked"),
            "{}",
            rig.speaker.log()
        );

        // 2. The control socket: every line answered, in order, the batch goes on.
        let mut batch = Vec::new();
        batch.extend_from_slice(
            format!(
                "announce route {} next-hop self extended-community {reproducer}\n",
                vip(3)
            )
            .as_bytes(),
        );
        batch.extend_from_slice(b"announce route \xff\xfe next-hop self\n");
        batch.extend_from_slice(b"announce route ");
        batch.extend(std::iter::repeat_n(b'7', 100_000));
        batch.push(b'\n');
        batch.extend_from_slice(format!("announce route {} next-hop self\n", vip(4)).as_bytes());
        batch.extend_from_slice(b"show plugins\n");
        let started = Instant::now();
        let out = rig.speaker.ctl_stream(&batch)?;
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        ensure!(
            out.status.code() == Some(1),
            "exit {:?}: {stdout}",
            out.status
        );
        ensure!(
            lines.len() == 5,
            "{} answers for 5 commands: {stdout}",
            lines.len()
        );
        ensure!(
            lines[0].starts_with("error: extended-community must be"),
            "{}",
            lines[0]
        );
        ensure!(
            lines[1].starts_with("error: command line is not valid UTF-8"),
            "{}",
            lines[1]
        );
        ensure!(
            lines[2].starts_with("error: command line of 100015 bytes is longer than")
                && lines[2].len() < 200,
            "{}",
            &lines[2][..lines[2].len().min(300)]
        );
        ensure!(lines[3] == "ok", "{}", lines[3]);
        ensure!(lines[4].starts_with("bad "), "{}", lines[4]);
        // A generous bound under test load: the time is printed below.
        ensure!(took < Duration::from_secs(5), "batch took {took:?}");
        rig.step(format!(
            "ctl -: 3 bad lines answered, batch went on ({took:?})"
        ));

        // The reproducer alone: an error and exit 1.
        let single = rig.speaker.ctl(&[
            "announce",
            "route",
            &vip(5),
            "next-hop",
            "self",
            "extended-community",
            reproducer,
        ]);
        ensure!(single.is_err(), "{single:?}");

        wait_fast(
            "the route after the bad lines at BIRD",
            Duration::from_millis(100),
            Duration::from_secs(10),
            || rig.bird.has_route(&vip(4)),
        )?;
        ensure!(
            !rig.bird.has_route(&vip(3))?,
            "the refused route reached BIRD"
        );
        ensure!(rig.bird.has_route(&vip(1))? && rig.bird.has_route(&vip(2))?);
        rig.assert_session_untouched()?;
        rig.step("session untouched, routes in place");
        Ok(())
    })();
    if let Err(e) = result {
        panic!("{e:#}\nwasmbgp log:\n{}", rig.speaker.log());
    }
}
