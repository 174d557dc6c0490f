//! `wasmbgp check` refuses policy chains that name no policy: an unknown
//! plugin, a health check, each reported as FILE:LINE:COL at the name; and
//! a policy's `on-failure` must be one a policy knows.

use wasmbgp_e2e::check::{check, position};
use wasmbgp_e2e::plugin_support::component;
use wasmbgp_e2e::workdir::WorkDir;

fn header() -> String {
    "router-id = \"127.0.0.1\"\nlocal-as = 65001\n".to_owned()
}

#[test]
fn policy_chain_names_must_be_policies() {
    let dir = WorkDir::new("policy-config").expect("workdir");
    let tcp_check = component("tcp-check").expect("tcp-check");
    let policy = component("fixture-policy").expect("fixture-policy");
    let config = format!(
        r#"{}
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
import-policy = ["good", "nope"]
export-policy = ["web"]

[[plugin]]
name = "good"
world = "policy"
component = "{}"
[plugin.settings]
mode = "accept"

[[plugin]]
name = "web"
world = "healthcheck"
component = "{}"
[plugin.settings]
address = "127.0.0.1:8080"
[plugin.grants]
tcp = ["127.0.0.1:8080"]
"#,
        header(),
        policy.display(),
        tcp_check.display()
    );
    let (code, text) = check(dir.path(), &config);
    eprintln!("wasmbgp check said:\n{text}");
    assert_eq!(code, Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let unknown = format!(
        "{}: no policy plugin named \"nope\"",
        position(&config, "\"nope\"")
    );
    // The first `"web"` is the chain's (the plugin's name comes later).
    let healthcheck = format!(
        "{}: plugin \"web\" is a healthcheck plugin, not a policy",
        position(&config, "\"web\"")
    );
    assert!(
        lines.contains(&unknown.as_str()),
        "expected {unknown:?} in:\n{text}"
    );
    assert!(
        lines.contains(&healthcheck.as_str()),
        "expected {healthcheck:?} in:\n{text}"
    );
    assert_eq!(lines.len(), 2, "exactly the two mistakes:\n{text}");

    // The same config with both chains fixed passes.
    let fixed = config
        .replace("[\"good\", \"nope\"]", "[\"good\"]")
        .replace("export-policy = [\"web\"]\n", "");
    let (code, text) = check(dir.path(), &fixed);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn policy_on_failure_is_reject_or_accept() {
    let dir = WorkDir::new("policy-config-on-failure").expect("workdir");
    let policy = component("fixture-policy").expect("fixture-policy");
    let config = format!(
        r#"{}
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
import-policy = ["p"]

[[plugin]]
name = "p"
world = "policy"
component = "{}"
on-failure = "withdraw"
[plugin.settings]
mode = "accept"
"#,
        header(),
        policy.display()
    );
    let (code, text) = check(dir.path(), &config);
    eprintln!("wasmbgp check said:\n{text}");
    assert_eq!(code, Some(1), "{text}");
    // At the value refused, like every other config mistake.
    let at = position(&config, "\"withdraw\"");
    assert!(
        text.lines().any(|l| l.starts_with(&format!("{at}: "))
            && l.contains("withdraw")
            && l.contains("reject")
            && l.contains("accept")),
        "expected an error at {at} naming withdraw and the choices reject/accept:\n{text}"
    );
    for good in ["reject", "accept"] {
        let (code, text) = check(
            dir.path(),
            &config.replace("\"withdraw\"", &format!("\"{good}\"")),
        );
        assert_eq!(code, Some(0), "on-failure = {good}: {text}");
    }
}

/// `check` (and `run`, which loads the config the same way) starts each plugin once
/// and runs its `init`: settings or a data file the plugin refuses are reported with
/// its reason, at the plugin's component, before anything starts.
#[test]
fn settings_and_data_files_the_plugin_refuses_fail_the_check() {
    let dir = WorkDir::new("policy-config-init").expect("workdir");
    let rov = component("rpki-rov").expect("rpki-rov");
    let tcp_check = component("tcp-check").expect("tcp-check");
    let vrps = dir.path().join("vrps.json");
    std::fs::write(&vrps, r#"{"roas": [ broken"#).expect("write vrps");
    let config = format!(
        r#"{}
[[plugin]]
name = "rov"
world = "policy"
component = "{}"
[plugin.settings]
vrps = "{vrps}"
[plugin.grants]
files = ["{vrps}"]

[[plugin]]
name = "web"
world = "healthcheck"
component = "{}"
[plugin.settings]
address = "127.0.0.1:80"
colour = "red"
[[plugin.route]]
prefix = "100.10.0.100/32"
"#,
        header(),
        rov.display(),
        tcp_check.display(),
        vrps = vrps.display(),
    );
    let (code, text) = check(dir.path(), &config);
    assert_eq!(code, Some(1), "{text}");
    let rov_line = position(&config, &rov.display().to_string());
    let web_line = position(&config, &tcp_check.display().to_string());
    let rov_error = text
        .lines()
        .find(|l| l.contains("\"rov\" refused"))
        .unwrap_or_default();
    assert!(
        rov_error.starts_with(&rov_line[..rov_line.rfind(':').unwrap()])
            && rov_error.contains("init refused the settings"),
        "{text}"
    );
    let web_error = text
        .lines()
        .find(|l| l.contains("\"web\" refused"))
        .unwrap_or_default();
    assert!(
        web_error.starts_with(&web_line[..web_line.rfind(':').unwrap()])
            && web_error.contains("colour"),
        "{text}"
    );

    // Fixed, the same config passes.
    std::fs::write(&vrps, r#"{"roas": []}"#).expect("write vrps");
    let fixed = config.replace("colour = \"red\"\n", "");
    let (code, text) = check(dir.path(), &fixed);
    assert_eq!(code, Some(0), "{text}");
}
