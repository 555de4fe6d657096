//! `gongfang prepare [SCENARIO]`: makes what a scenario needs before it can run, and says
//! each thing it does: checker components built from their cargo project (adding the
//! `wasm32-wasip2` target with rustup when it is missing), Debian base images a service's
//! Dockerfile starts from (debootstrap, imported through `gongfang-docker`), and the
//! services' images. `gongfang up` runs it first; running it again does only what is missing.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use gongfang_core::scenario::{AssumeEverythingExists, ImageSource, Scenario};
use gongfang_docker::{BaseImage, Engine, Orchestrator, Runtime, Settings};

use crate::scenario_file;

/// The target checkers are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The hint every failure to get the target ends with.
pub const TARGET_HINT: &str = "`rustup target add wasm32-wasip2`";

/// The Rust tools prepare runs: cargo and rustc as cargo would (`$CARGO`, `$RUSTC`), and
/// rustup when it is on the `PATH`.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub cargo: OsString,
    pub rustc: OsString,
    pub rustup: Option<PathBuf>,
}

impl Toolchain {
    /// The tools of this environment.
    pub fn from_env() -> Toolchain {
        Toolchain {
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            rustc: std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()),
            rustup: find_on_path("rustup"),
        }
    }

    /// Whether the compiler used in `dir` (rustup picks a toolchain per folder) has the
    /// standard library for [`WASM_TARGET`].
    pub fn has_wasm_target(&self, dir: &Path) -> anyhow::Result<bool> {
        let out = Command::new(&self.rustc)
            .current_dir(dir)
            .args(["--print", "sysroot"])
            .output()
            .with_context(|| format!("cannot run {}: is Rust installed?", self.rustc.to_string_lossy()))?;
        if !out.status.success() {
            bail!("`rustc --print sysroot` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok(sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir())
    }
}

/// What to do about the checkers' target, from what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStep {
    /// Installed: nothing to do.
    Installed,
    /// Missing, and rustup is there to add it.
    AddWith(PathBuf),
    /// Missing, and nothing here can add it.
    CannotAdd,
}

impl TargetStep {
    pub fn decide(installed: bool, rustup: Option<&Path>) -> TargetStep {
        match (installed, rustup) {
            (true, _) => TargetStep::Installed,
            (false, Some(rustup)) => TargetStep::AddWith(rustup.to_path_buf()),
            (false, None) => TargetStep::CannotAdd,
        }
    }
}

/// The cargo project that builds a checker at `checker`: one whose `target/wasm32-wasip2/release`
/// folder holds it. `None` for checkers made some other way.
pub fn checker_project(checker: &Path) -> Option<PathBuf> {
    let checker = normalize(checker);
    let release = checker.parent()?;
    let target = release.parent()?;
    let target_dir = target.parent()?;
    let project = target_dir.parent()?;
    let built_here = release.ends_with("release")
        && target.ends_with(WASM_TARGET)
        && target_dir.ends_with("target")
        && project.join("Cargo.toml").is_file();
    built_here.then(|| project.to_path_buf())
}

/// Builds every missing checker that a cargo project builds, adding the target first when it
/// is missing and rustup can add it. Says what it does on `out`.
pub fn build_checkers(scenario: &Scenario, tools: &Toolchain, out: &mut impl Write) -> anyhow::Result<()> {
    let mut projects: Vec<PathBuf> = Vec::new();
    for service in &scenario.services {
        let checker = normalize(&service.checker);
        if checker.is_file() {
            writeln!(out, "checker of {}: {} (present)", service.slug, checker.display())?;
            continue;
        }
        match checker_project(&checker) {
            Some(project) => {
                writeln!(out, "checker of {}: {} (missing; built below)", service.slug, checker.display())?;
                if !projects.contains(&project) {
                    projects.push(project);
                }
            }
            // Validation reports it with the scenario's line.
            None => writeln!(
                out,
                "checker of {}: {} (missing; not built by a cargo project)",
                service.slug,
                checker.display()
            )?,
        }
    }
    for project in projects {
        ensure_wasm_target(tools, &project, out)?;
        let manifest = project.join("Cargo.toml");
        writeln!(
            out,
            "building the checkers: cargo build --release --target {WASM_TARGET} --manifest-path {}",
            manifest.display()
        )?;
        out.flush()?;
        let status = Command::new(&tools.cargo)
            .current_dir(&project)
            .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
            .arg(&manifest)
            // The checkers land in the project's own target folder, where the scenario names them.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .status()
            .with_context(|| format!("building the checkers failed: cannot run {}", tools.cargo.to_string_lossy()))?;
        if !status.success() {
            bail!("building the checkers failed ({status}); is the target installed? {TARGET_HINT}");
        }
    }
    Ok(())
}

/// Makes sure the compiler used in `project` has [`WASM_TARGET`], adding it with rustup.
pub fn ensure_wasm_target(tools: &Toolchain, project: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let installed = tools.has_wasm_target(project).context("building the checkers failed")?;
    match TargetStep::decide(installed, tools.rustup.as_deref()) {
        TargetStep::Installed => Ok(()),
        TargetStep::AddWith(rustup) => {
            writeln!(out, "the {WASM_TARGET} target is missing; adding it: rustup target add {WASM_TARGET}")?;
            out.flush()?;
            let status =
                Command::new(&rustup).current_dir(project).args(["target", "add", WASM_TARGET]).status().with_context(
                    || format!("building the checkers failed: cannot run {}; {TARGET_HINT}", rustup.display()),
                )?;
            if !status.success() {
                bail!("building the checkers failed: rustup could not add the target ({status}); {TARGET_HINT}");
            }
            Ok(())
        }
        TargetStep::CannotAdd => bail!(
            "building the checkers failed: the {WASM_TARGET} target is not installed and there is no rustup \
             to add it; install it ({TARGET_HINT}) or build the checkers yourself"
        ),
    }
}

/// The base image a Debian-based Dockerfile line `FROM gongfang/NAME:SUITE` asks for, when
/// prepare knows how to make it: `gongfang/base:SUITE` (minimal), `gongfang/python:SUITE`
/// (with python3) or `gongfang/node:SUITE` (with Node.js), each with patch for defenders who
/// apply a published patch in place.
pub fn known_base_image(from: &str) -> Option<BaseImage> {
    let (name, suite) = from.split_once(':')?;
    let include = match name {
        "gongfang/base" => vec![],
        "gongfang/python" => vec!["python3".to_owned(), "patch".to_owned()],
        "gongfang/node" => vec!["nodejs".to_owned(), "patch".to_owned()],
        _ => return None,
    };
    let suite_ok = !suite.is_empty() && suite.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    suite_ok.then(|| BaseImage { tag: from.to_owned(), suite: suite.to_owned(), include })
}

/// The base images the scenario's Dockerfiles start from that prepare can make.
fn base_images(scenario: &Scenario) -> Vec<BaseImage> {
    let mut out: Vec<BaseImage> = Vec::new();
    for service in &scenario.services {
        let ImageSource::Build(dir) = &service.source else { continue };
        let Ok(dockerfile) = std::fs::read_to_string(dir.join("Dockerfile")) else { continue };
        for line in dockerfile.lines() {
            let mut words = line.split_whitespace();
            if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
                continue;
            }
            let from = words.find(|w| !w.starts_with("--")).unwrap_or_default();
            if let Some(image) = known_base_image(from).filter(|i| !out.contains(i)) {
                out.push(image);
            }
        }
    }
    out
}

/// Everything `gongfang prepare` does for the scenario at `path`, then validation; returns the
/// validated scenario. `engine` is the Docker engine the images go to.
pub async fn prepare(
    path: &Path,
    tools: &Toolchain,
    engine: &Engine,
    out: &mut impl Write,
) -> anyhow::Result<Scenario> {
    writeln!(out, "preparing {}", path.display())?;
    // Only the paths matter here; validation proper comes after and reports every problem.
    let src = std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {}", path.display()))?;
    let Ok(draft) = gongfang_core::scenario::parse(&src, path, &AssumeEverythingExists) else {
        return Ok(scenario_file::load(path)?);
    };
    build_checkers(&draft, tools, out)?;
    for image in base_images(&draft) {
        if engine.image_id(&image.tag).await?.is_some() {
            writeln!(out, "base image {}: present", image.tag)?;
            continue;
        }
        let with = if image.include.is_empty() { String::new() } else { format!(" with {}", image.include.join(", ")) };
        writeln!(
            out,
            "base image {}: building Debian {}{with} with debootstrap (a minute or more) ...",
            image.tag, image.suite
        )?;
        out.flush()?;
        let id = engine.build_base_image(&image).await?;
        writeln!(out, "base image {}: imported ({})", image.tag, short_id(&id))?;
    }
    let scenario = scenario_file::load(path)?;
    writeln!(out, "scenario {}: valid", scenario.drill.slug)?;
    out.flush()?;
    let orchestrator = Orchestrator::new(engine.clone(), Settings::default());
    let plan = orchestrator.plan(&scenario)?;
    let images = orchestrator.images(&plan).await?;
    let mut names: Vec<_> = images.iter().collect();
    names.sort();
    for (name, id) in names {
        writeln!(out, "service image {name}: ready ({})", short_id(id))?;
    }
    Ok(scenario)
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// `path` without `.` and `..` components (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_added_only_when_missing_and_rustup_is_there() {
        let rustup = Path::new("/usr/bin/rustup");
        assert_eq!(TargetStep::decide(true, Some(rustup)), TargetStep::Installed);
        assert_eq!(TargetStep::decide(true, None), TargetStep::Installed);
        assert_eq!(TargetStep::decide(false, Some(rustup)), TargetStep::AddWith(rustup.to_path_buf()));
        assert_eq!(TargetStep::decide(false, None), TargetStep::CannotAdd);
    }

    #[test]
    fn known_base_images() {
        let python = known_base_image("gongfang/python:bookworm").unwrap();
        assert_eq!(
            (python.suite.as_str(), python.include.as_slice()),
            ("bookworm", &["python3".to_owned(), "patch".to_owned()][..])
        );
        assert!(known_base_image("gongfang/base:trixie").unwrap().include.is_empty());
        assert_eq!(known_base_image("gongfang/node:bookworm").unwrap().include[0], "nodejs");
        assert_eq!(known_base_image("python:3.12"), None);
        assert_eq!(known_base_image("gongfang/base:../x"), None);
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        assert_eq!(normalize(Path::new("/a/b/../../c/./d.wasm")), PathBuf::from("/c/d.wasm"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
