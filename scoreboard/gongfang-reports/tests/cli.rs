//! What the organisers' report commands do, through the functions the binary calls: creating
//! a judge (audited, with a usable password) and listing and showing reports, escaped for the
//! terminal.

mod common;

use gongfang_core::AccountRole;
use gongfang_core::report::{CheckedReport, Decision, ReportKind, TimeWindow};
use gongfang_core::{ServiceId, TeamId};
use gongfang_reports::ReportsError;
use gongfang_reports::commands::{add_judge, list_reports, show_report};
use gongfang_store::Store;
use gongfang_test_support::TestDb;

use common::{DDB, RED_FIRM, at, redblue};

/// A test database with the red/blue drill synced, and a handle on its store.
async fn store() -> (TestDb, Store) {
    let db = TestDb::sqlite().await;
    db.store.sync_scenario(&redblue()).await.unwrap();
    let store = db.store.clone();
    (db, store)
}

/// An attack report on ddb's first service, minutes 10 to 20 of the drill, as the team wrote it.
fn attack_on_ddb(technique: &str, description: &str, evidence: &str) -> CheckedReport {
    CheckedReport {
        kind: ReportKind::Attack,
        target_team: Some(DDB),
        service: ServiceId(1),
        window: TimeWindow { from: at(10), to: at(20) },
        technique: technique.into(),
        attack_id: None,
        description: description.into(),
        evidence: evidence.into(),
        traced_address: None,
        traced_team: None,
    }
}

#[tokio::test]
async fn judge_add_creates_an_audited_judge_that_can_log_in() {
    let (_db, store) = store().await;
    let out = add_judge(&store, "ana", "correct horse battery", "olga").await.unwrap();
    assert!(out.contains("judge `ana` created"), "{out}");
    let judge = store.verify_account("ana", "correct horse battery").await.unwrap().expect("can log in");
    assert_eq!(judge.role, AccountRole::Judge);
    let audit = store.list_audit(None, 10).await.unwrap();
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("olga", "judge.add"));
    assert!(!audit[0].detail.to_string().contains("horse"), "no password in the audit log");

    let short = add_judge(&store, "bo", "short", "olga").await.unwrap_err();
    assert!(matches!(short, ReportsError::BadRequest(ref m) if m.contains("at least 12")), "{short}");
    let taken = add_judge(&store, "ana", "another long password", "olga").await.unwrap_err();
    assert!(taken.to_string().contains("already exists"), "{taken}");
}

#[tokio::test]
async fn report_list_and_show() {
    let (_db, store) = store().await;
    let s = redblue();
    let report = attack_on_ddb("weak password", "admin/admin", "");
    let filed = store.file_report(RED_FIRM, &report, &[], at(30)).await.unwrap();
    let ana = store.create_account("ana", AccountRole::Judge, "correct horse battery").await.unwrap();
    let decision =
        Decision { valid: true, points: 25, reason: "confirmed".into(), reason_codes: Vec::new(), finding: None };
    store.rule_report(filed.id, &ana, &decision, &s.reports, at(40)).await.unwrap();
    store.file_report(TeamId(2), &report, &[], at(31)).await.unwrap();

    let all = list_reports(&store, &s, None).await.unwrap();
    assert!(all.contains("red-firm") && all.contains("red-academy") && all.ends_with("2 reports\n"), "{all}");
    let pending = list_reports(&store, &s, Some("pending")).await.unwrap();
    assert!(!pending.contains("red-firm") && pending.ends_with("1 report\n"), "{pending}");
    let bad = list_reports(&store, &s, Some("lost")).await.unwrap_err();
    assert!(bad.to_string().contains("use pending, disputed, ruled, appealed or final"), "{bad}");
    let shown = show_report(&store, &s, filed.id).await.unwrap();
    assert!(shown.contains("target:      ddb") && shown.contains("first ruling by ana"), "{shown}");
    assert!(shown.contains("valid, 25 points: confirmed"), "{shown}");
    let missing = show_report(&store, &s, 999).await.unwrap_err();
    assert!(matches!(missing, ReportsError::UnknownReport(999)));
}

#[tokio::test]
async fn report_show_escapes_what_could_rewrite_the_terminal() {
    let (_db, store) = store().await;
    let s = redblue();
    let report = attack_on_ddb(
        "sqli\x1b]0;pwned\x07",
        // Clear the screen, home the cursor, print a fake ruling; then a C1 CSI.
        "line one\n\tindented\x1b[2J\x1b[H\rfirst ruling by ana: valid, 500 points\u{9b}0m",
        "$ cat log\x08\x08\x08\x7f",
    );
    let filed = store.file_report(RED_FIRM, &report, &[], at(30)).await.unwrap();
    let shown = show_report(&store, &s, filed.id).await.unwrap();
    let raw: Vec<char> = shown.chars().filter(|c| c.is_control() && *c != '\n' && *c != '\t').collect();
    assert!(raw.is_empty(), "{raw:?} reach the terminal: {shown:?}");
    assert!(shown.contains("technique:   sqli\\u{1b}]0;pwned\\u{7}"), "{shown}");
    assert!(shown.contains("line one\n\tindented\\u{1b}[2J\\u{1b}[H\\u{d}first ruling"), "{shown}");
    assert!(shown.contains("500 points\\u{9b}0m"), "{shown}");
    assert!(shown.contains("$ cat log\\u{8}\\u{8}\\u{8}\\u{7f}"), "{shown}");
}
