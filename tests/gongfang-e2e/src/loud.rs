//! A loud service on the real Docker engine, for the hostile-load tests: a tiny static program
//! (built here with `rustc`, in a `FROM scratch` image) that writes `GF_BYTES` bytes of 1 KiB
//! stdout lines as fast as it can, then says so in one last line and idles. The drill's
//! containers are torn down by label when the guard is dropped, also when a test fails.
//!
//! Where no engine answers, [`docker_engine`] says so and gives `None` (the test skips);
//! `GONGFANG_REQUIRE_DOCKER=1` makes that an error.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use gongfang_docker::{Backend, Engine, Orchestrator, Runtime, Settings};
use serde_json::Value;

/// The program in the image. Its lines are `<12-digit number> xxx…` (1,024 bytes with the end
/// of line), so the number of the last line kept tells how much it wrote; after `GF_BYTES` it
/// writes `flood done <bytes>` and sleeps (a restarted container would flood again).
const PROGRAM: &str = r#"
use std::io::Write;

fn main() {
    let bytes: u64 = std::env::var("GF_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(64 << 10);
    let (mut seq, mut written) = (0u64, 0u64);
    while written < bytes {
        buf.clear();
        while buf.len() < 64 << 10 {
            buf.extend_from_slice(format!("{seq:012} ").as_bytes());
            buf.resize(buf.len() + 1010, b'x');
            buf.push(b'\n');
            seq += 1;
        }
        if out.write_all(&buf).is_err() { break; }
        written += buf.len() as u64;
    }
    let _ = writeln!(out, "flood done {written}");
    let _ = out.flush();
    drop(out);
    loop { std::thread::sleep(std::time::Duration::from_secs(3600)); }
}
"#;

/// Bytes of one of the program's flood lines, its end of line included.
pub const LINE_BYTES: u64 = 1024;

/// Fills `dir` with the program, built statically (musl, else static glibc), and a
/// `FROM scratch` Dockerfile: a build folder for the service's image.
pub fn program_context(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("program.rs"), PROGRAM)?;
    let out = dir.join("program");
    let build = |extra: &[&str]| {
        std::process::Command::new("rustc")
            .args(["--edition", "2021", "-O"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(dir.join("program.rs"))
            .status()
            .is_ok_and(|s| s.success())
    };
    let built = build(&["--target", "x86_64-unknown-linux-musl"]) || build(&["-C", "target-feature=+crt-static"]);
    ensure!(built, "cannot build the static flood program with rustc");
    std::fs::remove_file(dir.join("program.rs"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY program /program\nUSER 65534:65534\nENTRYPOINT [\"/program\"]\n",
    )?;
    Ok(())
}

/// The Docker engine, or `None` with a notice where none answers and none is required
/// (`GONGFANG_REQUIRE_DOCKER=1` makes its absence an error).
pub async fn docker_engine() -> anyhow::Result<Option<Engine>> {
    let required = std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let reason = match Engine::connect(Backend::Docker) {
        Ok(engine) => match tokio::time::timeout(Duration::from_secs(10), engine.docker().ping()).await {
            Ok(Ok(_)) => return Ok(Some(engine)),
            Ok(Err(e)) => format!("the Docker engine does not answer: {e}"),
            Err(_) => "the Docker engine does not answer within 10 s".to_owned(),
        },
        Err(e) => e.to_string(),
    };
    if required {
        bail!("GONGFANG_REQUIRE_DOCKER=1 but {reason}");
    }
    eprintln!("SKIPPED: no Docker engine here ({reason}); set GONGFANG_REQUIRE_DOCKER=1 to make this a failure");
    Ok(None)
}

/// Removes everything labelled with a drill (containers, networks, volumes, images built for
/// it) when dropped: at the end of a test, also when it failed or panicked.
#[derive(Debug)]
pub struct Teardown {
    drill: String,
}

impl Teardown {
    pub fn new(drill: &str) -> Teardown {
        Teardown { drill: drill.to_owned() }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let drill = self.drill.clone();
        let _ = std::thread::spawn(move || {
            let down = async {
                let engine = Engine::connect(Backend::Docker)?;
                let orch = Orchestrator::new(engine, Settings { firewall: false, ..Settings::default() });
                anyhow::Ok(orch.down(&drill).await?)
            };
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            if let Err(e) = rt.block_on(down) {
                eprintln!("cannot tear down the drill {drill}'s containers: {e:#}");
            }
        })
        .join();
    }
}

/// Where the engine keeps a container's log (`LogPath`), and its `max-size` and `max-file`.
pub async fn log_config(engine: &Engine, container: &str) -> anyhow::Result<(String, Value, Value)> {
    let raw = engine.inspect(container).await?.raw;
    let path = raw["LogPath"].as_str().context("the container has no LogPath")?.to_owned();
    let config = &raw["HostConfig"]["LogConfig"]["Config"];
    Ok((path, config["max-size"].clone(), config["max-file"].clone()))
}

/// The sizes of a container's log file and its rotated siblings (`<file>.1`, `<file>.2`, …).
pub fn log_files(log_path: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let path = Path::new(log_path);
    let dir = path.parent().context("a log path has a folder")?;
    let name = path.file_name().context("a log path has a file name")?.to_string_lossy().into_owned();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&name) {
            files.push((file, entry.metadata()?.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// How far the flood is, from the newest line of the container's active log file: the bytes
/// written, and whether it is done. `None` while nothing is kept yet.
pub fn flood_progress(log_path: &str) -> Option<(u64, bool)> {
    let text = std::fs::read(log_path).ok()?;
    // The file is being written: the last line may be cut, so take the newest whole one.
    let line = text
        .split(|b| *b == b'\n')
        .rev()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .find_map(|v| v["log"].as_str().map(str::to_owned))?;
    if let Some(done) = line.strip_prefix("flood done ") {
        return Some((done.trim().parse().ok()?, true));
    }
    let seq: u64 = line.get(..12)?.parse().ok()?;
    Some(((seq + 1) * LINE_BYTES, false))
}
