//! `gongfang checker test`: runs a checker component against a live service and prints every
//! verdict, public message, private log and timing — the challenge author's inner loop.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use gongfang_core::{
    Action, ActionCtx, ActionOutcome, DrillId, FlagCodec, FlagInfo, ServiceId, StoreIdx, Target, TeamId, Tick, Verdict,
};
use gongfang_sandbox::{ActionLimits, Checker, Sandbox, SandboxConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a checker's actions against a live service and print what they concluded.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The checker component (`.wasm`, built for wasm32-wasip2).
    component: PathBuf,
    /// The service to check, as HOST:PORT.
    #[arg(long)]
    target: String,
    /// More ports of the same service the checker may use.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Which action to run: check, put, get or exploit (`get` and `exploit` plant a flag with
    /// `put` first); every one when not given.
    #[arg(long)]
    action: Option<Action>,
    /// How many times to run the actions.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// The tick to run as (the first round; later rounds count up).
    #[arg(long, default_value_t = 1)]
    tick: u32,
    /// The team number to run as.
    #[arg(long, default_value_t = 1)]
    team: u16,
    /// Wall-clock limit per action, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Keep compiled checkers here between runs.
    #[arg(long, env = "GONGFANG_CHECKER_CACHE")]
    cache_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Test(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(test(args))
        }
    }
}

fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    target
        .to_socket_addrs()
        .with_context(|| format!("--target {target:?} is not HOST:PORT"))?
        .next()
        .with_context(|| format!("--target {target:?} resolves to no address"))
}

async fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.target)?;
    let mut ports = vec![addr.port()];
    ports.extend(args.ports.iter().copied().filter(|p| *p != addr.port()));
    let target = Target { address: addr.ip(), ports };

    let limits = ActionLimits { timeout: Duration::from_secs(args.timeout.max(1)), ..ActionLimits::default() };
    let config =
        SandboxConfig { cache_dir: args.cache_dir.clone(), max_concurrent_actions: 4, limits, ..Default::default() };
    let sandbox = Sandbox::new(config)?;
    let checker = sandbox.load(&args.component)?;
    let info = checker.info().await.context("the checker's `info` failed")?;
    println!(
        "checker {} for service {:?}: {} flag store(s), {}",
        args.component.display(),
        info.service,
        info.flag_stores,
        if info.has_exploit { "with exploit" } else { "no exploit" }
    );
    println!("target {} ports {:?}, team {}", target.address, target.ports, args.team);
    if info.flag_stores == 0 && args.action.is_some_and(|a| a != Action::Check) {
        bail!("the checker has no flag stores; only --action check makes sense");
    }

    // Flags look like the drill's; the secret is fresh per run, so they are not real flags.
    let secret: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8));
    let codec = FlagCodec::for_drill("FLAG", &secret, "checker-test", DrillId::from_bytes([0; DrillId::LEN]));
    let mut tally = Tally::default();
    for round in 0..args.rounds {
        let tick = Tick(args.tick + round);
        println!("\n== round {} (tick {tick}) ==", round + 1);
        let seed = |label: &str| codec.derive_seed(format!("{}:{}:{label}", args.team, tick.0).as_bytes());
        let ctx = |label: &str| ActionCtx { team: TeamId(args.team), tick, seed: seed(label) };

        if args.action.is_none_or(|a| a == Action::Check) {
            tally.record(&checker.check(&target, &ctx("check")).await, None);
        }
        if args.action == Some(Action::Check) {
            continue;
        }
        for store in 0..info.flag_stores {
            run_store(
                &checker,
                &target,
                &codec,
                &ctx(&format!("put:{store}")),
                StoreIdx(store),
                args.action,
                info.has_exploit,
                &mut tally,
            )
            .await;
        }
    }
    println!("\n{} action(s): {}", tally.total, tally.summary());
    Ok(if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[allow(clippy::too_many_arguments)]
async fn run_store(
    checker: &Checker,
    target: &Target,
    codec: &FlagCodec,
    ctx: &ActionCtx,
    store: StoreIdx,
    which: Option<Action>,
    has_exploit: bool,
    tally: &mut Tally,
) {
    let flag = codec.mint(FlagInfo { tick: ctx.tick, team: ctx.team, service: ServiceId(1), store });
    let put = checker.put(target, ctx, store, &flag).await;
    tally.record(&put, Some(store));
    if put.verdict != Verdict::Ok || which == Some(Action::Put) {
        return;
    }
    if which.is_none_or(|a| a == Action::Get) {
        let get_ctx = ActionCtx { seed: ctx.seed ^ 0x6e7, ..*ctx };
        let get = checker.get(target, &get_ctx, store, &flag, put.state.as_deref().unwrap_or_default()).await;
        tally.record(&get, Some(store));
    }
    let wants_exploit = which == Some(Action::Exploit) || (which.is_none() && has_exploit);
    if wants_exploit {
        let exploit_ctx = ActionCtx { seed: ctx.seed ^ 0xe8b, ..*ctx };
        let mut exploit =
            checker.exploit(target, &exploit_ctx, store, put.flag_id.as_deref().unwrap_or_default()).await;
        if exploit.verdict == Verdict::Ok && !exploit.flags.contains(&flag) {
            exploit.private_log.push(format!("the exploit did not capture the flag just planted ({flag})"));
            tally.failed += 1;
        }
        tally.record(&exploit, Some(store));
    }
}

#[derive(Debug, Default)]
struct Tally {
    total: usize,
    failed: usize,
    by_verdict: std::collections::BTreeMap<&'static str, usize>,
}

impl Tally {
    fn record(&mut self, outcome: &ActionOutcome, store: Option<StoreIdx>) {
        self.total += 1;
        if outcome.verdict != Verdict::Ok {
            self.failed += 1;
        }
        *self.by_verdict.entry(outcome.verdict.as_str()).or_default() += 1;
        print_outcome(outcome, store);
    }

    fn summary(&self) -> String {
        self.by_verdict.iter().map(|(v, n)| format!("{n} {v}")).collect::<Vec<_>>().join(", ")
    }
}

fn print_outcome(outcome: &ActionOutcome, store: Option<StoreIdx>) {
    let action = match store {
        Some(store) => format!("{} [store {store}]", outcome.action),
        None => outcome.action.to_string(),
    };
    println!("{action:<18} {:<14} {:>9.2} ms", outcome.verdict.as_str(), outcome.duration.as_secs_f64() * 1e3);
    if !outcome.public_message.is_empty() {
        println!("    public:  {}", outcome.public_message);
    }
    if let Some(flag_id) = &outcome.flag_id {
        println!("    flag id: {flag_id:?}");
    }
    if let Some(state) = &outcome.state {
        println!("    state:   {} bytes", state.len());
    }
    for flag in &outcome.flags {
        println!("    flag:    {flag}");
    }
    for line in &outcome.private_log {
        println!("    log:     {line}");
    }
}
