//! `wasmbgp plugin new NAME --world W --lang L`: writes a plugin project that builds
//! and passes its own test as generated.
//!
//! The project, in `./NAME` (or `--dir`):
//!
//! - `README.md`: what the plugin does, how to build and test it, and its `[[plugin]]`
//!   table for wasmbgp's config;
//! - `build.sh`: sources `toolchain.sh` (a copy of `scripts/lang/LANG.sh`), installs
//!   the toolchain when it is missing (into `$WASMBGP_TOOLS`, default
//!   `~/.cache/wasmbgp/tools`) and builds `NAME.wasm`;
//! - `test.sh`: runs `build.sh`, then `wasmbgp plugin test` on a small input (files in
//!   `test/`), and checks what it prints; the `wasmbgp` it runs defaults to the
//!   executable that generated the project (`$WASMBGP` overrides it);
//! - the source: Rust `Cargo.toml` and `src/lib.rs` on the SDK (`sdk/` of the sources
//!   this wasmbgp was built from, or `--sdk`), Python `app.py`, JavaScript `app.js`,
//!   C `app.c`; for the languages other than Rust, the WIT package in `wit/`.
//!
//! Every file comes from `host/daemon/templates/`, `scripts/lang/` and `wit/`,
//! embedded at compile time; `{{key}}` in a template is replaced by the value of
//! `key` (see [`Vars`]).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use super::WorldArg;

/// `wasmbgp plugin new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and '-', starting with a letter
    /// (e.g. `web-check`). The project directory and the component (NAME.wasm) are
    /// named after it.
    pub name: String,
    /// The WIT world the plugin implements.
    #[arg(long, value_enum)]
    pub world: WorldArg,
    /// The language of the project.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where to write the project (default: ./NAME). It must not exist, or be empty.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// With --lang rust: the wasmbgp SDK the project depends on (the sdk/ directory of
    /// the wasmbgp sources; default: the one this wasmbgp was built from).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// A language a project can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust on the wasmbgp SDK (cargo, target wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (componentize-qjs).
    Js,
    /// C (clang, wasi-libc, wit-bindgen c, wasm-tools).
    C,
}

impl Lang {
    /// The word of the command line and of `scripts/lang/WORD.sh`.
    fn word(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        }
    }

    /// `scripts/lang/WORD.sh`: the toolchain functions `build.sh` sources.
    fn toolchain_script(self) -> &'static str {
        match self {
            Lang::Rust => include_str!("../../../../scripts/lang/rust.sh"),
            Lang::Python => include_str!("../../../../scripts/lang/python.sh"),
            Lang::Js => include_str!("../../../../scripts/lang/js.sh"),
            Lang::C => include_str!("../../../../scripts/lang/c.sh"),
        }
    }

    /// What `toolchain.sh` installs, for the README.
    fn toolchain(self) -> &'static str {
        match self {
            Lang::Rust => {
                "the Rust target `wasm32-wasip2` (with rustup; Rust itself must be there)"
            }
            Lang::Python => "componentize-py (from PyPI, in a venv; needs python3)",
            Lang::Js => "componentize-qjs (from npm; needs Node.js 18 or newer)",
            Lang::C => {
                "clang, lld and wasi-libc (Debian packages, with apt-get), wit-bindgen and \
                 wasm-tools (with cargo)"
            }
        }
    }

    /// The line of `build.sh` that builds the component.
    fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "rust_component . {{world}} {{name}}.wasm",
            Lang::Python => "python_component . wit {{world}} {{name}}.wasm",
            Lang::Js => "js_component . wit {{world}} {{name}}.wasm",
            Lang::C => "c_component . wit {{world}} {{name}}.wasm",
        }
    }

    /// The README section about the files of a project in this language.
    fn readme(self) -> &'static str {
        match self {
            Lang::Rust => include_str!("../../templates/readme/rust.md"),
            Lang::Python => include_str!("../../templates/readme/python.md"),
            Lang::Js => include_str!("../../templates/readme/js.md"),
            Lang::C => include_str!("../../templates/readme/c.md"),
        }
    }

    /// The plugin's source: (path in the project, template).
    fn source(self, world: WorldArg) -> (&'static str, &'static str) {
        let (path, by_world) = match self {
            Lang::Rust => ("src/lib.rs", RUST_SOURCES),
            Lang::Python => ("app.py", PYTHON_SOURCES),
            Lang::Js => ("app.js", JS_SOURCES),
            Lang::C => ("app.c", C_SOURCES),
        };
        let index = match world {
            WorldArg::Healthcheck => 0,
            WorldArg::Policy => 1,
            WorldArg::Exporter => 2,
        };
        (path, by_world[index])
    }
}

/// The starter plugins of each language: healthcheck, policy, exporter.
const RUST_SOURCES: [&str; 3] = [
    include_str!("../../templates/rust/healthcheck.rs"),
    include_str!("../../templates/rust/policy.rs"),
    include_str!("../../templates/rust/exporter.rs"),
];
const PYTHON_SOURCES: [&str; 3] = [
    include_str!("../../templates/python/healthcheck.py"),
    include_str!("../../templates/python/policy.py"),
    include_str!("../../templates/python/exporter.py"),
];
const JS_SOURCES: [&str; 3] = [
    include_str!("../../templates/js/healthcheck.js"),
    include_str!("../../templates/js/policy.js"),
    include_str!("../../templates/js/exporter.js"),
];
const C_SOURCES: [&str; 3] = [
    include_str!("../../templates/c/healthcheck.c"),
    include_str!("../../templates/c/policy.c"),
    include_str!("../../templates/c/exporter.c"),
];

/// The world's name in WIT.
fn world_name(world: WorldArg) -> &'static str {
    match world {
        WorldArg::Healthcheck => "healthcheck",
        WorldArg::Policy => "policy",
        WorldArg::Exporter => "exporter",
    }
}

/// What the starter plugin of a world does, in one line.
fn summary(world: WorldArg) -> &'static str {
    match world {
        WorldArg::Healthcheck => "healthy while a TCP connection to `address` succeeds.",
        WorldArg::Policy => {
            "rejects prefixes longer than `max-length` and tags the routes it accepts with \
             `community`."
        }
        WorldArg::Exporter => {
            "counts the routes each neighbor announces and withdraws into two metrics."
        }
    }
}

/// Files of a project: (path in the project, template).
type Templates = &'static [(&'static str, &'static str)];

/// The world's README section, `test.sh` and test inputs.
fn world_files(world: WorldArg) -> (&'static str, &'static str, Templates) {
    match world {
        WorldArg::Healthcheck => (
            include_str!("../../templates/readme/healthcheck.md"),
            include_str!("../../templates/healthcheck/test.sh"),
            &[],
        ),
        WorldArg::Policy => (
            include_str!("../../templates/readme/policy.md"),
            include_str!("../../templates/policy/test.sh"),
            &[
                (
                    "test/routes.txt",
                    include_str!("../../templates/policy/routes.txt"),
                ),
                (
                    "test/expected.txt",
                    include_str!("../../templates/policy/expected.txt"),
                ),
            ],
        ),
        WorldArg::Exporter => (
            include_str!("../../templates/readme/exporter.md"),
            include_str!("../../templates/exporter/test.sh"),
            &[
                (
                    "test/events.txt",
                    include_str!("../../templates/exporter/events.txt"),
                ),
                (
                    "test/expected.txt",
                    include_str!("../../templates/exporter/expected.txt"),
                ),
            ],
        ),
    }
}

/// The WIT package `wasmbgp:plugin@0.2.0` (every file of `wit/`; a unit test keeps the
/// list complete), copied into the projects of the languages that generate bindings.
const WIT: &[(&str, &str)] = &[
    ("clock.wit", include_str!("../../../../wit/clock.wit")),
    ("exporter.wit", include_str!("../../../../wit/exporter.wit")),
    (
        "healthcheck.wit",
        include_str!("../../../../wit/healthcheck.wit"),
    ),
    ("log.wit", include_str!("../../../../wit/log.wit")),
    ("metrics.wit", include_str!("../../../../wit/metrics.wit")),
    ("output.wit", include_str!("../../../../wit/output.wit")),
    ("policy.wit", include_str!("../../../../wit/policy.wit")),
    ("probe.wit", include_str!("../../../../wit/probe.wit")),
    ("routes.wit", include_str!("../../../../wit/routes.wit")),
    ("state.wit", include_str!("../../../../wit/state.wit")),
    ("types.wit", include_str!("../../../../wit/types.wit")),
];

const README: &str = include_str!("../../templates/readme/README.md");
const BUILD_SH: &str = include_str!("../../templates/build.sh");
const GITIGNORE: &str = include_str!("../../templates/gitignore");
const CARGO_TOML: &str = include_str!("../../templates/rust/Cargo.toml");

/// The SDK of the sources this wasmbgp was built from.
const DEFAULT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

/// One file of a project.
#[derive(Debug)]
struct ProjectFile {
    /// Relative to the project directory.
    path: String,
    contents: String,
    executable: bool,
}

/// The values of the templates' `{{key}}`s.
struct Vars<'a> {
    pairs: Vec<(&'static str, &'a str)>,
}

impl Vars<'_> {
    /// `template` with every `{{key}}` (key: lowercase letters and '_') replaced by its
    /// value; other text, other braces included, is kept. An unknown key is a bug.
    fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let key_len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            if key_len > 0 && after[key_len..].starts_with("}}") {
                let key = &after[..key_len];
                let value = self
                    .pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("template key {{{{{key}}}}} has no value"));
                out.push_str(&rest[..start]);
                out.push_str(value);
                rest = &after[key_len + 2..];
            } else {
                // Not a key: keep one brace and look again from the next one.
                out.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// Refuses a name that is not lowercase letters, digits and single '-' between them,
/// starting with a letter (a crate, file and metric-friendly name).
fn check_name(name: &str, lang: Lang) -> Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "invalid plugin name {name:?}: use lowercase letters, digits and '-' (not doubled \
             nor at the end), starting with a letter, at most 64 characters (e.g. web-check)"
        );
    }
    // Names cargo refuses for a package, or that shadow the standard crates.
    const RUST_RESERVED: &[&str] = &[
        "abstract",
        "alloc",
        "as",
        "async",
        "await",
        "become",
        "box",
        "break",
        "const",
        "continue",
        "core",
        "crate",
        "do",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "proc-macro",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "std",
        "struct",
        "super",
        "test",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
    ];
    if lang == Lang::Rust && RUST_RESERVED.contains(&name) {
        bail!(
            "invalid plugin name {name:?}: it is reserved in Rust (a keyword or a standard crate)"
        );
    }
    Ok(())
}

/// The SDK directory, canonical; an error says how to give it when it is not there.
fn sdk_dir(given: Option<&Path>) -> Result<PathBuf> {
    let (path, hint) = match given {
        Some(path) => (path.to_path_buf(), "check --sdk"),
        None => (
            PathBuf::from(DEFAULT_SDK),
            "it is where the sources of this wasmbgp were; give the sdk/ directory of the \
             wasmbgp sources with --sdk PATH",
        ),
    };
    let canonical = fs::canonicalize(&path).map_err(|e| {
        anyhow::anyhow!("the wasmbgp SDK is not at {} ({e}): {hint}", path.display())
    })?;
    let manifest = fs::read_to_string(canonical.join("Cargo.toml")).unwrap_or_default();
    if !manifest.contains("name = \"wasmbgp-sdk\"") {
        bail!(
            "{} is not the wasmbgp SDK (no Cargo.toml of the crate wasmbgp-sdk there): {hint}",
            canonical.display()
        );
    }
    Ok(canonical)
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The default of `test.sh`'s `$WASMBGP`: this executable, when its path can stand in a
/// double-quoted shell word as it is; else `wasmbgp` (found on PATH).
fn wasmbgp_default(exe: Option<&Path>) -> String {
    exe.and_then(Path::to_str)
        .filter(|path| {
            path.starts_with('/')
                && path
                    .chars()
                    .all(|c| c.is_alphanumeric() || " /._+-@:,=%~".contains(c))
        })
        .unwrap_or("wasmbgp")
        .to_string()
}

/// Every file of the project, rendered.
fn project_files(
    name: &str,
    world: WorldArg,
    lang: Lang,
    sdk: Option<&Path>,
    wasmbgp: &str,
) -> Vec<ProjectFile> {
    let sdk_display = sdk.map(|p| p.display().to_string()).unwrap_or_default();
    let sdk_toml = toml_string(&sdk_display);
    let world_c = world_name(world).replace('-', "_");
    let base = Vars {
        pairs: vec![
            ("name", name),
            ("world", world_name(world)),
            ("world_c", &world_c),
            ("lang", lang.word()),
            ("lang_name", lang.display_name()),
            ("summary", summary(world)),
            ("toolchain", lang.toolchain()),
            ("wasmbgp", wasmbgp),
            ("sdk", &sdk_display),
            ("sdk_toml", &sdk_toml),
        ],
    };
    let (world_readme, test_sh, test_inputs) = world_files(world);
    let build_command = base.render(lang.build_command());
    let world_section = base.render(world_readme);
    let lang_section = base.render(lang.readme());
    let mut vars = Vars {
        pairs: base.pairs.clone(),
    };
    vars.pairs.extend([
        ("build_command", build_command.as_str()),
        ("world_section", world_section.as_str()),
        ("lang_section", lang_section.as_str()),
    ]);

    let file = |path: &str, template: &str, executable: bool| ProjectFile {
        path: path.to_string(),
        contents: vars.render(template),
        executable,
    };
    let mut files = vec![
        file("README.md", README, false),
        file("build.sh", BUILD_SH, true),
        file("test.sh", test_sh, true),
        ProjectFile {
            path: "toolchain.sh".into(),
            contents: lang.toolchain_script().to_string(),
            executable: false,
        },
        file(".gitignore", GITIGNORE, false),
    ];
    files.extend(
        test_inputs
            .iter()
            .map(|(path, template)| file(path, template, false)),
    );
    if lang == Lang::Rust {
        files.push(file("Cargo.toml", CARGO_TOML, false));
    } else {
        files.extend(WIT.iter().map(|(wit_name, contents)| ProjectFile {
            path: format!("wit/{wit_name}"),
            contents: (*contents).to_string(),
            executable: false,
        }));
    }
    let (source_path, source) = lang.source(world);
    files.push(file(source_path, source, false));
    files
}

/// Writes `files` under `dir`, which must not exist or be empty; on failure, removes
/// what it wrote.
fn write_project(dir: &Path, files: &[ProjectFile]) -> Result<()> {
    let created = match fs::read_dir(dir) {
        Ok(mut entries) => {
            if !dir.is_dir() {
                bail!("{} exists and is not a directory", dir.display());
            }
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty: choose another name or --dir",
                    dir.display()
                );
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("{} exists and is not a directory", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let result = (|| -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for file in files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            fs::write(&path, &file.contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if file.executable {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .with_context(|| format!("cannot make {} executable", path.display()))?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        // Leave things as they were: the directory was absent or empty.
        if created {
            let _ = fs::remove_dir_all(dir);
        } else if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
    result
}

/// Runs `plugin new`.
pub fn run(args: NewArgs) -> Result<ExitCode> {
    check_name(&args.name, args.lang)?;
    let sdk = match (args.lang, &args.sdk) {
        (Lang::Rust, given) => Some(sdk_dir(given.as_deref())?),
        (_, Some(_)) => bail!("--sdk is for --lang rust (the other languages build from wit/)"),
        (_, None) => None,
    };
    let exe = std::env::current_exe().and_then(fs::canonicalize).ok();
    let wasmbgp = wasmbgp_default(exe.as_deref());
    if wasmbgp == "wasmbgp" {
        eprintln!(
            "wasmbgp plugin new: note: test.sh runs `wasmbgp` from PATH (set WASMBGP to choose one)"
        );
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let files = project_files(&args.name, args.world, args.lang, sdk.as_deref(), &wasmbgp);
    write_project(&dir, &files)?;

    let mut listed: Vec<String> = files
        .iter()
        .filter(|f| !f.path.starts_with("wit/"))
        .map(|f| f.path.clone())
        .collect();
    if args.lang != Lang::Rust {
        listed.push("wit/".into());
    }
    println!(
        "created {} ({} plugin `{}` in {}): {}",
        dir.display(),
        world_name(args.world),
        args.name,
        args.lang.display_name(),
        listed.join(" ")
    );
    println!(
        "next: cd {} && ./test.sh   (builds {}.wasm and tests it)",
        dir.display(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORLDS: [WorldArg; 3] = [WorldArg::Healthcheck, WorldArg::Policy, WorldArg::Exporter];
    const LANGS: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn embedded_wit_is_the_whole_package() {
        let mut on_disk: Vec<(String, String)> = fs::read_dir(repo().join("wit"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wit"))
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = WIT
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect();
        let names =
            |list: &[(String, String)]| list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&embedded),
            names(&on_disk),
            "update WIT in new.rs to list every wit/*.wit"
        );
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn every_combination_renders_completely() {
        let sdk = sdk_dir(None).unwrap();
        for world in WORLDS {
            for lang in LANGS {
                let sdk = (lang == Lang::Rust).then_some(sdk.as_path());
                let files =
                    project_files("my-plugin", world, lang, sdk, "/opt/wasmbgp/bin/wasmbgp");
                for file in &files {
                    let mut rest = file.contents.as_str();
                    while let Some(i) = rest.find("{{") {
                        let after = &rest[i + 2..];
                        let key: String = after
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        assert!(
                            key.is_empty() || !after[key.len()..].starts_with("}}"),
                            "{world:?} {lang:?} {}: {{{{{key}}}}} left",
                            file.path
                        );
                        rest = after;
                    }
                }
                let get = |path: &str| {
                    files
                        .iter()
                        .find(|f| f.path == path)
                        .unwrap_or_else(|| panic!("{world:?} {lang:?}: no {path}"))
                };
                assert!(get("build.sh").executable && get("test.sh").executable);
                assert!(
                    get("test.sh")
                        .contents
                        .contains("${WASMBGP:-/opt/wasmbgp/bin/wasmbgp}")
                );
                assert!(
                    get("build.sh")
                        .contents
                        .contains(&format!("{}_tools_install", lang.word()))
                );
                assert!(
                    get("README.md")
                        .contents
                        .contains(&format!("world = \"{}\"", world_name(world)))
                );
                for script in ["build.sh", "test.sh", "toolchain.sh"] {
                    let status = std::process::Command::new("bash")
                        .args(["-n", "-c", &get(script).contents])
                        .status()
                        .unwrap();
                    assert!(
                        status.success(),
                        "{world:?} {lang:?} {script}: bash -n fails"
                    );
                }
                if lang == Lang::Rust {
                    let cargo = &get("Cargo.toml").contents;
                    assert!(cargo.contains(&format!(
                        "wasmbgp-sdk = {{ path = {} }}",
                        toml_string(&sdk.unwrap().display().to_string())
                    )));
                    assert!(cargo.contains("name = \"my-plugin\""));
                    assert!(!files.iter().any(|f| f.path.starts_with("wit/")));
                } else {
                    assert_eq!(
                        files.iter().filter(|f| f.path.starts_with("wit/")).count(),
                        WIT.len()
                    );
                }
            }
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "web-check", "check2", "x-1-y"] {
            check_name(good, Lang::Rust).unwrap();
        }
        for bad in [
            "", "Web", "1check", "-a", "a-", "a--b", "a_b", "a.b", "a b", "é",
        ] {
            assert!(check_name(bad, Lang::C).is_err(), "{bad:?} accepted");
        }
        assert!(check_name("test", Lang::Rust).is_err());
        check_name("test", Lang::Python).unwrap();
        assert!(check_name(&"a".repeat(65), Lang::C).is_err());
    }

    #[test]
    fn render_replaces_known_keys_only() {
        let vars = Vars {
            pairs: vec![("name", "x"), ("world", "w")],
        };
        assert_eq!(
            vars.render("{{name}}-{{world}} {{0}} {{ name }} {{"),
            "x-w {{0}} {{ name }} {{"
        );
        assert_eq!(vars.render("a{{{name}}}b"), "a{x}b");
    }

    #[test]
    fn default_wasmbgp_path_needs_no_quoting() {
        let exe = |p: &str| wasmbgp_default(Some(Path::new(p)));
        assert_eq!(exe("/usr/local/bin/wasmbgp"), "/usr/local/bin/wasmbgp");
        assert_eq!(
            exe("/home/me/my src/target/release/wasmbgp"),
            "/home/me/my src/target/release/wasmbgp"
        );
        assert_eq!(exe("/tmp/$x/wasmbgp"), "wasmbgp");
        assert_eq!(exe("/tmp/a\"b/wasmbgp"), "wasmbgp");
        assert_eq!(wasmbgp_default(None), "wasmbgp");
    }

    #[test]
    fn sdk_must_be_the_sdk() {
        assert!(sdk_dir(None).unwrap().join("Cargo.toml").is_file());
        let err = sdk_dir(Some(Path::new("/nonexistent/sdk")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/sdk") && err.contains("--sdk"),
            "{err}"
        );
        let err = sdk_dir(Some(&repo().join("wit"))).unwrap_err().to_string();
        assert!(err.contains("not the wasmbgp SDK"), "{err}");
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let base = std::env::temp_dir().join(format!("wasmbgp-plugin-new-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("full")).unwrap();
        fs::write(base.join("full/keep.txt"), "mine").unwrap();
        fs::create_dir_all(base.join("empty")).unwrap();
        let files = project_files("p", WorldArg::Policy, Lang::Python, None, "wasmbgp");

        let err = write_project(&base.join("full"), &files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(
            fs::read_to_string(base.join("full/keep.txt")).unwrap(),
            "mine"
        );

        write_project(&base.join("empty"), &files).unwrap();
        write_project(&base.join("new/nested"), &files).unwrap();
        for dir in ["empty", "new/nested"] {
            let test_sh = base.join(dir).join("test.sh");
            assert_eq!(
                fs::metadata(&test_sh).unwrap().permissions().mode() & 0o777,
                0o755
            );
            assert!(base.join(dir).join("wit/types.wit").is_file());
            assert!(base.join(dir).join("app.py").is_file());
        }
        fs::write(base.join("file"), "").unwrap();
        assert!(write_project(&base.join("file"), &files).is_err());
        fs::remove_dir_all(&base).unwrap();
    }
}
