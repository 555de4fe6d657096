//! How `gongfang prepare` builds checkers, with stand-in `rustc`, `rustup` and `cargo`
//! programs (shell scripts) so every case runs offline: the target present, missing with
//! rustup there to add it (and saying so), and missing without rustup (failing with the hint,
//! also as `gongfang up` says it to a new user).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gongfang::prepare::{TARGET_HINT, Toolchain, build_checkers, checker_project};
use gongfang_core::scenario::{self, AssumeEverythingExists, Scenario};
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

/// A cargo project whose checker is not built yet, and stand-in tools that record their calls.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(target_installed: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("project")).unwrap();
        std::fs::write(root.join("project/Cargo.toml"), "[package]\nname = \"checker\"\n").unwrap();
        std::fs::create_dir_all(root.join("sysroot/lib/rustlib")).unwrap();
        if target_installed {
            std::fs::create_dir_all(root.join("sysroot/lib/rustlib/wasm32-wasip2")).unwrap();
        }
        let log = root.join("calls.log");
        let r = root.display();
        script(&root.join("bin/rustc"), &format!("echo {r}/sysroot"));
        // rustup installs the target into the sysroot, as the real one does.
        script(
            &root.join("bin/rustup"),
            &format!("echo \"rustup $*\" >> {}; mkdir -p {r}/sysroot/lib/rustlib/$3", log.display()),
        );
        script(
            &root.join("bin/cargo"),
            &format!(
                "echo \"cargo $*\" >> {}; mkdir -p {r}/project/target/wasm32-wasip2/release; \
                 touch {r}/project/target/wasm32-wasip2/release/checker.wasm",
                log.display()
            ),
        );
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn tools(&self, with_rustup: bool) -> Toolchain {
        let bin = self.root().join("bin");
        Toolchain {
            cargo: bin.join("cargo").into(),
            rustc: bin.join("rustc").into(),
            rustup: with_rustup.then(|| bin.join("rustup")),
        }
    }

    fn scenario(&self) -> Scenario {
        scenario::parse(&scenario_file(), &self.root().join("scenario.toml"), &AssumeEverythingExists).unwrap()
    }

    fn checker(&self) -> PathBuf {
        self.root().join("project/target/wasm32-wasip2/release/checker.wasm")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.root().join("calls.log")).unwrap_or_default()
    }
}

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn prepare(fx: &Fixture, with_rustup: bool) -> (anyhow::Result<()>, String) {
    let mut out = Vec::new();
    let result = build_checkers(&fx.scenario(), &fx.tools(with_rustup), &mut out);
    (result, String::from_utf8(out).unwrap())
}

#[test]
fn a_checker_of_a_cargo_project_is_found() {
    let fx = Fixture::new(true);
    let project = fx.root().join("project");
    assert_eq!(checker_project(&fx.checker()), Some(project.clone()));
    let dotted = project.join("../project/target/wasm32-wasip2/release/checker.wasm");
    assert_eq!(checker_project(&dotted), Some(project), "`..` in a scenario's path is resolved");
    assert_eq!(checker_project(&fx.root().join("elsewhere/checker.wasm")), None);
}

#[test]
fn with_the_target_installed_the_checker_is_built() {
    let fx = Fixture::new(true);
    let (result, said) = prepare(&fx, true);
    result.unwrap();
    assert!(said.contains("checker of notes:") && said.contains("(missing; built below)"), "{said}");
    assert!(said.contains("building the checkers: cargo build --release --target wasm32-wasip2"), "{said}");
    assert!(!said.contains("rustup"), "nothing to add: {said}");
    assert!(fx.checker().is_file());
    let calls = fx.calls();
    assert!(calls.contains("cargo build --release --target wasm32-wasip2 --manifest-path"), "{calls}");
    assert!(!calls.contains("rustup"), "{calls}");

    // Run again: present, nothing built.
    let (result, said) = prepare(&fx, true);
    result.unwrap();
    assert!(said.contains("(present)") && !said.contains("building"), "{said}");
    assert_eq!(fx.calls().lines().count(), 1, "cargo ran once in all");
}

#[test]
fn a_missing_target_is_added_with_rustup_saying_so() {
    let fx = Fixture::new(false);
    let (result, said) = prepare(&fx, true);
    result.unwrap();
    assert!(said.contains("the wasm32-wasip2 target is missing; adding it: rustup target add wasm32-wasip2"), "{said}");
    let calls: Vec<String> = fx.calls().lines().map(str::to_owned).collect();
    assert_eq!(calls.first().map(String::as_str), Some("rustup target add wasm32-wasip2"), "{calls:?}");
    assert!(calls.get(1).is_some_and(|c| c.starts_with("cargo build")), "then the build: {calls:?}");
    assert!(fx.checker().is_file());
}

#[test]
fn without_rustup_a_missing_target_fails_with_the_hint() {
    let fx = Fixture::new(false);
    let (result, _) = prepare(&fx, false);
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.starts_with("building the checkers failed"), "{err}");
    assert!(err.contains(TARGET_HINT) && TARGET_HINT == "`rustup target add wasm32-wasip2`", "{err}");
    assert_eq!(fx.calls(), "", "nothing was run");
    assert!(!fx.checker().exists());
}

#[test]
fn a_failing_build_names_the_hint() {
    let fx = Fixture::new(true);
    script(&fx.root().join("bin/cargo"), "echo 'error: no such target' >&2; exit 101");
    let (result, _) = prepare(&fx, true);
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.starts_with("building the checkers failed") && err.contains(TARGET_HINT), "{err}");
}

#[test]
fn up_without_the_target_or_rustup_stops_with_the_hint() {
    let fx = Fixture::new(false);
    let scenario = fx.root().join("scenario.toml");
    std::fs::write(&scenario, scenario_file()).unwrap();
    // Only the stand-in rustc on the PATH: no rustup, as on a machine with a distribution's Rust.
    let path = fx.root().join("bin-without-rustup");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::copy(fx.root().join("bin/rustc"), path.join("rustc")).unwrap();
    let db = format!("sqlite://{}?mode=rwc", fx.root().join("drill.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .current_dir(fx.root())
        .args(["up", "scenario.toml", "--database-url", &db])
        .env("PATH", &path)
        .env("RUSTC", path.join("rustc"))
        .env("CARGO", fx.root().join("bin/cargo"))
        .env("GONGFANG_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "up must stop: {stdout}");
    assert!(stdout.contains("checker of notes:") && stdout.contains("(missing; built below)"), "{stdout}");
    assert!(
        stderr.contains("building the checkers failed") && stderr.contains("`rustup target add wasm32-wasip2`"),
        "{stderr}"
    );
    assert_eq!(fx.calls(), "", "nothing was built");
}

/// The scenario of [`Fixture::scenario`], as a file: its checker is a cargo project's output.
fn scenario_file() -> String {
    let notes = service("notes").checker("project/target/wasm32-wasip2/release/checker.wasm");
    ScenarioBuilder::new("prepare-test").team(team(1, "alpha")).service(notes).toml()
}
