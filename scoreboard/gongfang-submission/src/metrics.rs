//! What the flag submission servers count for `/metrics`: every answer given to a flag, by
//! answer and protocol code, and how long each group commit took and how many flags it stored.
//! The counters are the process's (they start at zero when it starts, as Prometheus expects of
//! counters); [`render`] writes them in Prometheus' text format, and the binary has the
//! scoreboard's `/metrics` append them to its own.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::answer::Answer;

/// Upper bounds of the commit latency histogram, in seconds.
const COMMIT_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Answers given, in the order of [`Answer::ALL`].
static ANSWERS: [AtomicU64; Answer::ALL.len()] = [const { AtomicU64::new(0) }; Answer::ALL.len()];
/// Commits at or under each bound of [`COMMIT_BUCKETS`], then all of them.
static COMMITS: [AtomicU64; COMMIT_BUCKETS.len() + 1] = [const { AtomicU64::new(0) }; COMMIT_BUCKETS.len() + 1];
static COMMIT_MICROS: AtomicU64 = AtomicU64::new(0);
static COMMITTED_ROWS: AtomicU64 = AtomicU64::new(0);

/// Counts one answer to one flag (TCP line or HTTP item).
pub(crate) fn answered(answer: Answer) {
    if let Some(i) = Answer::ALL.iter().position(|a| *a == answer) {
        ANSWERS[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one group commit of `rows` flags that took `elapsed`, however it ended.
pub(crate) fn committed(elapsed: Duration, rows: usize) {
    let seconds = elapsed.as_secs_f64();
    for (count, bound) in COMMITS.iter().zip(COMMIT_BUCKETS) {
        if seconds <= bound {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
    COMMITS[COMMIT_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
    COMMIT_MICROS.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    COMMITTED_ROWS.fetch_add(rows as u64, Ordering::Relaxed);
}

/// Appends the submission's metrics, with their help and type lines, to `out`.
pub fn render(out: &mut String) {
    let _ =
        writeln!(out, "# HELP gongfang_flag_answers_total Answers to submitted flags, by answer and protocol code.");
    let _ = writeln!(out, "# TYPE gongfang_flag_answers_total counter");
    for (answer, count) in Answer::ALL.iter().zip(&ANSWERS) {
        let _ = writeln!(
            out,
            "gongfang_flag_answers_total{{answer=\"{}\",code=\"{}\"}} {}",
            answer.name(),
            answer.code().as_str(),
            count.load(Ordering::Relaxed)
        );
    }
    let name = "gongfang_submission_commit_seconds";
    let _ = writeln!(out, "# HELP {name} How long group commits of submitted flags took.");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, count) in COMMIT_BUCKETS.iter().zip(&COMMITS) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
    }
    let all = COMMITS[COMMIT_BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {all}");
    let _ = writeln!(out, "{name}_sum {}", COMMIT_MICROS.load(Ordering::Relaxed) as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {all}");
    let _ = writeln!(out, "# HELP gongfang_submission_committed_flags_total Flags stored by group commits.");
    let _ = writeln!(out, "# TYPE gongfang_submission_committed_flags_total counter");
    let _ = writeln!(out, "gongfang_submission_committed_flags_total {}", COMMITTED_ROWS.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> u64 {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or_else(|| {
            panic!("no {series} in {text}");
        })
    }

    #[test]
    fn answers_and_commits_are_counted_in_prometheus_text() {
        let before = {
            let mut out = String::new();
            render(&mut out);
            out
        };
        answered(Answer::TooLong);
        answered(Answer::TooLong);
        committed(Duration::from_millis(3), 7);
        let mut after = String::new();
        render(&mut after);
        let too_long = "gongfang_flag_answers_total{answer=\"too_long\",code=\"INV\"}";
        // Other tests of this binary count too: the counters only ever grow.
        assert!(value(&after, too_long) >= value(&before, too_long) + 2, "{after}");
        let within = "gongfang_submission_commit_seconds_bucket{le=\"0.005\"}";
        assert!(value(&after, within) > value(&before, within), "{after}");
        let under = "gongfang_submission_commit_seconds_bucket{le=\"0.001\"}";
        assert!(value(&after, under) <= value(&after, within), "buckets are cumulative: {after}");
        assert!(
            value(&after, "gongfang_submission_committed_flags_total")
                >= value(&before, "gongfang_submission_committed_flags_total") + 7
        );
        assert_eq!(after.matches("gongfang_flag_answers_total{").count(), Answer::ALL.len());
    }
}
