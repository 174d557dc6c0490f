//! `wasmbgp check` through the real binary: every mistake is printed as FILE:LINE:COL.

use std::path::PathBuf;
use std::process::Command;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmbgp-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(config: &str, name: &str) -> (i32, String) {
    check_with_files(config, &[], name)
}

/// `check` with other files (route files) written beside the config.
fn check_with_files(config: &str, files: &[(&str, &[u8])], name: &str) -> (i32, String) {
    let dir = workdir(name);
    let path = dir.join("wasmbgp.toml");
    std::fs::write(&path, config).unwrap();
    for (file, content) in files {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wasmbgp"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let text = String::from_utf8_lossy(&out.stdout)
        .replace(&path.display().to_string(), "CONFIG")
        .replace(&dir.display().to_string(), "DIR");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn three_different_mistakes_each_with_its_line() {
    let config = r#"router-id = "127.0.0.1"
local-as = 65001

[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
hold-time = 2

[[neighbor]]
address = "127.0.0.2"
peer-as = 65000

[[route]]
prefix = "100.10.0.0/24"
next-hop = "2001:db8::1"
colour = "blue"
"#;
    let (code, text) = check(config, "three");
    assert_eq!(code, 1, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "CONFIG:7:13: neighbor[1].hold-time must be 0 or at least 3 seconds",
            "CONFIG:10:11: duplicate neighbor 127.0.0.2",
            "CONFIG:13:1: next-hop 2001:db8::1 is IPv6 but prefix 100.10.0.0/24 is IPv4",
            "CONFIG:16:1: unknown key `colour` in route[1]",
        ],
        "{text}"
    );
}

#[test]
fn a_good_config_passes() {
    let config = r#"router-id = "127.0.0.1"
local-as = 65001
[[neighbor]]
address = "127.0.0.2"
peer-as = 65000
[[route]]
prefix = "100.10.0.0/24"
"#;
    let (code, text) = check(config, "good");
    assert_eq!(code, 0, "{text}");
    assert!(text.ends_with("ok (1 neighbors, 1 routes)\n"), "{text}");
}

#[test]
fn a_missing_component_is_refused_with_the_reason() {
    let config = r#"router-id = "127.0.0.1"
local-as = 65001
[[plugin]]
name = "web"
world = "healthcheck"
component = "nowhere/tcp-check.wasm"
"#;
    let (code, text) = check(config, "plugin");
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with("CONFIG:6:13: component "), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn syntax_errors_have_a_position() {
    let (code, text) = check("router-id = \"127.0.0.1\"\nlocal-as = \n", "syntax");
    assert_eq!(code, 1);
    assert!(text.starts_with("CONFIG:2:"), "{text}");
}

/// A config with one neighbor and the route file `path`.
fn route_file_config(path: &str) -> String {
    format!(
        "router-id = \"127.0.0.1\"\nlocal-as = 65001\n[[neighbor]]\naddress = \"127.0.0.2\"\n\
         peer-as = 65000\n[[route-file]]\npath = \"{path}\"\n"
    )
}

/// Issue 7: the extended community that once panicked the words parser, in a route
/// file, is one `CONFIG:LINE:COL: FILE:LINE: reason` line and exit 1, not a backtrace.
#[test]
fn a_route_file_with_a_multibyte_extended_community_is_an_error_with_its_line() {
    let routes = "10.0.0.0/24\n10.0.1.0/24 extended-community 0x0é0000000000000\n";
    let (code, text) = check_with_files(
        &route_file_config("bad.routes"),
        &[("bad.routes", routes.as_bytes())],
        "issue7",
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        text.trim_end(),
        "CONFIG:7:8: DIR/bad.routes:2: extended-community must be target:ASN:N, \
         origin:ASN:N, a flow action (rate-limit:N, redirect:ASN:N...) or 0x<16 hex digits>, \
         not \"0x0é0000000000000\""
    );
}

#[test]
fn a_route_file_that_is_not_utf8_is_an_error_with_its_path() {
    let (code, text) = check_with_files(
        &route_file_config("binary.routes"),
        &[("binary.routes", b"10.0.0.0/24\n\xff\xfe\n")],
        "utf8",
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("CONFIG:7:8: cannot read route file DIR/binary.routes"),
        "{text}"
    );
}
