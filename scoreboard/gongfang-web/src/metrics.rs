//! `GET /metrics`: the drill's numbers for operators, in Prometheus' text format, for an
//! organiser's credential only (an account's API token as `Authorization: Bearer`, as
//! Prometheus sends it, or a console session's cookie). The numbers are counted in this process
//! from the game's events and, when a tick closes, from its stored checker results: ticks
//! closed and how long they took, checker actions by service, action and verdict with their
//! durations, flags captured by service; beside them the current tick, whether the drill is
//! paused, the board's websocket clients, the teams' VPN peers connected (drills with a VPN),
//! and the store errors met while counting; then what other parts of the drill count (the flag
//! submission's answers and commits, [`WebState::with_more_metrics`]). Counters start at zero
//! when the process starts, as Prometheus expects of counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::{AccountRole, Tick};
use gongfang_store::Store;
use tokio::sync::{broadcast, oneshot};

use crate::error::WebError;
use crate::state::WebState;

/// Upper bounds of the tick duration histogram, in seconds.
const TICK_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Upper bounds of the checker action duration histogram, in seconds.
const CHECKER_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What `/metrics` counts, shared by the counting task and the requests.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    ticks_closed: u64,
    tick_seconds: Histogram,
    /// By service slug, action and verdict.
    actions: BTreeMap<(String, &'static str, &'static str), u64>,
    /// By action.
    checker_seconds: BTreeMap<&'static str, Histogram>,
    /// Checker errors by service slug and kind of fault (timeout, crash, limit, platform).
    faults: BTreeMap<(String, &'static str), u64>,
    /// By service slug.
    captures: BTreeMap<String, u64>,
    store_errors: u64,
    /// Events the counting task missed because it fell behind the channel.
    events_missed: u64,
}

/// Counts of observations at or under each bound, with their sum.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// One per bound of the histogram's buckets, then the count of all.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        for (count, bound) in self.counts.iter_mut().zip(bounds) {
            if value <= *bound {
                *count += 1;
            }
        }
        *self.counts.last_mut().expect("one count per bound and one for all") += 1;
        self.sum += value;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let empty = vec![0; bounds.len() + 1];
        let counts = if self.counts.is_empty() { &empty } else { &self.counts };
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in bounds.iter().zip(counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let all = counts.last().copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {all}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {all}");
    }
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a closed tick: its duration and every checker action stored for it.
    async fn count_tick(&self, store: &Store, scenario: &Scenario, tick: Tick) {
        let record = store.tick(tick).await;
        let results = store.check_results(tick, None).await;
        let mut c = self.counters();
        match record {
            Ok(Some(record)) => {
                c.ticks_closed += 1;
                if let Some(closed) = record.closed_at {
                    let seconds = (closed - record.opened_at).num_milliseconds().max(0) as f64 / 1000.0;
                    c.tick_seconds.observe(TICK_BUCKETS, seconds);
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, tick = tick.0, "metrics: could not read a closed tick");
                c.store_errors += 1;
            }
        }
        match results {
            Ok(results) => {
                // A disabled team's services are recorded down without a checker run: not a
                // checker action, and no duration worth counting.
                for r in results.into_iter().filter(|r| r.message != gongfang_core::plan::OUT_OF_THE_DRILL) {
                    let service = scenario.service(r.service).map_or_else(|| r.service.to_string(), |s| s.slug.clone());
                    if let Some(fault) = r.fault {
                        *c.faults.entry((service.clone(), fault.as_str())).or_default() += 1;
                    }
                    *c.actions.entry((service, r.action.as_str(), r.verdict.as_str())).or_default() += 1;
                    let seconds = r.duration_ms as f64 / 1000.0;
                    c.checker_seconds.entry(r.action.as_str()).or_default().observe(CHECKER_BUCKETS, seconds);
                }
            }
            Err(error) => {
                tracing::warn!(%error, tick = tick.0, "metrics: could not read a closed tick's results");
                c.store_errors += 1;
            }
        }
    }

    fn count_event(&self, scenario: &Scenario, event: &GameEvent) {
        if let GameEvent::FlagCaptured { service, .. } = event {
            let service = scenario.service(*service).map_or_else(|| service.to_string(), |s| s.slug.clone());
            *self.counters().captures.entry(service).or_default() += 1;
        }
    }

    /// The text Prometheus scrapes: every metric with its help and type, label values escaped.
    fn render(&self, state: &WebState) -> String {
        let c = self.counters();
        let mut out = String::new();
        head(&mut out, "gongfang_ticks_closed_total", "counter", "Ticks closed since this process started.");
        let _ = writeln!(out, "gongfang_ticks_closed_total {}", c.ticks_closed);
        head(&mut out, "gongfang_tick_duration_seconds", "histogram", "From a tick's opening to its closing.");
        c.tick_seconds.write(&mut out, "gongfang_tick_duration_seconds", "", TICK_BUCKETS);
        head(
            &mut out,
            "gongfang_checker_actions_total",
            "counter",
            "Checker actions of closed ticks, by service, action and verdict.",
        );
        for ((service, action, verdict), n) in &c.actions {
            let _ = writeln!(
                out,
                "gongfang_checker_actions_total{{service=\"{}\",action=\"{action}\",verdict=\"{verdict}\"}} {n}",
                escape(service)
            );
        }
        head(
            &mut out,
            "gongfang_checker_faults_total",
            "counter",
            "Checker errors of closed ticks, by service and kind: timeout, crash, limit or platform.",
        );
        for ((service, fault), n) in &c.faults {
            let _ =
                writeln!(out, "gongfang_checker_faults_total{{service=\"{}\",fault=\"{fault}\"}} {n}", escape(service));
        }
        head(
            &mut out,
            "gongfang_checker_duration_seconds",
            "histogram",
            "How long checker actions of closed ticks took, by action.",
        );
        for (action, histogram) in &c.checker_seconds {
            histogram.write(
                &mut out,
                "gongfang_checker_duration_seconds",
                &format!("action=\"{action}\""),
                CHECKER_BUCKETS,
            );
        }
        head(
            &mut out,
            "gongfang_flags_captured_total",
            "counter",
            "Flags accepted from attackers, by the victim's service.",
        );
        for (service, n) in &c.captures {
            let _ = writeln!(out, "gongfang_flags_captured_total{{service=\"{}\"}} {n}", escape(service));
        }
        let clock = state.clock();
        head(&mut out, "gongfang_current_tick", "gauge", "The running tick; -1 before the start and after the end.");
        let _ = writeln!(out, "gongfang_current_tick {}", clock.tick.map_or(-1, |t| i64::from(t.0)));
        head(&mut out, "gongfang_drill_paused", "gauge", "1 while organisers have the drill paused.");
        let _ = writeln!(out, "gongfang_drill_paused {}", u8::from(clock.phase == gongfang_core::clock::Phase::Paused));
        head(&mut out, "gongfang_websocket_clients", "gauge", "Live board connections open now.");
        let _ = writeln!(out, "gongfang_websocket_clients {}", state.websocket_clients());
        if let Some(connections) = state.connections_now() {
            head(&mut out, "gongfang_vpn_peers_connected", "gauge", "Teams' VPN peers with a recent handshake.");
            let connected: u32 = connections.iter().map(|c| c.peers_connected).sum();
            let _ = writeln!(out, "gongfang_vpn_peers_connected {connected}");
            head(&mut out, "gongfang_vpn_peers_issued", "gauge", "Teams' VPN peers with a config issued.");
            let issued: u32 = connections.iter().map(|c| c.peers_issued).sum();
            let _ = writeln!(out, "gongfang_vpn_peers_issued {issued}");
        }
        head(
            &mut out,
            "gongfang_metrics_store_errors_total",
            "counter",
            "Store errors met while counting these metrics.",
        );
        let _ = writeln!(out, "gongfang_metrics_store_errors_total {}", c.store_errors);
        head(
            &mut out,
            "gongfang_store_errors_total",
            "counter",
            "Database failures met by any part of this process (engine, submission, web, reports).",
        );
        let _ = writeln!(out, "gongfang_store_errors_total {}", gongfang_store::database_errors());
        head(
            &mut out,
            "gongfang_metrics_events_missed_total",
            "counter",
            "Game events the counting fell behind on and missed.",
        );
        let _ = writeln!(out, "gongfang_metrics_events_missed_total {}", c.events_missed);
        if let Some(more) = state.more_metrics() {
            more(&mut out);
        }
        out
    }
}

/// A metric's `# HELP` and `# TYPE` lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Follows the game's events and counts them until the state is dropped.
pub(crate) async fn follow(
    mut events: broadcast::Receiver<GameEvent>,
    store: Store,
    scenario: Arc<Scenario>,
    metrics: Arc<Metrics>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            _ = &mut stop => return,
            event = events.recv() => event,
        };
        match event {
            Ok(GameEvent::TickClosed { tick }) => metrics.count_tick(&store, &scenario, tick).await,
            Ok(event) => metrics.count_event(&scenario, &event),
            Err(broadcast::error::RecvError::Lagged(missed)) => metrics.counters().events_missed += missed,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// `GET /metrics`: the text above for organisers; `401` without an account's credential,
/// `403` for an account that is not an organiser.
pub(crate) async fn metrics(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    match state.account(&headers).await? {
        None => {
            let mut response = WebError::MetricsUnauthenticated.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gongfang organisers\""));
            Ok(response)
        }
        Some(account) if account.role != AccountRole::Organiser => Err(WebError::MetricsForbidden),
        Some(_) => {
            let text = state.metrics().render(&state);
            let kind = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
            Ok(([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], text)
                .into_response())
        }
    }
}
