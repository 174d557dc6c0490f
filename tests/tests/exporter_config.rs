//! `wasmbgp check` on exporter blocks: every key is checked and reported as
//! FILE:LINE:COL; a secret setting never reaches the output, even when the plugin
//! echoes it in its refusal.

use wasmbgp_e2e::check::{check, position};
use wasmbgp_e2e::plugin_support::component;
use wasmbgp_e2e::workdir::WorkDir;

const HEADER: &str = "router-id = \"127.0.0.1\"\nlocal-as = 65001\n\n[[neighbor]]\naddress = \"127.0.0.2\"\npeer-as = 65000\n";

#[test]
fn a_good_exporter_block_passes() {
    let dir = WorkDir::new("exporter-config-good").expect("workdir");
    let stats = component("route-stats").expect("route-stats");
    let config = format!(
        r#"{HEADER}
[[plugin]]
name = "stats"
world = "exporter"
component = "{}"
subscribe = ["sessions", "routes-received", "routes-sent", "end-of-rib", "notifications", "health", "plugins"]
received-routes = "pre-policy"
queue = 16
[plugin.grants]
max-series = 10
http-out = ["http://127.0.0.1:9000/hook", "https://alerts.example.net/"]
tcp-out = ["127.0.0.1:11019", "[::1]:11019"]
append-files = ["events.jsonl"]
"#,
        stats.display()
    );
    let (code, text) = check(dir.path(), &config);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn every_bad_exporter_key_is_reported_where_it_is() {
    let dir = WorkDir::new("exporter-config-bad").expect("workdir");
    let stats = component("route-stats").expect("route-stats");
    let check_plugin = component("tcp-check").expect("tcp-check");
    let config = format!(
        r#"{HEADER}
[[plugin]]
name = "stats"
world = "exporter"
component = "{}"
subscribe = ["sessions", "everything"]
received-routes = "sideways"
[plugin.grants]
http-out = ["ftp://127.0.0.1/"]
tcp-out = ["collector.example.net:11019"]
append-files = ["no/such/folder/events.jsonl"]

[[plugin]]
name = "web"
world = "healthcheck"
component = "{}"
subscribe = ["sessions"]
[plugin.settings]
address = "127.0.0.1:80"
"#,
        stats.display(),
        check_plugin.display()
    );
    let (code, text) = check(dir.path(), &config);
    assert_eq!(code, Some(1), "{text}");
    for (needle, why) in [
        ("\"everything\"", "unknown kind"),
        ("\"sideways\"", "received-routes must be"),
        ("\"ftp://", "must start with http:// or https://"),
        ("\"collector.example.net", "tcp-out entries must be IP:PORT"),
        ("\"no/such", "not a file in an existing folder"),
    ] {
        let at = position(&config, needle);
        assert!(
            text.lines().any(|l| l.starts_with(&at) && l.contains(why)),
            "expected {at}: ...{why}... in:\n{text}"
        );
    }
    assert!(
        text.contains("subscribe is for exporters"),
        "a health check's subscribe must be refused:\n{text}"
    );
}

#[test]
fn a_secret_setting_never_reaches_the_output() {
    let dir = WorkDir::new("exporter-config-secret").expect("workdir");
    let policy = component("fixture-policy").expect("fixture-policy");
    // fixture-policy refuses an unknown mode and quotes it in its error.
    let config = format!(
        r#"{HEADER}
[[plugin]]
name = "p"
world = "policy"
component = "{}"
secret-settings = ["mode"]
[plugin.settings]
mode = "hunter2-very-secret"
"#,
        policy.display()
    );
    let (code, text) = check(dir.path(), &config);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("<secret>"),
        "the refusal is reported:\n{text}"
    );
    assert!(!text.contains("hunter2"), "the secret leaked:\n{text}");

    let config = format!(
        r#"{HEADER}
[[plugin]]
name = "p"
world = "policy"
component = "{}"
secret-settings = ["token"]
[plugin.settings]
mode = "accept"
"#,
        policy.display()
    );
    let (code, text) = check(dir.path(), &config);
    assert_eq!(code, Some(1), "{text}");
    let at = position(&config, "\"token\"");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&at) && l.contains("not in plugin")),
        "expected {at}: a secret that is not a setting, in:\n{text}"
    );
}
