//! What every request shares: the scenario, the store, the event feed, the clock, and the
//! caches that turn a stampede of spectators and exploit scripts into one database load per
//! change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use gongfang_core::AccountRole;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::wire::{SESSION_COOKIE, cookie};
use gongfang_core::{ServiceId, TeamConnection, TeamId, Tick};
use gongfang_store::{Account, SessionHolder, Store};
use tokio::sync::{Mutex, Semaphore, broadcast, oneshot, watch};

use crate::board::{self, Board, Cut, Scans};
use crate::error::WebError;
use gongfang_core::clock::DrillClock;

/// Where one team's copy of a service can be reached, as the binary knows it from the
/// orchestrator's network plan. Shown to attackers in `/api/attack-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEndpoint {
    pub team: TeamId,
    pub service: ServiceId,
    /// An IP address or host name, without port.
    pub host: String,
    /// The service's ports on that host.
    pub ports: Vec<u16>,
}

/// Tunables of the web server; [`WebSettings::default`] suits a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSettings {
    /// A websocket client whose socket does not take a message within this time is dropped.
    pub send_timeout: Duration,
    /// Most websocket connections at once; more are answered `503 too_many_connections`.
    /// Websockets are HTTP connections too: keep this well under `max_http_connections`, so
    /// the page and the API stay reachable when the live feed is full.
    pub max_connections: usize,
    /// Longest a cached scoreboard is served without re-reading the store, for changes that
    /// come with no event (another process editing the database).
    pub max_age: Duration,
    /// Most HTTP connections open at once (websockets included). More are answered a bare
    /// `503` and closed. `gongfang` derives it from the process's open-file limit.
    pub max_http_connections: usize,
    /// Most HTTP connections open at once from one source address (an IPv6 client counts by
    /// its /64); more are answered a bare `503` and closed.
    pub max_connections_per_address: usize,
    /// A request's head (request line and headers) must arrive within this time, counted from
    /// when the server starts waiting for it; else the connection is closed (slowloris).
    pub header_timeout: Duration,
    /// A request's body must arrive within this time of its head; else the request fails.
    pub body_timeout: Duration,
    /// A connection with no request in progress that moves no byte for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            send_timeout: Duration::from_secs(10),
            max_connections: 12_288,
            max_age: Duration::from_secs(5),
            max_http_connections: 16_384,
            max_connections_per_address: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// The scoreboard web's shared state. Cheap to clone; build it inside a Tokio runtime.
#[derive(Clone)]
pub struct WebState {
    pub(crate) inner: Arc<Inner>,
    /// The teams' WireGuard connections as the binary last polled them; `None` when the drill
    /// has no VPN.
    connections: Option<watch::Receiver<Vec<TeamConnection>>>,
    /// The certificate the port is served with over HTTPS; plain HTTP without one.
    tls: Option<crate::Tls>,
    /// What other parts of the drill count for `/metrics` (the flag submission's answers and
    /// commits), appended to the board's own.
    more_metrics: Option<MoreMetrics>,
}

/// Writes more metrics, in Prometheus' text format with their help and type lines.
pub type MoreMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("drill", &self.inner.scenario.drill.slug)
            .field("settings", &self.inner.settings)
            .field("vpn", &self.connections.is_some())
            .field("https", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub scenario: Arc<Scenario>,
    pub store: Store,
    pub events: broadcast::Sender<GameEvent>,
    pub clock: watch::Receiver<DrillClock>,
    pub endpoints: Vec<ServiceEndpoint>,
    pub settings: WebSettings,
    pub connections: Arc<Semaphore>,
    /// Set to `true` when the server shuts down; live connections then say goodbye.
    pub closing: watch::Sender<bool>,
    /// The database's last answer to `/readyz`.
    pub readiness: crate::health::Readiness,
    fresh: Arc<Freshness>,
    /// The live board: what organisers and judges see, and everyone while the board is not frozen.
    live: BoardCache,
    /// The board spectators see: the live one, or while organisers have it frozen, the board as
    /// it stood after the freeze's tick.
    public: BoardCache,
    /// `/api/attack-info` as sent, built from the board and the flag ids once per change.
    attack: RwLock<Option<CachedAttack>>,
    /// Held while building the attack info, like `loading`.
    attack_loading: Mutex<()>,
    /// How many times the attack info was built from the store.
    attack_builds: AtomicU64,
    /// Counted from the events and the store for `GET /metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// Past boards, the score series and teams' status series.
    history: crate::history::Caches,
    /// Dropped with the state, which stops the listener tasks.
    _stop: oneshot::Sender<()>,
    _stop_metrics: oneshot::Sender<()>,
}

/// Who a board is for.
#[derive(Debug, Clone, Copy)]
enum Audience {
    /// Organisers and judges, and everyone while the board is not frozen.
    Live,
    /// Spectators and teams.
    Public,
}

#[derive(Default)]
struct BoardCache {
    cached: RwLock<Option<Cached>>,
    /// Held while loading, so concurrent requests wait for one load instead of each loading.
    loading: Mutex<Scans>,
}

struct Cached {
    stamp: Stamp,
    at: Instant,
    board: Arc<Board>,
}

struct CachedAttack {
    stamp: Stamp,
    /// The clock's tick it was built for: a new tick moves the window of listed flag ids.
    tick: Option<Tick>,
    at: Instant,
    body: Bytes,
}

impl WebState {
    /// The state of a scoreboard for `scenario`, reading `store`, relaying `events` and
    /// showing `clock`. `endpoints` lists every defending team's service addresses.
    ///
    /// Spawns a small task that follows `events` to know when the store has changed; it ends
    /// when the state is dropped.
    pub fn new(
        scenario: Arc<Scenario>,
        store: Store,
        events: broadcast::Sender<GameEvent>,
        clock: watch::Receiver<DrillClock>,
        endpoints: Vec<ServiceEndpoint>,
        settings: WebSettings,
    ) -> WebState {
        let fresh = Arc::new(Freshness::default());
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(follow(events.subscribe(), fresh.clone(), stopped));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (stop_metrics, metrics_stopped) = oneshot::channel();
        let counted = (store.clone(), scenario.clone(), metrics.clone());
        tokio::spawn(crate::metrics::follow(events.subscribe(), counted.0, counted.1, counted.2, metrics_stopped));
        WebState {
            inner: Arc::new(Inner {
                scenario,
                store,
                events,
                clock,
                endpoints,
                connections: Arc::new(Semaphore::new(settings.max_connections)),
                settings,
                closing: watch::Sender::new(false),
                readiness: Default::default(),
                fresh,
                live: BoardCache::default(),
                public: BoardCache::default(),
                attack: RwLock::new(None),
                attack_loading: Mutex::new(()),
                attack_builds: AtomicU64::new(0),
                metrics,
                history: Default::default(),
                _stop: stop,
                _stop_metrics: stop_metrics,
            }),
            connections: None,
            tls: None,
            more_metrics: None,
        }
    }

    /// The same scoreboard for a drill with a VPN: `GET /api/connections` answers from
    /// `connections` (one entry per team that has configs issued, as the binary last polled
    /// the gateway), and the page lists the teams' connections before the first tick.
    /// Without it, `/api/connections` answers `404 no_vpn` and the page shows no such list.
    pub fn with_connections(self, connections: watch::Receiver<Vec<TeamConnection>>) -> WebState {
        WebState { connections: Some(connections), ..self }
    }

    /// Serves the scoreboard's port over HTTPS with `tls` (every route on it, the websocket
    /// included); without it, plain HTTP.
    pub fn with_tls(self, tls: crate::Tls) -> WebState {
        WebState { tls: Some(tls), ..self }
    }

    /// Appends what `more` writes to `/metrics` (another part of the drill's own counters).
    pub fn with_more_metrics(self, more: MoreMetrics) -> WebState {
        WebState { more_metrics: Some(more), ..self }
    }

    pub(crate) fn more_metrics(&self) -> Option<&MoreMetrics> {
        self.more_metrics.as_ref()
    }

    pub(crate) fn tls(&self) -> Option<crate::Tls> {
        self.tls.clone()
    }

    /// The teams' connections, if the drill has a VPN.
    pub(crate) fn connections(&self) -> Option<&watch::Receiver<Vec<TeamConnection>>> {
        self.connections.as_ref()
    }

    /// The clock as the engine last published it.
    pub(crate) fn clock(&self) -> DrillClock {
        *self.inner.clock.borrow()
    }

    /// Notes an event the store's change came with, so the next read reloads.
    pub(crate) fn note(&self, event: &GameEvent) {
        self.inner.fresh.note(event);
    }

    /// The board spectators see, from the cache when no change has been noted since it was
    /// loaded: the live board, or while the board is frozen, the board as it stood then.
    pub(crate) async fn board(&self) -> Result<Arc<Board>, WebError> {
        self.cached(Audience::Public).await
    }

    /// The live board, which organisers and judges keep while the public one is frozen; cached
    /// like [`WebState::board`].
    pub(crate) async fn live_board(&self) -> Result<Arc<Board>, WebError> {
        self.cached(Audience::Live).await
    }

    async fn cached(&self, audience: Audience) -> Result<Arc<Board>, WebError> {
        let inner = &self.inner;
        let cache = match audience {
            Audience::Live => &inner.live,
            Audience::Public => &inner.public,
        };
        if let Some(board) = self.cached_if_fresh(cache) {
            return Ok(board);
        }
        let mut scan = cache.loading.lock().await;
        // Whoever held the lock before may just have loaded it.
        if let Some(board) = self.cached_if_fresh(cache) {
            return Ok(board);
        }
        // Taken before reading: a change noted during the load makes the result stale at once.
        let stamp = inner.fresh.stamp();
        let freeze = inner.store.board_freeze().await?;
        let cut = match (audience, freeze) {
            (Audience::Live, freeze) => Some(Cut::Live(freeze)),
            (Audience::Public, Some(freeze)) => Some(Cut::Frozen(freeze)),
            // Not frozen: spectators share the live board and its cache.
            (Audience::Public, None) => None,
        };
        let board = match cut {
            Some(cut) => {
                let current = self.clock().tick;
                Arc::new(board::load(&inner.store, &inner.scenario, current, &mut scan, cut).await?)
            }
            None => Box::pin(self.cached(Audience::Live)).await?,
        };
        let mut cached = cache.cached.write().unwrap_or_else(PoisonError::into_inner);
        *cached = Some(Cached { stamp, at: Instant::now(), board: board.clone() });
        Ok(board)
    }

    /// Whether the request comes from an organiser, a judge or an observer (a console
    /// session's cookie or an account's API token), who see the live board while the public
    /// one is frozen. Anything else, a team's session included, is a spectator.
    pub(crate) async fn sees_live(&self, headers: &HeaderMap) -> bool {
        match self.account(headers).await {
            Ok(account) => account
                .is_some_and(|a| matches!(a.role, AccountRole::Organiser | AccountRole::Judge | AccountRole::Observer)),
            Err(error) => {
                tracing::warn!(%error, "could not check who asks for the live board; serving the public one");
                false
            }
        }
    }

    /// The account a request comes from, by an account's API token (`Authorization: Bearer`)
    /// or a console session's cookie; `None` for anyone else, a team's session included.
    pub(crate) async fn account(&self, headers: &HeaderMap) -> Result<Option<Account>, gongfang_store::StoreError> {
        let store = &self.inner.store;
        if let Some(token) = bearer(headers) {
            store.api_token_account(token).await
        } else if let Some(token) = session_cookie(headers) {
            Ok(match store.session(token, chrono::Utc::now()).await? {
                Some(SessionHolder::Account(account)) => Some(account),
                _ => None,
            })
        } else {
            Ok(None)
        }
    }

    /// The caches of the drill's past (`?tick=N`, `/api/history`).
    pub(crate) fn history(&self) -> &crate::history::Caches {
        &self.inner.history
    }

    /// Moves with every change to the board that is not a new tick: rulings, adjustments,
    /// rescores, a freeze, events missed.
    pub(crate) fn changes(&self) -> crate::history::Changes {
        self.inner.fresh.resync.load(Ordering::Acquire)
    }

    /// Moves with every rescore (and events missed, which may have hidden one).
    pub(crate) fn rescores(&self) -> u64 {
        self.inner.fresh.rescores.load(Ordering::Acquire)
    }

    /// Longest a cached answer is served without re-reading the store.
    pub(crate) fn max_age(&self) -> Duration {
        self.inner.settings.max_age
    }

    /// The drill's numbers for operators (`GET /metrics`).
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Live board connections open now.
    pub(crate) fn websocket_clients(&self) -> usize {
        self.inner.settings.max_connections.saturating_sub(self.inner.connections.available_permits())
    }

    /// The teams' connections now, if the drill has a VPN.
    pub(crate) fn connections_now(&self) -> Option<Vec<TeamConnection>> {
        self.connections.as_ref().map(|c| c.borrow().clone())
    }

    /// The attack info document, serialised, from the cache when neither an event nor the
    /// clock's tick has changed since it was built, and it is younger than `max_age` (flag ids
    /// are planted during a tick without an event of their own).
    pub(crate) async fn attack_info(&self) -> Result<Bytes, WebError> {
        let inner = &self.inner;
        if let Some(body) = self.attack_if_fresh() {
            return Ok(body);
        }
        let _building = inner.attack_loading.lock().await;
        if let Some(body) = self.attack_if_fresh() {
            return Ok(body);
        }
        // Taken before reading, as for the board.
        let stamp = inner.fresh.stamp();
        let tick = self.clock().tick;
        let body = crate::api::build_attack_info(self, tick).await?;
        inner.attack_builds.fetch_add(1, Ordering::AcqRel);
        let mut cached = inner.attack.write().unwrap_or_else(PoisonError::into_inner);
        *cached = Some(CachedAttack { stamp, tick, at: Instant::now(), body: body.clone() });
        Ok(body)
    }

    /// How many times the attack info has been built from the store since the state was made;
    /// every other request was answered from the cache.
    #[doc(hidden)]
    pub fn attack_info_builds(&self) -> u64 {
        self.inner.attack_builds.load(Ordering::Acquire)
    }

    fn attack_if_fresh(&self) -> Option<Bytes> {
        let inner = &self.inner;
        let cached = inner.attack.read().unwrap_or_else(PoisonError::into_inner);
        let c = cached.as_ref()?;
        let fresh =
            c.stamp == inner.fresh.stamp() && c.tick == self.clock().tick && c.at.elapsed() < inner.settings.max_age;
        fresh.then(|| c.body.clone())
    }

    fn cached_if_fresh(&self, cache: &BoardCache) -> Option<Arc<Board>> {
        let inner = &self.inner;
        let cached = cache.cached.read().unwrap_or_else(PoisonError::into_inner);
        let c = cached.as_ref()?;
        (c.stamp == inner.fresh.stamp() && c.at.elapsed() < inner.settings.max_age).then(|| c.board.clone())
    }
}

/// The token of `Authorization: Bearer TOKEN`, if the request carries one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
}

/// The browser session's token from the `Cookie` header, if there is one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie(v, SESSION_COOKIE))
        .filter(|t| !t.is_empty())
}

/// What the store has seen happen, as far as the events tell. Every update is idempotent and
/// monotone (a maximum, a set union), so the listener task and each websocket connection can
/// all note the same event without causing more than one reload.
#[derive(Debug, Default)]
struct Freshness {
    /// `4 × tick + step` of the latest tick event: 1 opened, 2 closed, 3 scored.
    tick_step: AtomicU64,
    /// Services with a first blood (a bit per service id).
    first_bloods: [AtomicU64; 4],
    /// Bumped when events may have been missed, and by every change not tied to a tick.
    resync: AtomicU64,
    /// Bumped by every rescore, and when events may have been missed.
    rescores: AtomicU64,
}

type Stamp = (u64, [u64; 4], u64);

impl Freshness {
    fn note(&self, event: &GameEvent) {
        let step = |tick: gongfang_core::Tick, step: u64| u64::from(tick.0) * 4 + step;
        match event {
            GameEvent::TickOpened { tick } => {
                self.tick_step.fetch_max(step(*tick, 1), Ordering::AcqRel);
            }
            GameEvent::TickClosed { tick } | GameEvent::VerdictChanged { tick, .. } => {
                self.tick_step.fetch_max(step(*tick, 2), Ordering::AcqRel);
            }
            GameEvent::ScoresUpdated { tick } => {
                self.tick_step.fetch_max(step(*tick, 3), Ordering::AcqRel);
            }
            GameEvent::FirstBlood { service, .. } => {
                let bit = usize::from(service.0);
                self.first_bloods[bit / 64].fetch_or(1 << (bit % 64), Ordering::AcqRel);
            }
            // A ruling or an organiser's adjustment changes a team's total, hence its rank; a
            // rescore changes scores of ticks already shown; a freeze changes what spectators see.
            GameEvent::Rescored { .. } => {
                self.rescores.fetch_add(1, Ordering::AcqRel);
                self.resync.fetch_add(1, Ordering::AcqRel);
            }
            GameEvent::ReportRuled { .. } | GameEvent::ScoreAdjusted { .. } | GameEvent::BoardFrozen { .. } => {
                self.resync.fetch_add(1, Ordering::AcqRel);
            }
            // Captures count at the next `ScoresUpdated`; other events do not touch the
            // board (and whatever slips past is caught by `WebSettings::max_age`).
            _ => {}
        }
    }

    fn stamp(&self) -> Stamp {
        (
            self.tick_step.load(Ordering::Acquire),
            std::array::from_fn(|i| self.first_bloods[i].load(Ordering::Acquire)),
            self.resync.load(Ordering::Acquire),
        )
    }
}

/// Follows the event feed so the cache knows about changes even when no browser is connected.
async fn follow(mut events: broadcast::Receiver<GameEvent>, fresh: Arc<Freshness>, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            event = events.recv() => match event {
                Ok(event) => fresh.note(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    fresh.resync.fetch_add(1, Ordering::AcqRel);
                    fresh.rescores.fetch_add(1, Ordering::AcqRel);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use gongfang_core::Tick;

    use super::*;

    #[test]
    fn noting_an_event_twice_changes_the_stamp_once() {
        let f = Freshness::default();
        let before = f.stamp();
        f.note(&GameEvent::ScoresUpdated { tick: Tick(3) });
        let after = f.stamp();
        assert_ne!(before, after);
        f.note(&GameEvent::ScoresUpdated { tick: Tick(3) });
        f.note(&GameEvent::TickClosed { tick: Tick(3) });
        assert_eq!(f.stamp(), after, "repeats and older steps are no change");
        f.note(&GameEvent::TickOpened { tick: Tick(4) });
        assert_ne!(f.stamp(), after);
        let opened = f.stamp();
        f.note(&GameEvent::FirstBlood {
            tick: Tick(4),
            attacker: TeamId(1),
            victim: TeamId(2),
            service: ServiceId(200),
        });
        assert_ne!(f.stamp(), opened);
        f.note(&GameEvent::FlagCaptured {
            tick: Tick(4),
            attacker: TeamId(1),
            victim: TeamId(2),
            service: ServiceId(1),
            store: gongfang_core::StoreIdx(0),
            planted: Tick(3),
        });
        assert_eq!(f.stamp().0, opened.0);
    }
}
