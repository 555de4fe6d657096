//! What the organisers' report commands do, as plain functions the `gongfang` binary calls
//! (its `judge add` and `report list|show`; the arguments are parsed there): create a judge
//! account, list and show reports. Each returns the text to print, safe for a terminal.

use std::fmt::Write as _;

use chrono::Utc;
use gongfang_core::AccountRole;
use gongfang_core::report::{Decision, ReportStatus};
use gongfang_core::scenario::Scenario;
use gongfang_store::Store;
use gongfang_store::reports::ReportRecord;
use serde_json::json;

use crate::error::ReportsError;
use crate::view::{Worth, service_slug, team_slug};

/// Shortest judge password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Creates a judge account and audits it (never the password).
pub async fn add_judge(store: &Store, name: &str, password: &str, actor: &str) -> Result<String, ReportsError> {
    add_account(store, name, AccountRole::Judge, password, actor).await
}

/// Creates an organiser's, judge's or observer's account (argon2id password) and audits it
/// under `actor`; says what it did.
pub async fn add_account(
    store: &Store,
    name: &str,
    role: AccountRole,
    password: &str,
    actor: &str,
) -> Result<String, ReportsError> {
    let name = name.trim();
    if name.is_empty() || name.contains(':') || name.chars().count() > 64 {
        return Err(ReportsError::BadRequest("an account name is 1 to 64 characters, without `:`".into()));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ReportsError::BadRequest(format!(
            "an account's password must be at least {MIN_PASSWORD_CHARS} characters; use a passphrase"
        )));
    }
    let account = store.create_account(name, role, password).await?;
    let action = if role == AccountRole::Judge { "judge.add".to_owned() } else { "account.add".to_owned() };
    store
        .append_audit(
            Utc::now(),
            actor,
            &action,
            &serde_json::json!({ "account": account.id, "name": account.name, "role": role.as_str() }),
        )
        .await?;
    Ok(format!("{} `{}` created (account {})\n", role.as_str(), account.name, account.id))
}

/// Reports read from the store per page by [`list_reports`].
const LIST_PAGE: u64 = 200;

/// The reports, oldest first, one line each; only those in `status` (`pending`, `ruled`,
/// `appealed` or `final`) when one is named. Slugs come from the scenario. The store is read a
/// page at a time, so only one page of reports with their details is in memory at once.
pub async fn list_reports(store: &Store, scenario: &Scenario, status: Option<&str>) -> Result<String, ReportsError> {
    let status = match status {
        None => None,
        Some(s) => Some(ReportStatus::from_name(s).ok_or_else(|| {
            ReportsError::BadRequest(format!("unknown status `{s}`; use pending, disputed, ruled, appealed or final"))
        })?),
    };
    let worth = Worth::read(store, scenario).await?;
    let mut out = table_header();
    let mut count = 0;
    let mut after = None;
    loop {
        let page = store.list_reports_page(status, after, LIST_PAGE).await?;
        count += page.reports.len();
        table_rows(&mut out, scenario, &page.reports, &worth);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(table_footer(out, count))
}

/// Everything about report `id`: evidence, rulings and appeal.
pub async fn show_report(store: &Store, scenario: &Scenario, id: i64) -> Result<String, ReportsError> {
    let r = store.report(id).await?.ok_or(ReportsError::UnknownReport(id))?;
    let worth = Worth::read(store, scenario).await?;
    Ok(report_detail(scenario, &r, &worth))
}

fn table_header() -> String {
    format!(
        "{:>5}  {:<16} {:<8} {:<16} {:<12} {:<9} {:>6}  filed\n",
        "id", "team", "kind", "target", "service", "status", "points"
    )
}

fn table_rows(out: &mut String, s: &Scenario, reports: &[ReportRecord], worth: &Worth) {
    for r in reports {
        let target = r.report.target_team.map_or_else(|| "-".to_owned(), |t| team_slug(s, t));
        let _ = writeln!(
            out,
            "{:>5}  {:<16} {:<8} {:<16} {:<12} {:<9} {:>6}  {}",
            r.id,
            team_slug(s, r.team),
            r.report.kind.as_str(),
            target,
            service_slug(s, r.report.service),
            r.status.as_str(),
            worth.of(r),
            r.filed_at.to_rfc3339()
        );
    }
}

fn table_footer(mut out: String, count: usize) -> String {
    let _ = write!(out, "{} report{}", count, if count == 1 { "" } else { "s" });
    out.push('\n');
    terminal_safe(&out)
}

/// Everything about one report, for organisers: with the judges' blind scores and each
/// ruling's finding, and what it is worth now.
fn report_detail(s: &Scenario, r: &ReportRecord, worth: &Worth) -> String {
    let c = &r.report;
    let mut out = String::new();
    let _ = writeln!(out, "report {} ({} report by {}), {}", r.id, c.kind, team_slug(s, r.team), r.status.as_str());
    if let Some(t) = c.target_team {
        let _ = writeln!(out, "target:      {}", team_slug(s, t));
    }
    let _ = writeln!(out, "service:     {}", service_slug(s, c.service));
    let _ = writeln!(out, "window:      {} .. {}", c.window.from.to_rfc3339(), c.window.to.to_rfc3339());
    let _ = writeln!(
        out,
        "technique:   {}{}",
        c.technique,
        c.attack_id.as_ref().map_or(String::new(), |t| format!(" ({t})"))
    );
    if let Some(a) = c.traced_address {
        let _ = writeln!(out, "traced from: {a}");
    }
    if let Some(t) = c.traced_team {
        let _ = writeln!(out, "traced team: {}", team_slug(s, t));
    }
    let _ = writeln!(out, "filed:       {}", r.filed_at.to_rfc3339());
    let _ = writeln!(out, "\n{}", c.description);
    if !c.evidence.is_empty() {
        let _ = writeln!(out, "\nevidence:\n{}", c.evidence);
    }
    for e in &r.evidence {
        let _ =
            writeln!(out, "file {}: {} ({}, {} bytes, sha256 {})", e.id, e.file_name, e.content_type, e.size, e.sha256);
    }
    let decided = |d: &Decision| {
        let finding = d.finding.as_ref().map_or(String::new(), |f| format!(", finding {}", json!(f)));
        let reason = if d.reason.is_empty() { String::new() } else { format!(": {}", d.reason) };
        format!("{} {} points{finding}{reason}", if d.valid { "valid," } else { "invalid," }, d.points)
    };
    for score in &r.scores {
        let _ = writeln!(
            out,
            "blind score by {} at {}: {}",
            score.judge,
            score.scored_at.to_rfc3339(),
            decided(&score.decision)
        );
    }
    for ruling in &r.rulings {
        let (stage, judge, at) = (ruling.stage.as_str(), &ruling.judge, ruling.ruled_at.to_rfc3339());
        let _ = writeln!(out, "{stage} ruling by {judge} at {at}: {}", decided(&ruling.decision));
    }
    if r.latest_ruling().is_some() {
        let _ = writeln!(out, "worth now:   {} points", worth.of(r));
    }
    if let Some(a) = &r.appeal {
        let _ = writeln!(out, "appealed at {}: {}", a.at.to_rfc3339(), a.reason);
    }
    terminal_safe(&out)
}

/// `text` with every control character but newline and tab (C0, DEL and C1: ESC, CR,
/// backspace, BEL …) written as its escape, ESC as `\u{1b}`. Most of a report is what a team
/// wrote, and a terminal obeys escape sequences: unescaped, a report could move the cursor,
/// clear or rewrite lines, or retitle the window of the judge reading it.
fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn controls_are_escaped_but_lines_and_tabs_kept() {
        let text = "a\tb\nc\x1b[2J\r\x07\x08\x7f\u{9b}31m\u{85}d 攻防";
        assert_eq!(terminal_safe(text), "a\tb\nc\\u{1b}[2J\\u{d}\\u{7}\\u{8}\\u{7f}\\u{9b}31m\\u{85}d 攻防");
    }
}
