//! `gongfang pause` and `gongfang resume`: an organiser stops and restarts the checks of a
//! running drill. The engine reads the flag at each tick start, so a pause takes effect at the
//! next tick: paused ticks run no checks, cost no team SLA, and accept no flags.

use std::process::ExitCode;

use chrono::Utc;
use serde_json::json;

use crate::migrate::DatabaseArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long, env = "USER", default_value = "organiser")]
    pub actor: String,
    /// Why, for the audit log (e.g. "network maintenance").
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Sets the drill's paused flag to `paused` and audits it; says so when nothing changes.
pub fn run(args: Args, paused: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = args.db.open_drill().await?;
        let mut state = store.drill_state().await?;
        let word = if paused { "paused" } else { "running" };
        if state.paused == paused {
            println!("the drill is already {word}; nothing changed");
            return Ok(ExitCode::SUCCESS);
        }
        state.paused = paused;
        let now = Utc::now();
        store.set_drill_state(state, now).await?;
        let action = if paused { "drill.pause" } else { "drill.resume" };
        store.append_audit(now, &args.actor, action, &json!({ "reason": args.reason })).await?;
        println!("the drill is now {word} (from the next tick on); recorded in the audit log");
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}
