//! The drill's past, for spectators and the debrief: the board as it stood after any scored
//! tick (`/api/scoreboard?tick=N`), every team's total over the drill (`/api/history`) and one
//! team's verdict per service and tick (`/api/history/TEAM`).
//!
//! What a closed tick shows does not change (a rescore aside), so each answer is built from
//! what was built before plus the ticks closed since, and kept serialised until the next
//! change. While organisers have the public board frozen, spectators' answers stop at the
//! freeze's tick, as the board does; the caller says which view a request gets ([`View`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use gongfang_core::plan::tick_verdict;
use gongfang_core::scenario::{PatchScoring, Role, Scenario};
use gongfang_core::scoring::{DefendedTicks, ReportTally, ScoredTeam, TeamScore, TeamTick, TickScores, standings};
use gongfang_core::{ServiceId, TeamId, Tick, Verdict};
use gongfang_store::{BoardFreeze, Store};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::board::{self, Board, Cut, FirstBloodView, Past, Scans};
use crate::error::WebError;

/// Most points of each team's series in `/api/history`: a longer drill is sampled evenly,
/// always keeping its first tick and its last two (the board's change since the last tick).
pub const MAX_POINTS: usize = 300;

/// Past boards kept, gzipped only (a board of 500 teams is about 18 kB so, 420 kB plain), the
/// oldest built first out when full: enough for every tick of a 60-hour drill at 120 s, so a
/// client stepping through the whole drill builds each board once.
const PAST_BOARDS_KEPT: usize = 2_048;

/// An answer serialised once, plain and gzipped: the JSON of a long drill is large, numbers
/// compress well, and every spectator's browser takes gzip.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    /// Empty when only the gzipped bytes are kept ([`Encoded::gzip_only`]).
    plain: Bytes,
    pub gzip: Bytes,
}

impl Encoded {
    fn of(value: &impl Serialize) -> Result<Encoded, WebError> {
        let plain = serde_json::to_vec(value)?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 4), flate2::Compression::fast());
        gzip.write_all(&plain)?;
        Ok(Encoded { plain: Bytes::from(plain), gzip: Bytes::from(gzip.finish()?) })
    }

    /// The same answer keeping only its gzipped bytes, for caches of many answers.
    fn gzip_only(self) -> Encoded {
        Encoded { plain: Bytes::new(), gzip: self.gzip }
    }

    /// The plain JSON, inflated again when only the gzipped bytes were kept.
    pub fn plain(&self) -> Result<Bytes, WebError> {
        if !self.plain.is_empty() {
            return Ok(self.plain.clone());
        }
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(self.gzip.as_ref()), &mut plain)?;
        Ok(Bytes::from(plain))
    }
}

/// What one request may see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct View {
    /// The latest scored tick it may see (the ranking's tick of its board).
    pub scored: Option<Tick>,
    /// The latest closed tick it may see (the status grid's tick of its board).
    pub closed: Option<Tick>,
    /// Set for a spectator while the public board is frozen.
    pub freeze: Option<BoardFreeze>,
}

impl View {
    /// The view of one who gets `board` as the board now.
    pub fn of(board: &Board) -> View {
        let freeze = board.freeze.as_ref().filter(|f| !f.live).map(|f| BoardFreeze { through: f.through, at: f.at });
        View { scored: board.tick, closed: board.status_tick, freeze }
    }
}

/// The caches behind the three answers; one per scoreboard.
#[derive(Default)]
pub(crate) struct Caches {
    series: Mutex<Series>,
    past: Mutex<VecDeque<(PastKey, Encoded)>>,
    teams: Mutex<HashMap<TeamId, TeamStatus>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

/// What a change counter says: a past answer built under another value may be out of date.
/// Every board-changing event that is not a new tick (rulings, adjustments, rescores, a
/// freeze, missed events) moves it.
pub(crate) type Changes = u64;

#[derive(Debug, Clone, PartialEq)]
struct PastKey {
    tick: Tick,
    made_by: Option<DateTime<Utc>>,
    changes: Changes,
}

/// `/api/scoreboard?tick=N`'s body: the board after tick `replay`, without a clock.
#[derive(Serialize)]
struct PastBoard<'a> {
    #[serde(flatten)]
    board: &'a Board,
    replay: Tick,
}

impl Caches {
    /// The board as it stood after tick `tick`, serialised, for a request with `view`.
    /// `first_bloods` are the live board's.
    pub async fn past_board(
        &self,
        store: &Store,
        scenario: &Scenario,
        tick: Tick,
        view: View,
        first_bloods: &[FirstBloodView],
        changes: Changes,
    ) -> Result<Encoded, WebError> {
        match view.scored {
            Some(scored) if tick <= scored => {}
            scored => return Err(WebError::NoSuchTick(no_such_tick(tick, scored, view.freeze))),
        }
        let key = PastKey { tick, made_by: view.freeze.map(|f| f.at), changes };
        let mut kept = self.past.lock().await;
        if let Some((_, body)) = kept.iter().find(|(k, _)| *k == key) {
            return Ok(body.clone());
        }
        let past = Past { through: tick, freeze: view.freeze, first_bloods: first_bloods.to_vec() };
        let board = board::load(store, scenario, None, &mut Scans::default(), Cut::Past(past)).await?;
        let body = Encoded::of(&PastBoard { board: &board, replay: tick })?.gzip_only();
        kept.retain(|(k, _)| k.changes == changes);
        if kept.len() >= PAST_BOARDS_KEPT {
            kept.pop_front();
        }
        kept.push_back((key, body.clone()));
        Ok(body)
    }

    /// Every team's total over the drill up to `view.scored`, serialised.
    pub async fn series(
        &self,
        store: &Store,
        scenario: &Scenario,
        view: View,
        changes: Changes,
        rescores: u64,
        max_age: Duration,
    ) -> Result<Encoded, WebError> {
        let mut series = self.series.lock().await;
        let key = SeriesKey { scored: view.scored, made_by: view.freeze.map(|f| f.at), changes };
        if let Some(body) = series.bodies.iter().find(|b| b.key == key && b.at.elapsed() < max_age) {
            return Ok(body.encoded.clone());
        }
        if let Some(scored) = view.scored {
            series.update(store, scenario, scored, rescores).await?;
        }
        let adjustments = store.score_adjustments().await?;
        let made_by = key.made_by;
        let counted: Vec<_> = adjustments.iter().filter(|a| made_by.is_none_or(|by| a.made_at <= by)).collect();
        let shown = series.ticks.iter().take_while(|&&t| view.scored.is_some_and(|s| t <= s)).count();
        let picks = sample(shown, MAX_POINTS);
        let teams = scenario
            .teams
            .iter()
            .enumerate()
            .map(|(i, team)| TeamSeries {
                id: team.id,
                slug: &team.slug,
                name: &team.name.en,
                name_zh: &team.name.zh,
                role: team.role,
                nop: team.nop,
                totals: picks
                    .iter()
                    .map(|&p| {
                        let tick = series.ticks[p];
                        let by_hand: f64 =
                            counted.iter().filter(|a| a.team == team.id && a.tick <= tick).map(|a| a.points).sum();
                        hundredths(series.totals[p][i] + by_hand)
                    })
                    .collect(),
            })
            .collect();
        let body = HistoryBody {
            through: view.scored,
            sampled: picks.len() < shown,
            ticks: picks.iter().map(|&p| series.ticks[p]).collect(),
            teams,
        };
        let encoded = Encoded::of(&body)?;
        series.bodies.retain(|b| b.key.changes == changes && b.key != key);
        series.bodies.truncate(1);
        series.bodies.push(SeriesBody { key, at: Instant::now(), encoded: encoded.clone() });
        Ok(encoded)
    }

    /// One team's verdict per service for every closed tick up to `view.closed`, serialised.
    pub async fn team(&self, store: &Store, scenario: &Scenario, slug: &str, view: View) -> Result<Encoded, WebError> {
        let team = scenario.teams.iter().find(|t| t.slug == slug && t.role.defends()).ok_or_else(|| {
            WebError::NoSuchTeam(format!(
                "no team `{slug}` defends services in this drill; /api/scoreboard lists the teams and their slugs"
            ))
        })?;
        let mut teams = self.teams.lock().await;
        let status = teams.entry(team.id).or_insert_with(|| TeamStatus::new(scenario.services.len()));
        if let Some((_, body)) = status.bodies.iter().find(|(closed, _)| *closed == view.closed) {
            return Ok(body.clone());
        }
        if let Some(closed) = view.closed {
            status.update(store, scenario, team.id, closed).await?;
        }
        let shown = view.closed.map_or(0, |t| t.0 as usize + 1);
        let body = TeamBody {
            team: TeamName { id: team.id, slug: &team.slug, name: &team.name.en, name_zh: &team.name.zh },
            through: view.closed,
            legend: legend(),
            services: scenario
                .services
                .iter()
                .zip(&status.verdicts)
                .map(|(service, letters)| ServiceSeries {
                    id: service.id,
                    slug: &service.slug,
                    name: &service.name.en,
                    name_zh: &service.name.zh,
                    verdicts: letters[..shown.min(letters.len())].to_owned(),
                })
                .collect(),
        };
        let bytes = Encoded::of(&body)?;
        // Two views at most are asked for at once: the live one and the frozen public one.
        if status.bodies.len() >= 2 {
            status.bodies.remove(0);
        }
        status.bodies.push((view.closed, bytes.clone()));
        Ok(bytes)
    }
}

/// Why `?tick=N` has no board to show.
fn no_such_tick(tick: Tick, scored: Option<Tick>, freeze: Option<BoardFreeze>) -> String {
    match (scored, freeze) {
        (Some(s), Some(_)) => format!(
            "the public board is frozen after tick {}: tick {} is shown after the drill; ask for a tick from 0 to {}",
            s.0, tick.0, s.0
        ),
        (Some(s), None) => format!(
            "tick {} has not been scored yet; the latest scored tick is {}: ask for a tick from 0 to {}",
            tick.0, s.0, s.0
        ),
        (None, _) => format!("tick {} has not been scored yet: no tick has been scored so far", tick.0),
    }
}

/// The indices of `n` points to show, at most `max` (at least 3): every one when they fit,
/// else evenly over all but the last two, then the last two.
pub(crate) fn sample(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let head = max - 2;
    let mut picks: Vec<usize> = (0..head).map(|i| i * (n - 2) / head).collect();
    picks.extend([n - 2, n - 1]);
    picks
}

/// Totals are shown to the hundredth: enough for a graph, and half the bytes.
fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct SeriesKey {
    scored: Option<Tick>,
    made_by: Option<DateTime<Utc>>,
    changes: Changes,
}

struct SeriesBody {
    key: SeriesKey,
    at: Instant,
    encoded: Encoded,
}

/// Every team's total (adjustments by hand aside, which are added when serving) after each
/// scored tick, built tick by tick as ticks are scored.
#[derive(Default)]
struct Series {
    /// The drill's rescores counted when it was built from tick 0.
    rescores: u64,
    /// Every scored tick, in order.
    ticks: Vec<Tick>,
    /// Per entry of `ticks`, each team's total in the scenario's team order.
    totals: Vec<Vec<f64>>,
    tally: ReportTally,
    /// How many rulings (in the order of their ticks) `tally` holds.
    awarded: usize,
    defended: DefendedTicks,
    /// At most two answers: the live view's and the frozen public one's.
    bodies: Vec<SeriesBody>,
}

impl Series {
    /// Adds the ticks scored up to `through`; starts again from tick 0 after a rescore, or
    /// when a ruling counts in a tick already added.
    async fn update(
        &mut self,
        store: &Store,
        scenario: &Scenario,
        through: Tick,
        rescores: u64,
    ) -> Result<(), WebError> {
        let mut awards = if scenario.reports.enabled { store.report_awards().await? } else { Vec::new() };
        // Stable: a report's first ruling stays before its appeal.
        awards.sort_by_key(|a| a.tick);
        let counted = self.ticks.last().map_or(0, |&last| awards.iter().filter(|a| a.tick <= last).count());
        if self.rescores != rescores || counted != self.awarded {
            *self = Series { rescores, ..Series::default() };
        }
        if self.ticks.is_empty() {
            let teams: Vec<ScoredTeam> = scenario.teams.iter().map(ScoredTeam::from).collect();
            self.tally = ReportTally::for_drill(&scenario.reports, &teams);
        }
        let from = self.ticks.last().map_or(0, |t| t.0 + 1);
        if from > through.0 {
            return Ok(());
        }
        let scored: Vec<Tick> = store
            .list_ticks()
            .await?
            .into_iter()
            .filter(|t| t.is_scored() && t.tick.0 >= from && t.tick <= through)
            .map(|t| t.tick)
            .collect();
        for tick in scored {
            let rows: HashMap<TeamId, TeamScore> =
                store.scores_for_tick(tick).await?.into_iter().map(|r| (r.team, r.score)).collect();
            let due = awards[self.awarded..].iter().take_while(|a| a.tick <= tick).count();
            let batch = &awards[self.awarded..self.awarded + due];
            self.tally.apply_all(batch).map_err(|e| WebError::Inconsistent(e.to_string()))?;
            self.awarded += due;
            if scenario.patches.scoring == PatchScoring::DefendedTicks {
                for (_, team, _) in store.defended_cells(tick, tick).await? {
                    *self.defended.entry(team).or_default() += 1;
                }
            }
            let flags = TickScores {
                tick,
                teams: scenario
                    .teams
                    .iter()
                    .map(|t| TeamTick {
                        team: t.id,
                        score: rows.get(&t.id).copied().unwrap_or_default(),
                        services: Vec::new(),
                    })
                    .collect(),
            };
            let standing = standings(&scenario.reports, &scenario.patches, &flags, &self.tally, &self.defended);
            self.totals.push(scenario.teams.iter().map(|t| standing.team(t.id).map_or(0.0, |s| s.total)).collect());
            self.ticks.push(tick);
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct HistoryBody<'a> {
    /// The latest scored tick shown.
    through: Option<Tick>,
    /// Whether `ticks` is a sample of the scored ticks rather than all of them.
    sampled: bool,
    ticks: Vec<Tick>,
    teams: Vec<TeamSeries<'a>>,
}

#[derive(Serialize)]
struct TeamSeries<'a> {
    id: TeamId,
    slug: &'a str,
    name: &'a str,
    name_zh: &'a str,
    role: Role,
    nop: bool,
    /// The team's total after each of `ticks`, as the board ranked it then.
    totals: Vec<f64>,
}

/// What each letter of `/api/history/TEAM` stands for.
fn legend() -> BTreeMap<String, &'static str> {
    let mut legend: BTreeMap<String, &'static str> =
        Verdict::ALL.iter().map(|v| (v.letter().to_string(), v.as_str())).collect();
    legend.insert(Verdict::NOT_CHECKED.to_string(), "not checked");
    legend
}

/// One team's verdicts, a letter per service and closed tick, from tick 0.
struct TeamStatus {
    /// Every closed tick up to this one is in `verdicts`.
    through: Option<Tick>,
    /// Per service, in the scenario's order.
    verdicts: Vec<String>,
    /// Serialised answers by the latest closed tick they show.
    bodies: Vec<(Option<Tick>, Encoded)>,
}

impl TeamStatus {
    fn new(services: usize) -> TeamStatus {
        TeamStatus { through: None, verdicts: vec![String::new(); services], bodies: Vec::new() }
    }

    /// Adds the closed ticks up to `closed`, from the team's stored results since the last.
    async fn update(&mut self, store: &Store, scenario: &Scenario, team: TeamId, closed: Tick) -> Result<(), WebError> {
        let from = self.through.map_or(0, |t| t.0 + 1);
        if from > closed.0 {
            return Ok(());
        }
        let results = store.team_results(team, Tick(from)).await?;
        let mut cells: BTreeMap<(Tick, ServiceId), Vec<(Verdict, &str)>> = BTreeMap::new();
        let mut checked: HashSet<Tick> = HashSet::new();
        for r in results.iter().filter(|r| r.tick <= closed) {
            cells.entry((r.tick, r.service)).or_default().push((r.verdict, r.message.as_str()));
            checked.insert(r.tick);
        }
        for t in from..=closed.0 {
            let tick = Tick(t);
            for (service, letters) in scenario.services.iter().zip(&mut self.verdicts) {
                letters.push(if checked.contains(&tick) {
                    tick_verdict(cells.remove(&(tick, service.id)).unwrap_or_default()).0.letter()
                } else {
                    Verdict::NOT_CHECKED
                });
            }
        }
        self.through = Some(closed);
        Ok(())
    }
}

#[derive(Serialize)]
struct TeamBody<'a> {
    team: TeamName<'a>,
    /// The latest closed tick shown.
    through: Option<Tick>,
    legend: BTreeMap<String, &'static str>,
    services: Vec<ServiceSeries<'a>>,
}

#[derive(Serialize)]
struct TeamName<'a> {
    id: TeamId,
    slug: &'a str,
    name: &'a str,
    name_zh: &'a str,
}

#[derive(Serialize)]
struct ServiceSeries<'a> {
    id: ServiceId,
    slug: &'a str,
    name: &'a str,
    name_zh: &'a str,
    /// A letter per tick from tick 0 (see `legend`).
    verdicts: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_drill_is_shown_whole() {
        assert_eq!(sample(0, 300), Vec::<usize>::new());
        assert_eq!(sample(5, 300), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample(300, 300).len(), 300);
    }

    #[test]
    fn a_long_drill_is_sampled_evenly_keeping_its_ends() {
        for n in [301, 1800, 100_000] {
            let picks = sample(n, 300);
            assert_eq!(picks.len(), 300, "{n} ticks");
            assert_eq!(picks[0], 0);
            assert_eq!(&picks[298..], &[n - 2, n - 1], "the last two ticks, for the change since the last");
            assert!(picks.windows(2).all(|w| w[0] < w[1]), "{n} ticks: strictly increasing");
            let gaps: Vec<usize> = picks[..298].windows(2).map(|w| w[1] - w[0]).collect();
            let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} ticks: even gaps, {lo} to {hi}");
        }
    }

    #[test]
    fn the_legend_names_every_letter() {
        let legend = legend();
        for &v in Verdict::ALL {
            assert_eq!(legend[&v.letter().to_string()], v.as_str());
        }
        assert_eq!(legend.len(), Verdict::ALL.len() + 1, "and a tick without checks");
    }
}
