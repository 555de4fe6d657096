//! The gateway's translation log for organisers: while the drill runs with `[vpn] anonymise`,
//! every connection a team's peer makes into the game networks is written to the database
//! ([`translations_log`]), and `gongfang vpn log` prints it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use gongfang_core::TeamId;
use gongfang_core::scenario::Scenario;
use gongfang_store::{MAX_TRANSLATIONS, NewVpnTranslation, Store, TranslationFilter};
use gongfang_vpn::{AddressPlan, Translation, TranslationWatcher, WatcherConfig};

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

/// How often what the watcher saw is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The most translations one write holds; a full batch is written at once.
const BATCH: usize = 500;

/// Starts logging the drill's translations on this host, when the scenario's `[vpn]` has
/// `anonymise` on (otherwise services see the peers' own addresses and `None` is returned).
/// The task writes a batch every second (or every [`BATCH`] connections) and ends, saying why
/// in the log, when the watcher or the store fails; aborting it stops `conntrack`.
pub async fn translations_log(
    scenario: &Scenario,
    store: Store,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(vpn) = scenario.vpn.as_ref().filter(|v| v.anonymise) else { return Ok(None) };
    let plan = crate::vpn::address_plan(scenario, vpn)?;
    let teams: HashMap<String, TeamId> = scenario.teams.iter().map(|t| (t.slug.clone(), t.id)).collect();
    let networks = scenario
        .defenders()
        .map(|t| gongfang_vpn::ipnet::Ipv4Net::new(t.network.addr, t.network.prefix))
        .collect::<Result<Vec<_>, _>>()?;
    let config = WatcherConfig::new(plan.range, networks);
    let (watcher, translations) = tokio::task::spawn_blocking(move || TranslationWatcher::start(config))
        .await?
        .context("the VPN translation log cannot start")?;
    Ok(Some(tokio::spawn(write_batches(Some(watcher), translations, plan, teams, store))))
}

/// Writes what arrives on `translations` until the channel closes (the watcher stopped) or the
/// store fails; dropping the watcher at the end stops `conntrack`.
async fn write_batches(
    watcher: Option<TranslationWatcher>,
    translations: Receiver<Translation>,
    plan: AddressPlan,
    teams: HashMap<String, TeamId>,
    store: Store,
) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unattributed: u64 = 0;
    loop {
        tick.tick().await;
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut closed = false;
            while batch.len() < BATCH {
                match translations.try_recv() {
                    Ok(t) => match team_of(&plan, &teams, t.peer) {
                        Some(team) => batch.push(NewVpnTranslation {
                            at: DateTime::<Utc>::from(t.at),
                            team,
                            peer: t.peer,
                            target: *t.target.ip(),
                            port: t.target.port(),
                            seen_as: t.seen_as,
                        }),
                        None => {
                            // An address of the range no team holds (a spare block): WireGuard
                            // lets no such peer in, so this is worth a word, not a stop.
                            unattributed += 1;
                            tracing::warn!(peer = %t.peer, unattributed, "a VPN connection from no team's block");
                        }
                    },
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let full = batch.len() == BATCH;
            if let Err(error) = store.record_vpn_translations(&batch).await {
                tracing::error!(%error, lost = batch.len(), "the VPN translation log stopped: storing it failed");
                return;
            }
            if closed {
                let why = watcher.as_ref().and_then(TranslationWatcher::ended);
                let why = why.unwrap_or_else(|| "conntrack stopped".to_owned());
                let dropped = watcher.as_ref().map_or(0, TranslationWatcher::dropped);
                tracing::error!(why = %why, dropped, "the VPN translation log stopped");
                return;
            }
            if !full {
                break;
            }
        }
    }
}

fn team_of(plan: &AddressPlan, teams: &HashMap<String, TeamId>, peer: std::net::Ipv4Addr) -> Option<TeamId> {
    plan.team_of(peer).and_then(|slug| teams.get(slug)).copied()
}

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario (for its teams' slugs).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Only this team's peers (its slug).
    #[arg(long, value_name = "SLUG")]
    pub team: Option<String>,
    /// Only connections from this time on (RFC 3339, e.g. 2026-11-30T09:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<DateTime<Utc>>,
    /// How many of the newest connections to show (at most 1000).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
}

/// `gongfang vpn log`: the newest translations, as a table.
pub async fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let scenario = scenario_file::load(&args.scenario)?;
    if !(1..=MAX_TRANSLATIONS).contains(&args.limit) {
        bail!("--limit {} is out of range: use a number from 1 to {MAX_TRANSLATIONS}", args.limit);
    }
    let team = match &args.team {
        None => None,
        Some(slug) => match scenario.teams.iter().find(|t| t.slug == *slug) {
            Some(team) => Some(team.id),
            None => {
                let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
                bail!("no team `{slug}` in the scenario; its teams are: {}", known.join(", "));
            }
        },
    };
    let store = args.db.open_drill().await?;
    let filter = TranslationFilter { team, target: None, since: args.since, until: None, limit: args.limit };
    let rows = store.vpn_translations(&filter).await?;
    if rows.is_empty() {
        println!("no connections logged{}", if team.is_some() || args.since.is_some() { " that match" } else { "" });
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<24}  {:<16}  {:<15}  {:<21}  SEEN AS", "TIME (UTC)", "TEAM", "PEER", "TARGET");
    for row in rows {
        let slug = scenario.team(row.team).map_or_else(|| format!("#{}", row.team.0), |t| t.slug.clone());
        let target = format!("{}:{}", row.target, row.port);
        let at = row.at.to_rfc3339_opts(SecondsFormat::Millis, true);
        println!("{at:<24}  {slug:<16}  {:<15}  {target:<21}  {}", row.peer, row.seen_as);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::SystemTime;

    use gongfang_core::scenario::Role;
    use gongfang_test_support::TestDb;
    use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

    use super::*;

    fn scenario(anonymise: Option<bool>) -> Scenario {
        let mut builder = ScenarioBuilder::new("log")
            .team(team(1, "red").role(Role::Attacker).network("10.60.1.0/24"))
            .team(team(2, "blue").role(Role::Defender).network("10.60.2.0/24"))
            .service(service("notes"));
        if anonymise.is_some() {
            builder = builder.vpn("gw.example:51820", "10.80.0.0/16", 2);
        }
        let mut scenario = builder.build();
        if let (Some(vpn), Some(on)) = (scenario.vpn.as_mut(), anonymise) {
            vpn.anonymise = on;
        }
        scenario
    }

    fn seen(peer: Ipv4Addr, at: SystemTime) -> Translation {
        Translation {
            at,
            peer,
            target: SocketAddrV4::new(Ipv4Addr::new(10, 60, 2, 10), 8080),
            seen_as: Ipv4Addr::new(10, 60, 2, 1),
        }
    }

    #[tokio::test]
    async fn no_log_is_kept_unless_the_vpn_anonymises() {
        let db = TestDb::sqlite().await;
        for anonymise in [None, Some(false)] {
            let log = translations_log(&scenario(anonymise), db.store.clone()).await.unwrap();
            assert!(log.is_none(), "a log for {anonymise:?}");
        }
    }

    #[tokio::test]
    async fn translations_are_stored_with_the_team_whose_block_holds_the_peer() {
        let db = TestDb::sqlite().await;
        let scenario = scenario(Some(true));
        db.store.sync_scenario(&scenario).await.unwrap();
        let plan = crate::vpn::address_plan(&scenario, scenario.vpn.as_ref().unwrap()).unwrap();
        let (red, blue) = (plan.team("red").unwrap().peers[1], plan.team("blue").unwrap().peers[0]);
        let teams = scenario.teams.iter().map(|t| (t.slug.clone(), t.id)).collect();
        let (sender, receiver) = std::sync::mpsc::sync_channel(2000);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // More than one batch, and one peer of no team's block (the range's last address).
        for n in 0..(BATCH as u64 + 20) {
            let peer = if n % 2 == 0 { red } else { blue };
            sender.send(seen(peer, t0 + Duration::from_millis(n))).unwrap();
        }
        sender.send(seen(Ipv4Addr::new(10, 80, 255, 254), t0)).unwrap();
        drop(sender);
        // A closed channel is a stopped watcher: the task writes what it has, then ends.
        tokio::time::timeout(Duration::from_secs(10), write_batches(None, receiver, plan, teams, db.store.clone()))
            .await
            .expect("the writer ends when the watcher stops");
        let rows = db.store.vpn_translations(&TranslationFilter::default()).await.unwrap();
        assert_eq!(rows.len(), BATCH + 20, "every attributed connection, none of no team's");
        let newest = &rows[0];
        assert_eq!((newest.team, newest.peer), (TeamId(2), blue));
        assert_eq!(newest.at, DateTime::<Utc>::from(t0 + Duration::from_millis(BATCH as u64 + 19)));
        assert_eq!(
            (newest.target, newest.port, newest.seen_as),
            (Ipv4Addr::new(10, 60, 2, 10), 8080, Ipv4Addr::new(10, 60, 2, 1))
        );
        assert!(rows.iter().all(|r| (r.team == TeamId(1)) == (r.peer == red)), "a peer counted for the wrong team");
    }
}
