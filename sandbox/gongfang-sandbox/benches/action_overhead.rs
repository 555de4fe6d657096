//! Per-action overhead of the sandbox (instantiate + call + teardown of a trivial checker, no
//! service behind it) against spawning an equivalent `python3` checker script per action, as
//! Python-based A/D platforms do. Prints both medians and the ratio.
//!
//! Run with `cargo bench -p gongfang-sandbox`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gongfang_core::{ActionCtx, Target};
use gongfang_core::{TeamId, Tick, Verdict};
use gongfang_sandbox::{Sandbox, SandboxConfig};
use gongfang_test_programs::components;

const WASM_ACTIONS: usize = 5000;
const PYTHON_ACTIONS: usize = 100;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    // As `gongfang` does: errors capture no backtrace unless `RUST_LIB_BACKTRACE` says so.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_actions: 16, ..Default::default() })?;
    let checker = sandbox.load(components::TRIVIAL)?;
    let target = Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![9] };

    let wasm = runtime.block_on(async {
        let mut samples = Vec::with_capacity(WASM_ACTIONS);
        // Warm up: first instantiations fault in the pool's pages.
        for i in 0..200 {
            let ctx = ActionCtx { team: TeamId(1), tick: Tick(0), seed: i };
            assert_eq!(checker.check(&target, &ctx).await.verdict, Verdict::Ok);
        }
        for i in 0..WASM_ACTIONS as u64 {
            let ctx = ActionCtx { team: TeamId(1), tick: Tick(1), seed: i };
            let started = Instant::now();
            let outcome = checker.check(&target, &ctx).await;
            samples.push(started.elapsed());
            assert_eq!(outcome.verdict, Verdict::Ok, "{outcome:?}");
        }
        samples
    });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches").join("checker.py");
    // Spawn the interpreter itself, not a version-manager shim in front of it, so the
    // comparison is with Python at its fastest.
    let found = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output()?;
    anyhow::ensure!(found.status.success(), "python3 is needed for this benchmark");
    let python3 = String::from_utf8(found.stdout)?.trim().to_owned();
    let mut python = Vec::with_capacity(PYTHON_ACTIONS);
    for _ in 0..PYTHON_ACTIONS {
        let started = Instant::now();
        let output = Command::new(&python3).arg(&script).arg("check").stdin(Stdio::null()).output()?;
        python.push(started.elapsed());
        anyhow::ensure!(output.status.code() == Some(101), "python checker failed: {output:?}");
        anyhow::ensure!(output.stdout.starts_with(b"{\"action\""), "python checker said {output:?}");
    }

    let (wasm, python) = (median(wasm), median(python));
    println!("checker action overhead (instantiate + call + teardown, trivial checker, no service)");
    println!("  wasmtime sandbox:           median {:>10.1} µs over {WASM_ACTIONS} actions", wasm.as_secs_f64() * 1e6);
    tracing::debug!(interpreter = %python3, "python side");
    println!(
        "  python3 process per action: median {:>10.1} µs over {PYTHON_ACTIONS} actions",
        python.as_secs_f64() * 1e6
    );
    println!("  ratio: the sandbox is {:.0}x faster", python.as_secs_f64() / wasm.as_secs_f64());
    Ok(())
}
