//! A submission server on a given database, for the crash test and manual tries: serves TCP
//! (address mode) and HTTP for the test scenario, running at a fixed tick.
//!
//! `submission-server --db URL [--tick N] [--lifetime N] [--tcp ADDR] [--http ADDR]`
//! prints `tcp=ADDR http=ADDR` once both listen.

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use gongfang_core::Tick;
use gongfang_core::clock::DrillClock;
use gongfang_core::scenario::Identify;
use gongfang_store::Store;
use gongfang_submission::{Settings, SubmissionState};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    let mut db = None;
    let mut tick = 10;
    let mut lifetime = fixture::LIFETIME;
    let mut tcp = "127.0.0.1:0".to_owned();
    let mut http = "127.0.0.1:0".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--db" => db = Some(value()?),
            "--tick" => tick = value()?.parse()?,
            "--lifetime" => lifetime = value()?.parse()?,
            "--tcp" => tcp = value()?,
            "--http" => http = value()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let db = db.context("--db URL is required")?;
    let scenario = fixture::scenario(Identify::Address, lifetime, 1_000, None);
    let store = Store::connect_and_migrate(&db).await?;
    store.sync_scenario(&scenario).await?;
    let (_clock, clock_rx) = watch::channel(DrillClock::running(Tick(tick), std::time::Duration::from_secs(60)));
    let (events, _) = broadcast::channel(1024);
    let (state, _writer) =
        SubmissionState::start(&scenario, fixture::codec(), Arc::new(store), clock_rx, events, Settings::default())
            .await?;
    let tcp = TcpListener::bind(&tcp).await?;
    let http = TcpListener::bind(&http).await?;
    println!("tcp={} http={}", tcp.local_addr()?, http.local_addr()?);
    std::io::stdout().flush()?;
    let router = gongfang_submission::http::router(state.clone());
    tokio::spawn(async move { axum::serve(http, router).await });
    gongfang_submission::tcp::serve(tcp, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
