//! Per-team queues and the group-commit writer.
//!
//! Connections put capture candidates into their team's queue and wait on a oneshot. One writer
//! task drains the queues round-robin, a bounded quantum per team per round, so a team flooding
//! the server delays others by at most one quantum; it commits the batch in one transaction and
//! only then answers. Each team's queue is bounded by a semaphore whose permit travels with the
//! row, so a flood pushes back on its own connections, not on memory or on other teams.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gongfang_core::event::GameEvent;
use gongfang_core::{ServiceId, TeamId};
use gongfang_store::{NewSubmission, SubmissionOutcome};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, oneshot};

use crate::answer::Answer;
use crate::sink::SubmissionSink;

/// A row waiting for its commit.
struct Pending {
    row: NewSubmission,
    reply: oneshot::Sender<Answer>,
    // Released when the row is answered: the team may then queue another.
    _permit: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Queues {
    teams: HashMap<TeamId, VecDeque<Pending>>,
    /// Teams with queued rows, in round-robin order.
    ring: VecDeque<TeamId>,
    total: usize,
    closed: bool,
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterConfig {
    pub linger: Duration,
    pub max_batch: usize,
    pub quantum: usize,
    pub team_queue: usize,
}

/// The handle connections enqueue through.
pub(crate) struct Writer {
    queues: Mutex<Queues>,
    notify: Notify,
    permits: HashMap<TeamId, Arc<Semaphore>>,
    config: WriterConfig,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(teams: impl IntoIterator<Item = TeamId>, config: WriterConfig) -> Writer {
        let permits = teams.into_iter().map(|t| (t, Arc::new(Semaphore::new(config.team_queue)))).collect();
        Writer { queues: Mutex::new(Queues::default()), notify: Notify::new(), permits, config }
    }

    /// Queues a capture; the receiver yields its answer once the batch is committed. Waits
    /// while the team already has its maximum of rows in flight.
    pub async fn enqueue(&self, row: NewSubmission) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        let Some(semaphore) = self.permits.get(&row.attacker) else {
            // The classifier only passes known attackers; answer rather than panic.
            let _ = reply.send(Answer::Invalid);
            return answer;
        };
        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            let _ = reply.send(Answer::Unavailable);
            return answer;
        };
        let mut q = self.queues.lock().expect("queue lock poisoned");
        if q.closed {
            let _ = reply.send(Answer::Unavailable);
            return answer;
        }
        let team = row.attacker;
        let queue = q.teams.entry(team).or_default();
        let was_empty = queue.is_empty();
        queue.push_back(Pending { row, reply, _permit: permit });
        if was_empty {
            q.ring.push_back(team);
        }
        q.total += 1;
        drop(q);
        self.notify.notify_one();
        answer
    }

    /// Asks the writer to finish what is queued and stop.
    pub fn close(&self) {
        self.queues.lock().expect("queue lock poisoned").closed = true;
        self.notify.notify_one();
    }

    /// Takes up to `max_batch` rows round-robin, at most `quantum` per team per round.
    fn drain(&self) -> Vec<Pending> {
        let mut q = self.queues.lock().expect("queue lock poisoned");
        let mut batch = Vec::with_capacity(q.total.min(self.config.max_batch));
        while batch.len() < self.config.max_batch {
            let Some(team) = q.ring.pop_front() else { break };
            let room = self.config.max_batch - batch.len();
            let queue = q.teams.get_mut(&team).expect("ring names only queued teams");
            let take = queue.len().min(self.config.quantum).min(room);
            batch.extend(queue.drain(..take));
            if !queue.is_empty() {
                q.ring.push_back(team);
            }
        }
        q.total -= batch.len();
        batch
    }

    fn queued(&self) -> (usize, bool) {
        let q = self.queues.lock().expect("queue lock poisoned");
        (q.total, q.closed)
    }

    /// The writer task: runs until closed and drained.
    pub async fn run(
        self: Arc<Self>,
        sink: Arc<dyn SubmissionSink>,
        events: broadcast::Sender<GameEvent>,
        mut captured: HashSet<ServiceId>,
    ) {
        loop {
            let (total, closed) = self.queued();
            if total == 0 {
                if closed {
                    break;
                }
                self.notify.notified().await;
                continue;
            }
            // Group commit: give concurrent submitters a moment to join this transaction.
            if total < self.config.max_batch && !closed && !self.config.linger.is_zero() {
                tokio::time::sleep(self.config.linger).await;
            }
            let batch = self.drain();
            if !batch.is_empty() {
                commit(&*sink, batch, &events, &mut captured).await;
            }
        }
        tracing::debug!("submission writer stopped");
    }
}

/// Commits one batch and answers every row of it.
async fn commit(
    sink: &dyn SubmissionSink,
    batch: Vec<Pending>,
    events: &broadcast::Sender<GameEvent>,
    captured: &mut HashSet<ServiceId>,
) {
    // A pair seen twice in one batch is stored once; later copies are duplicates whatever
    // the store says about the first.
    let mut first: HashMap<(TeamId, &str), usize> = HashMap::with_capacity(batch.len());
    let mut unique_idx = Vec::with_capacity(batch.len());
    let mut copy_of = vec![None; batch.len()];
    for (i, p) in batch.iter().enumerate() {
        match first.get(&(p.row.attacker, p.row.flag.as_str())) {
            Some(&j) => copy_of[i] = Some(j),
            None => {
                first.insert((p.row.attacker, p.row.flag.as_str()), i);
                unique_idx.push(i);
            }
        }
    }
    drop(first);
    let rows: Vec<NewSubmission> = unique_idx.iter().map(|&i| batch[i].row.clone()).collect();
    let started = std::time::Instant::now();
    let result = sink.insert_batch(&rows).await;
    let mut answers = vec![Answer::Unavailable; batch.len()];
    match result {
        Ok(outcomes) => {
            tracing::trace!(rows = rows.len(), elapsed_us = started.elapsed().as_micros() as u64, "batch committed");
            for (&i, outcome) in unique_idx.iter().zip(outcomes) {
                answers[i] = match outcome {
                    SubmissionOutcome::New => Answer::Accepted,
                    SubmissionOutcome::Duplicate => Answer::Duplicate,
                };
            }
            for (i, copy) in copy_of.iter().enumerate() {
                if copy.is_some() {
                    answers[i] = Answer::Duplicate;
                }
            }
        }
        Err(error) => {
            // Nothing of this batch is stored: every row gets ERR and may be resubmitted.
            tracing::error!(%error, rows = batch.len(), "submission batch failed");
        }
    }
    for (p, answer) in batch.into_iter().zip(answers) {
        if answer == Answer::Accepted {
            publish_capture(&p.row, events, captured);
        }
        // The submitter may have gone away; its flag is stored regardless.
        let _ = p.reply.send(answer);
    }
}

fn publish_capture(row: &NewSubmission, events: &broadcast::Sender<GameEvent>, captured: &mut HashSet<ServiceId>) {
    // No receivers is fine: events are for whoever listens.
    let _ = events.send(GameEvent::FlagCaptured {
        tick: row.tick_submitted,
        attacker: row.attacker,
        victim: row.victim,
        service: row.service,
        store: row.store,
        planted: row.tick_planted,
    });
    if captured.insert(row.service) {
        tracing::info!(service = %row.service, attacker = %row.attacker, "first blood");
        let _ = events.send(GameEvent::FirstBlood {
            tick: row.tick_submitted,
            attacker: row.attacker,
            victim: row.victim,
            service: row.service,
        });
    }
}

#[cfg(test)]
mod tests {
    use gongfang_core::{StoreIdx, Tick};

    use super::*;
    use crate::error::SubmissionError;
    use crate::sink::SinkFuture;

    /// Records the attackers of each batch; every row is new.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Vec<(TeamId, String)>>>);

    impl SubmissionSink for Recording {
        fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission]) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
            self.0.lock().unwrap().push(batch.iter().map(|r| (r.attacker, r.flag.clone())).collect());
            Box::pin(async move { Ok(vec![SubmissionOutcome::New; batch.len()]) })
        }
        fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
            Box::pin(async { Ok(None) })
        }
        fn captured_services(&self, _: Tick) -> SinkFuture<'_, HashSet<ServiceId>> {
            Box::pin(async { Err(SubmissionError::Closed) })
        }
    }

    fn row(attacker: u16, n: usize) -> NewSubmission {
        NewSubmission {
            attacker: TeamId(attacker),
            flag: format!("F{n}"),
            victim: TeamId(9),
            service: ServiceId(1),
            store: StoreIdx(0),
            tick_planted: Tick(1),
            tick_submitted: Tick(1),
            submitted_at: chrono::Utc::now(),
        }
    }

    fn config() -> WriterConfig {
        WriterConfig { linger: Duration::ZERO, max_batch: 100, quantum: 10, team_queue: 100_000 }
    }

    #[tokio::test]
    async fn a_flooding_team_does_not_starve_another() {
        let writer = Arc::new(Writer::new([TeamId(1), TeamId(2)], config()));
        let mut flood = Vec::new();
        for n in 0..10_000 {
            flood.push(writer.enqueue(row(1, n)).await);
        }
        let mut small = Vec::new();
        for n in 0..5 {
            small.push(writer.enqueue(row(2, n)).await);
        }
        let sink = Arc::new(Recording::default());
        let (events, _) = broadcast::channel(16);
        let task = tokio::spawn(writer.clone().run(sink.clone(), events, HashSet::new()));
        for rx in small {
            assert_eq!(rx.await.unwrap(), Answer::Accepted);
        }
        for rx in flood {
            assert_eq!(rx.await.unwrap(), Answer::Accepted);
        }
        writer.close();
        task.await.unwrap();
        let batches = sink.0.lock().unwrap().clone();
        // Team 2 queued behind 10,000 rows, yet all its rows went into the first commit.
        assert_eq!(batches[0].iter().filter(|(t, _)| *t == TeamId(2)).count(), 5);
        assert!(batches.iter().all(|b| b.len() <= 100));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10_005);
    }

    #[tokio::test]
    async fn a_flag_twice_in_one_batch_is_stored_once() {
        let writer = Arc::new(Writer::new([TeamId(1), TeamId(2)], config()));
        let first = writer.enqueue(row(1, 7)).await;
        let again = writer.enqueue(row(1, 7)).await;
        let other_team = writer.enqueue(row(2, 7)).await;
        let sink = Arc::new(Recording::default());
        let (events, mut rx) = broadcast::channel(16);
        let task = tokio::spawn(writer.clone().run(sink.clone(), events, HashSet::new()));
        assert_eq!(first.await.unwrap(), Answer::Accepted);
        assert_eq!(again.await.unwrap(), Answer::Duplicate);
        assert_eq!(other_team.await.unwrap(), Answer::Accepted);
        writer.close();
        task.await.unwrap();
        let batches = sink.0.lock().unwrap().clone();
        assert_eq!(batches, vec![vec![(TeamId(1), "F7".to_owned()), (TeamId(2), "F7".to_owned())]]);
        // Two captures, one first blood for the service.
        let mut kinds = Vec::new();
        while let Ok(e) = rx.try_recv() {
            kinds.push(matches!(e, GameEvent::FirstBlood { .. }));
        }
        assert_eq!(kinds, vec![false, true, false]);
    }

    #[tokio::test]
    async fn a_failed_commit_answers_err_and_later_writes_resume() {
        struct Failing(std::sync::atomic::AtomicBool);
        impl SubmissionSink for Failing {
            fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission]) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
                let fail = self.0.swap(false, std::sync::atomic::Ordering::SeqCst);
                Box::pin(async move {
                    if fail { Err(SubmissionError::Closed) } else { Ok(vec![SubmissionOutcome::New; batch.len()]) }
                })
            }
            fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
                Box::pin(async { Ok(None) })
            }
            fn captured_services(&self, _: Tick) -> SinkFuture<'_, HashSet<ServiceId>> {
                Box::pin(async { Ok(HashSet::new()) })
            }
        }
        let writer = Arc::new(Writer::new([TeamId(1)], config()));
        let lost = writer.enqueue(row(1, 1)).await;
        let (events, _) = broadcast::channel(16);
        let task = tokio::spawn(writer.clone().run(
            Arc::new(Failing(std::sync::atomic::AtomicBool::new(true))),
            events,
            HashSet::new(),
        ));
        assert_eq!(lost.await.unwrap(), Answer::Unavailable);
        assert_eq!(writer.enqueue(row(1, 1)).await.await.unwrap(), Answer::Accepted);
        writer.close();
        task.await.unwrap();
        // Once closed, nothing is queued any more.
        assert_eq!(writer.enqueue(row(1, 2)).await.await.unwrap(), Answer::Unavailable);
    }
}
