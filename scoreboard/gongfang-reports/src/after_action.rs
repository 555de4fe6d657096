//! A team's after-action report: what happened to it over the drill, in English or Hong Kong
//! Chinese, as one printable HTML page (`gongfang report after-action`; the binary prints it to
//! PDF with headless Chromium). Read from the drill's export ([`crate::export`]) and the team's
//! patches and reports: its availability per service and tick, the flags it lost and to whom,
//! first bloods, its patches and their effect, its reports and their rulings, what attackers did
//! against each flag store, how it compares with the field (other teams only as figures, never
//! by name), and recommendations, each citing the figures that triggered it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use gongfang_core::export::{Export, FinalStanding};
use gongfang_core::patch::PatchStatus;
use gongfang_core::report::ReportKind;
use gongfang_core::scenario::Scenario;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::Store;
use gongfang_store::reports::ReportRecord;
use serde::Deserialize;

use crate::error::ReportsError;
use crate::pack::escape;
use crate::state::ReportsState;

/// The language a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHk,
}

impl Lang {
    /// `en` or `zh-HK`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh-HK" => Some(Lang::ZhHk),
            _ => None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHk => "zh-HK",
        }
    }

    fn pick(self, en: String, zh: String) -> String {
        match self {
            Lang::En => en,
            Lang::ZhHk => zh,
        }
    }
}

/// Everything one team's report says, as figures.
#[derive(Debug, Clone)]
pub struct AfterAction {
    pub drill: (String, String),
    pub team: TeamId,
    pub team_name: (String, String),
    /// Scored ticks.
    pub ticks: u32,
    pub services: Vec<ServiceRecord>,
    /// Flag stores of the team's services that fell, by service then store.
    pub lost: Vec<LostStore>,
    /// Flags the team captured, by victim then service.
    pub captured: BTreeMap<(TeamId, ServiceId), u32>,
    /// First bloods the team took or suffered: (service, attacker, victim, tick).
    pub first_bloods: Vec<(ServiceId, TeamId, TeamId, Tick)>,
    pub patches: Vec<PatchLine>,
    /// Minutes from the drill's first tick to the team's first deployed patch.
    pub first_patch_minutes: Option<f64>,
    pub reports: Vec<ReportLine>,
    pub standing: Option<FinalStanding>,
    /// How many teams are ranked.
    pub teams_ranked: usize,
    pub field: Field,
    pub recommendations: Vec<Recommendation>,
    /// Names of teams and services, by id: (English, Chinese).
    names: BTreeMap<NameKey, (String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NameKey {
    Team(TeamId),
    Service(ServiceId),
}

/// One service's availability over the drill.
#[derive(Debug, Clone)]
pub struct ServiceRecord {
    pub service: ServiceId,
    /// A verdict letter per scored tick (defective cells as checker errors).
    pub letters: String,
    pub ok: u32,
    /// Ticks that were the team's fault: down, mumble or corrupt.
    pub faulty: u32,
    pub checker_errors: u32,
    pub defended: u32,
}

/// A flag store of the team's that attackers got into.
#[derive(Debug, Clone)]
pub struct LostStore {
    pub service: ServiceId,
    pub store: StoreIdx,
    pub flags: u32,
    pub first: Tick,
    pub last: Tick,
    /// Flags taken, by attacker.
    pub by: BTreeMap<TeamId, u32>,
}

#[derive(Debug, Clone)]
pub struct PatchLine {
    pub service: ServiceId,
    pub version: u32,
    pub status: PatchStatus,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Whether the reference exploit still worked against it when staged.
    pub exploitable: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ReportLine {
    pub id: i64,
    pub kind: ReportKind,
    pub service: ServiceId,
    pub filed_at: DateTime<Utc>,
    /// Valid, and the points, of the latest ruling; `None` while pending.
    pub ruling: Option<(bool, u32)>,
}

/// The field's figures the team's are compared with: the defending teams' median and best.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub defenders: usize,
    /// Percent of scored ticks each service was the team's own fault, over all its services.
    pub faulty_median: f64,
    pub faulty_best: f64,
    pub lost_median: f64,
    pub lost_best: u32,
    /// Minutes from the start to the first deployed patch, over the teams that deployed one.
    pub first_patch_median: Option<f64>,
    /// Each defending team's figures by name, when the scenario allows names
    /// (`debrief_names = true`); empty otherwise.
    pub named: Vec<FieldRow>,
}

/// One defending team's figures in a field comparison that names teams.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRow {
    pub team: TeamId,
    /// Percent of its service ticks down, mumble or corrupt.
    pub faulty: f64,
    pub lost: u32,
}

/// A plain recommendation and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub en: String,
    pub zh: String,
}

/// Reads `slug`'s after-action report from the store.
pub async fn build(
    store: &Store,
    scenario: &Scenario,
    export: &Export,
    slug: &str,
) -> Result<AfterAction, ReportsError> {
    let team =
        scenario.teams.iter().find(|t| t.slug == slug).ok_or_else(|| ReportsError::UnknownTeam(slug.to_owned()))?;
    let patches = store.patches_of(team.id, None, 10_000).await?;
    let reports = store.reports_of_team(team.id).await?;
    let mut deployed_minutes = Vec::new();
    let start = export.ticks.first().map(|t| t.opened_at);
    for t in scenario.teams.iter().filter(|t| t.role.defends()) {
        if let Some(m) = first_patch_minutes(&store.patches_of(t.id, None, 10_000).await?, start) {
            deployed_minutes.push(m);
        }
    }
    Ok(assemble(export, team.id, &patches, &reports, &deployed_minutes, scenario.drill.debrief_names))
}

/// The query of the report downloads.
#[derive(Debug, Deserialize)]
pub(crate) struct Download {
    /// `en` (the default) or `zh-HK`.
    lang: Option<String>,
    /// The team, by slug (the console's download).
    team: Option<String>,
}

/// `GET /api/portal/after-action?lang=en|zh-HK`: the team's own report, as an HTML download.
/// Closed while the public board is frozen: the report holds the standings.
pub(crate) async fn portal_download(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    Query(query): Query<Download>,
) -> Result<Response, ReportsError> {
    let team = crate::auth::team(&state, &headers).await?;
    if let Some(freeze) = state.store().board_freeze().await? {
        return Err(ReportsError::WrongState(format!(
            "the scoreboard is frozen after tick {}; your after-action report opens when the organisers show the final scores",
            freeze.through.0
        )));
    }
    let slug = state.scenario().team(team).ok_or(ReportsError::NotInScenario(team.0))?.slug.clone();
    download(&state, &slug, query.lang.as_deref()).await
}

/// `GET /api/admin/teams/after-action?team=SLUG&lang=en|zh-HK`: any team's report for the
/// organisers, as an HTML download.
pub(crate) async fn console_download(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    Query(query): Query<Download>,
) -> Result<Response, ReportsError> {
    crate::admin::organiser(&state, &headers).await?;
    let slug = query.team.as_deref().ok_or_else(|| ReportsError::BadRequest("say which team: ?team=SLUG".into()))?;
    download(&state, slug, query.lang.as_deref()).await
}

async fn download(state: &ReportsState, slug: &str, lang: Option<&str>) -> Result<Response, ReportsError> {
    let lang = match lang {
        None => Lang::En,
        Some(tag) => Lang::parse(tag)
            .ok_or_else(|| ReportsError::BadRequest(format!("lang {tag:?}: ask for `en` or `zh-HK`")))?,
    };
    let scenario = state.scenario();
    if !scenario.teams.iter().any(|t| t.slug == slug) {
        return Err(ReportsError::UnknownTeam(slug.to_owned()));
    }
    let Ok(_writing) = state.inner.after_actions.clone().try_acquire_owned() else {
        return Err(ReportsError::Busy { retry_after_secs: 10 });
    };
    let export = crate::export::build(state.store(), scenario).await?;
    let report = build(state.store(), scenario, &export, slug).await?;
    let file = format!("{slug}-after-action-{}.html", lang.tag());
    Ok(crate::pack::attachment(report.html(lang), "text/html; charset=utf-8", &file))
}

/// Minutes from `start` to the first deployed patch.
fn first_patch_minutes(patches: &[gongfang_core::PatchRecord], start: Option<DateTime<Utc>>) -> Option<f64> {
    let first = patches.iter().filter(|p| p.status == PatchStatus::Deployed).filter_map(|p| p.decided_at).min()?;
    Some((first - start?).num_seconds() as f64 / 60.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// The report from the export and the team's own records: pure, so its figures are tested
/// without a store. `field_first_patches` are the defending teams' minutes to their first
/// deployed patch; `name_teams` lists the field by name (`debrief_names`).
pub fn assemble(
    export: &Export,
    team: TeamId,
    patches: &[gongfang_core::PatchRecord],
    reports: &[ReportRecord],
    field_first_patches: &[f64],
    name_teams: bool,
) -> AfterAction {
    let mut names = BTreeMap::new();
    for t in &export.teams {
        names.insert(NameKey::Team(t.id), (t.name.clone(), t.name_zh.clone()));
    }
    for s in &export.services {
        names.insert(NameKey::Service(s.id), (s.name.clone(), s.name_zh.clone()));
    }
    let ticks = export.ticks.len() as u32;
    let services_of = |who: TeamId| -> Vec<ServiceRecord> {
        export
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut record = ServiceRecord {
                    service: s.id,
                    letters: String::new(),
                    ok: 0,
                    faulty: 0,
                    checker_errors: 0,
                    defended: 0,
                };
                for t in &export.ticks {
                    let letter = t.verdicts.iter().find(|v| v.team == who).and_then(|v| v.verdicts.chars().nth(i));
                    let defective = t.defective.iter().any(|c| c.team == who && c.service == s.id);
                    let verdict = match letter.and_then(Verdict::from_letter) {
                        Some(_) if defective => Verdict::CheckerError,
                        Some(v) => v,
                        None => continue,
                    };
                    record.letters.push(verdict.letter());
                    match verdict {
                        Verdict::Ok => record.ok += 1,
                        Verdict::CheckerError => record.checker_errors += 1,
                        _ => record.faulty += 1,
                    }
                    if t.defended.iter().any(|c| c.team == who && c.service == s.id) {
                        record.defended += 1;
                    }
                }
                record
            })
            .collect()
    };
    let faulty_share = |records: &[ServiceRecord]| -> f64 {
        let faulty: u32 = records.iter().map(|r| r.faulty).sum();
        let all = (records.len() as u32 * ticks).max(1);
        100.0 * f64::from(faulty) / f64::from(all)
    };
    let lost_by = |who: TeamId| -> u32 {
        export.ticks.iter().flat_map(|t| &t.captures).filter(|c| c.victim == who).count() as u32
    };
    let defends = export.teams.iter().find(|t| t.id == team).is_some_and(|t| t.role.defends());
    let services = if defends { services_of(team) } else { Vec::new() };

    let mut lost: BTreeMap<(ServiceId, StoreIdx), LostStore> = BTreeMap::new();
    let mut captured = BTreeMap::new();
    for t in &export.ticks {
        for c in &t.captures {
            if c.victim == team {
                let entry = lost.entry((c.service, c.store)).or_insert(LostStore {
                    service: c.service,
                    store: c.store,
                    flags: 0,
                    first: t.tick,
                    last: t.tick,
                    by: BTreeMap::new(),
                });
                entry.flags += 1;
                entry.last = t.tick;
                *entry.by.entry(c.attacker).or_default() += 1;
            }
            if c.attacker == team {
                *captured.entry((c.victim, c.service)).or_default() += 1;
            }
        }
    }
    let mut first_bloods = Vec::new();
    for s in &export.services {
        let first = export
            .ticks
            .iter()
            .flat_map(|t| t.captures.iter().map(move |c| (t.tick, c)))
            .find(|(_, c)| c.service == s.id);
        if let Some((tick, c)) = first.filter(|(_, c)| c.attacker == team || c.victim == team) {
            first_bloods.push((s.id, c.attacker, c.victim, tick));
        }
    }

    let defenders: Vec<TeamId> = export.teams.iter().filter(|t| t.role.defends()).map(|t| t.id).collect();
    let field_faulty: Vec<f64> = defenders.iter().map(|&d| faulty_share(&services_of(d))).collect();
    let field_lost: Vec<u32> = defenders.iter().map(|&d| lost_by(d)).collect();
    let field = Field {
        defenders: defenders.len(),
        faulty_median: median(field_faulty.clone()),
        faulty_best: field_faulty.iter().copied().fold(f64::INFINITY, f64::min).min(100.0),
        lost_median: median(field_lost.iter().map(|&l| f64::from(l)).collect()),
        lost_best: field_lost.iter().copied().min().unwrap_or(0),
        first_patch_median: (!field_first_patches.is_empty()).then(|| median(field_first_patches.to_vec())),
        named: if name_teams {
            defenders
                .iter()
                .zip(field_faulty.iter().zip(&field_lost))
                .map(|(&team, (&faulty, &lost))| FieldRow { team, faulty, lost })
                .collect()
        } else {
            Vec::new()
        },
    };
    let start = export.ticks.first().map(|t| t.opened_at);

    let patch_lines: Vec<PatchLine> = patches
        .iter()
        .map(|p| PatchLine {
            service: p.service,
            version: p.version,
            status: p.status,
            submitted_at: p.submitted_at,
            decided_at: p.decided_at,
            exploitable: p.exploit.map(|e| e == gongfang_core::Exposure::Exploitable),
        })
        .collect();
    // What each report is worth after every ruling: under the rule-based preset its finding's
    // score by the tables, not the points in the ruling (an export that cannot be scored
    // again falls back to those).
    let worth = export.report_worth().unwrap_or_default();
    let reports: Vec<ReportLine> = reports
        .iter()
        .map(|r| ReportLine {
            id: r.id,
            kind: r.report.kind,
            service: r.report.service,
            filed_at: r.filed_at,
            ruling: r
                .latest_ruling()
                .map(|x| (x.decision.valid, worth.get(&r.id).copied().unwrap_or(x.decision.points))),
        })
        .collect();

    let mut report = AfterAction {
        drill: (export.drill.name.clone(), export.drill.name_zh.clone()),
        team,
        team_name: names.get(&NameKey::Team(team)).cloned().unwrap_or_default(),
        ticks,
        services,
        lost: lost.into_values().collect(),
        captured,
        first_bloods,
        first_patch_minutes: first_patch_minutes(patches, start),
        patches: patch_lines,
        reports,
        standing: export.standings.iter().find(|s| s.team == team).cloned(),
        teams_ranked: export.standings.len(),
        field,
        recommendations: Vec::new(),
        names,
    };
    report.recommendations = recommend(&report);
    report
}

/// The recommendations the figures call for, each citing them; one that says so when none do.
fn recommend(r: &AfterAction) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let say = |out: &mut Vec<Recommendation>, en: String, zh: String| out.push(Recommendation { en, zh });
    for s in &r.services {
        let share = 100.0 * f64::from(s.faulty) / f64::from(r.ticks.max(1));
        if s.faulty > 0 && share >= 5.0 {
            let (en_name, zh_name) = r.name(NameKey::Service(s.service));
            say(
                &mut out,
                format!(
                    "Keep {en_name} available: it was down or answered wrongly in {} of {} ticks ({share:.0}%); \
                     the median team's services were in {:.0}% of theirs. Watch it between ticks and restart \
                     it before the checker comes back.",
                    s.faulty, r.ticks, r.field.faulty_median
                ),
                format!(
                    "保持{zh_name}可用：{} 個回合中有 {} 個回合服務中斷或回應錯誤（{share:.0}%）；全場中位數隊伍的服務則為 {:.0}%。\
                     請在回合之間監察服務，並在檢查程式再次檢查前重新啟動。",
                    r.ticks, s.faulty, r.field.faulty_median
                ),
            );
        }
    }
    for l in &r.lost {
        let (en_name, zh_name) = r.name(NameKey::Service(l.service));
        let attackers: Vec<(String, String)> = l.by.keys().map(|&a| r.name(NameKey::Team(a))).collect();
        let en_by = attackers.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join(", ");
        let zh_by = attackers.iter().map(|a| a.1.as_str()).collect::<Vec<_>>().join("、");
        say(
            &mut out,
            format!(
                "Close the weakness behind flag store {} of {en_name}: attackers took {} flags from it between \
                 tick {} and tick {} ({en_by}). Find the request that leaks it in your logs and patch it.",
                l.store.0, l.flags, l.first.0, l.last.0
            ),
            format!(
                "修補{zh_name}第 {} 個旗幟庫的弱點：攻擊者在第 {} 至第 {} 回合期間從中取得 {} 面旗幟（{zh_by}）。\
                 請從日誌找出洩漏旗幟的請求並加以修補。",
                l.store.0, l.first.0, l.last.0, l.flags
            ),
        );
    }
    let lost: u32 = r.lost.iter().map(|l| l.flags).sum();
    if lost > 0 && r.first_patch_minutes.is_none() {
        say(
            &mut out,
            format!("Patch sooner: {lost} flags were taken from your services and no patch of yours was deployed."),
            format!("請盡早修補：你隊的服務被取走 {lost} 面旗幟，但你隊沒有部署任何修補。"),
        );
    }
    if let (Some(minutes), Some(median)) = (r.first_patch_minutes, r.field.first_patch_median)
        && minutes > median
    {
        say(
            &mut out,
            format!(
                "Your first patch was deployed {minutes:.0} minutes into the drill; half the teams that \
                 patched did so within {median:.0} minutes. Prepare a patching routine before the drill."
            ),
            format!(
                "你隊的首個修補在演練開始後 {minutes:.0} 分鐘才部署；有修補的隊伍中，一半在 {median:.0} 分鐘內完成。\
                 請在演練前準備好修補流程。"
            ),
        );
    }
    let defence_reports = r.reports.iter().filter(|x| x.kind == ReportKind::Defence).count();
    if lost > 0 && defence_reports == 0 {
        say(
            &mut out,
            format!(
                "Report what you detect: {lost} flags were taken from you and your team filed no defence report. \
                 A defence report on an attack the judges recognise earns points."
            ),
            format!(
                "請匯報偵測到的攻擊：你隊被取走 {lost} 面旗幟，但沒有提交任何防守報告。評判確認的攻擊所對應的防守報告可以得分。"
            ),
        );
    }
    let invalid = r.reports.iter().filter(|x| x.ruling.is_some_and(|(valid, _)| !valid)).count();
    if invalid > 0 {
        say(
            &mut out,
            format!(
                "{invalid} of your {} reports were ruled invalid: give the time, the service and the evidence the \
                 judges can check against what the platform recorded.",
                r.reports.len()
            ),
            format!(
                "你隊 {} 份報告中有 {invalid} 份被裁定無效：請提供時間、服務，以及評判可與平台紀錄核對的證據。",
                r.reports.len()
            ),
        );
    }
    if out.is_empty() {
        let faulty: u32 = r.services.iter().map(|s| s.faulty).sum();
        say(
            &mut out,
            format!(
                "No weakness stood out: {faulty} faulty service ticks and {lost} flags lost over {} ticks. Keep \
                 the same routine, and rehearse it with new staff.",
                r.ticks
            ),
            format!(
                "未見明顯弱點：{} 個回合內，服務出錯 {faulty} 個回合，失去旗幟 {lost} 面。請保持現有做法，並與新同事演練。",
                r.ticks
            ),
        );
    }
    out
}

impl AfterAction {
    fn name(&self, key: NameKey) -> (String, String) {
        self.names.get(&key).cloned().unwrap_or_else(|| match key {
            NameKey::Team(t) => (format!("team {}", t.0), format!("隊伍 {}", t.0)),
            NameKey::Service(s) => (format!("service {}", s.0), format!("服務 {}", s.0)),
        })
    }

    fn named(&self, key: NameKey, lang: Lang) -> String {
        let (en, zh) = self.name(key);
        escape(&lang.pick(en, zh))
    }

    /// Flags lost over all the team's services.
    pub fn flags_lost(&self) -> u32 {
        self.lost.iter().map(|l| l.flags).sum()
    }

    /// The report as one HTML page in `lang`, styled for screen and A4 print, with no script and
    /// nothing from elsewhere.
    pub fn html(&self, lang: Lang) -> String {
        let tr = |en: &str, zh: &str| escape(&lang.pick(en.to_owned(), zh.to_owned()));
        let team = escape(&lang.pick(self.team_name.0.clone(), self.team_name.1.clone()));
        let drill = escape(&lang.pick(self.drill.0.clone(), self.drill.1.clone()));
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} · {team}</title><style>{STYLE}</style></head><body>",
            lang.tag(),
            tr("After-action report", "事後檢討報告")
        );
        let _ = write!(
            h,
            "<h1>{} <span>{team}</span></h1><p class=\"drill\">{drill}</p>",
            tr("After-action report", "事後檢討報告")
        );

        // Summary.
        let _ = write!(h, "<h2>{}</h2><table class=\"summary\"><tbody>", tr("Summary", "摘要"));
        let row = |h: &mut String, k: String, v: String| {
            let _ = write!(h, "<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>");
        };
        if let Some(s) = &self.standing {
            row(&mut h, tr("Final place", "最終排名"), format!("{} / {}", s.rank, self.teams_ranked));
            if let Some(red) = s.red_rank {
                row(&mut h, tr("Place among the teams that attack", "攻方排名"), red.to_string());
            }
            if let Some(blue) = s.blue_rank {
                row(&mut h, tr("Place among the teams that defend", "守方排名"), blue.to_string());
            }
            row(&mut h, tr("Total points", "總分"), format!("{:.2}", s.total));
        }
        row(&mut h, tr("Scored ticks", "已計分回合"), self.ticks.to_string());
        let first_patch = match self.first_patch_minutes {
            Some(m) => tr(&format!("{m:.0} minutes"), &format!("{m:.0} 分鐘")),
            None => tr("no patch deployed", "沒有部署修補"),
        };
        row(&mut h, tr("Time to the first deployed patch", "首個修補部署所需時間"), first_patch);
        row(&mut h, tr("Flags lost", "失去旗幟"), self.flags_lost().to_string());
        row(&mut h, tr("Flags captured", "奪得旗幟"), self.captured.values().sum::<u32>().to_string());
        let _ = write!(h, "</tbody></table>");

        // Recommendations first: what to do next.
        let _ = write!(h, "<h2>{}</h2><ol class=\"recommendations\">", tr("Recommendations", "建議"));
        for r in &self.recommendations {
            let _ = write!(h, "<li>{}</li>", escape(&lang.pick(r.en.clone(), r.zh.clone())));
        }
        let _ = write!(h, "</ol>");

        if !self.services.is_empty() {
            let _ = write!(
                h,
                "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
                tr("Availability, tick by tick", "各回合的服務可用情況"),
                tr("Service", "服務"),
                tr("OK", "正常"),
                tr("Down, mumble or corrupt", "中斷、異常或損壞"),
                tr("Checker errors (not counted against you)", "檢查程式錯誤（不扣分）"),
                tr("Defended ticks", "成功防守回合"),
                tr("Ticks", "回合"),
            );
            for s in &self.services {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"strip\">{}</td></tr>",
                    self.named(NameKey::Service(s.service), lang),
                    s.ok,
                    s.faulty,
                    s.checker_errors,
                    s.defended,
                    strip(&s.letters)
                );
            }
            let _ = write!(h, "</tbody></table>");
        }

        let _ = write!(h, "<h2>{}</h2>", tr("What attackers did against you", "攻擊者對你隊的行動"));
        if self.lost.is_empty() {
            let _ = write!(h, "<p>{}</p>", tr("No flag of yours was captured.", "你隊的旗幟未被奪取。"));
        } else {
            let _ = write!(
                h,
                "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
                tr("Service", "服務"),
                tr("Flag store", "旗幟庫"),
                tr("Flags lost", "失去旗幟"),
                tr("First", "首次"),
                tr("Last", "最後"),
                tr("Taken by", "奪取隊伍"),
            );
            for l in &self.lost {
                let by: Vec<String> =
                    l.by.iter().map(|(&a, n)| format!("{} ({n})", self.named(NameKey::Team(a), lang))).collect();
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    self.named(NameKey::Service(l.service), lang),
                    l.store.0,
                    l.flags,
                    tr(&format!("tick {}", l.first.0), &format!("第 {} 回合", l.first.0)),
                    tr(&format!("tick {}", l.last.0), &format!("第 {} 回合", l.last.0)),
                    by.join(", ")
                );
            }
            let _ = write!(h, "</tbody></table>");
        }
        if !self.captured.is_empty() {
            let _ = write!(h, "<h2>{}</h2><ul>", tr("Flags you captured", "你隊奪得的旗幟"));
            for (&(victim, service), n) in &self.captured {
                let _ = write!(
                    h,
                    "<li>{} · {}: {n}</li>",
                    self.named(NameKey::Team(victim), lang),
                    self.named(NameKey::Service(service), lang)
                );
            }
            let _ = write!(h, "</ul>");
        }
        if !self.first_bloods.is_empty() {
            let _ = write!(h, "<h2>{}</h2><ul>", tr("First bloods", "首殺"));
            for &(service, attacker, victim, tick) in &self.first_bloods {
                let _ = write!(
                    h,
                    "<li>{}: {} → {} ({})</li>",
                    self.named(NameKey::Service(service), lang),
                    self.named(NameKey::Team(attacker), lang),
                    self.named(NameKey::Team(victim), lang),
                    tr(&format!("tick {}", tick.0), &format!("第 {} 回合", tick.0))
                );
            }
            let _ = write!(h, "</ul>");
        }

        let _ = write!(h, "<h2>{}</h2>", tr("Patches", "修補"));
        if self.patches.is_empty() {
            let _ = write!(h, "<p>{}</p>", tr("Your team sent no patch.", "你隊沒有提交修補。"));
        } else {
            let _ = write!(
                h,
                "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
                tr("Service", "服務"),
                tr("Version", "版本"),
                tr("Outcome", "結果"),
                tr("Sent", "提交時間"),
                tr("Reference exploit", "參考攻擊程式"),
            );
            for p in &self.patches {
                let exploit = match p.exploitable {
                    Some(true) => tr("still works", "仍然有效"),
                    Some(false) => tr("stopped", "已被阻止"),
                    None => "–".to_owned(),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{exploit}</td></tr>",
                    self.named(NameKey::Service(p.service), lang),
                    p.version,
                    p.status.as_str(),
                    p.submitted_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
            let _ = write!(h, "</tbody></table>");
        }

        let _ = write!(h, "<h2>{}</h2>", tr("Reports and rulings", "報告及裁決"));
        if self.reports.is_empty() {
            let _ = write!(h, "<p>{}</p>", tr("Your team filed no report.", "你隊沒有提交報告。"));
        } else {
            let _ = write!(h, "<ul>");
            for r in &self.reports {
                let kind = match r.kind {
                    ReportKind::Attack => tr("attack report", "攻擊報告"),
                    ReportKind::Defence => tr("defence report", "防守報告"),
                };
                let ruling = match r.ruling {
                    None => tr("not ruled yet", "尚未裁決"),
                    Some((true, points)) => {
                        tr(&format!("ruled valid, {points} points"), &format!("裁定有效，{points} 分"))
                    }
                    Some((false, _)) => tr("ruled invalid", "裁定無效"),
                };
                let _ = write!(
                    h,
                    "<li>#{} {kind} · {}: {ruling}</li>",
                    r.id,
                    self.named(NameKey::Service(r.service), lang)
                );
            }
            let _ = write!(h, "</ul>");
        }

        let f = &self.field;
        let _ = write!(
            h,
            "<h2>{}</h2><p class=\"note\">{}</p><table><tbody>",
            tr("You and the field", "與全場比較"),
            if f.named.is_empty() {
                tr(
                    "Other teams appear only as figures: the median and the best of the teams that defend.",
                    "其他隊伍只以數字呈現：守方隊伍的中位數及最佳表現。",
                )
            } else {
                tr(
                    "The median and the best of the teams that defend, then each of them by name (the drill allows names).",
                    "守方隊伍的中位數及最佳表現，以及各隊的數字（本演練容許列出隊名）。",
                )
            }
        );
        let mine_faulty = {
            let faulty: u32 = self.services.iter().map(|s| s.faulty).sum();
            100.0 * f64::from(faulty) / f64::from((self.services.len() as u32 * self.ticks).max(1))
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td>{mine_faulty:.1}%</td><td>{} {:.1}% · {} {:.1}%</td></tr>",
            tr("Service ticks down, mumble or corrupt", "服務中斷、異常或損壞的回合比例"),
            tr("median", "中位數"),
            f.faulty_median,
            tr("best", "最佳"),
            f.faulty_best
        );
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{} {:.1} · {} {}</td></tr>",
            tr("Flags lost", "失去旗幟"),
            self.flags_lost(),
            tr("median", "中位數"),
            f.lost_median,
            tr("best", "最佳"),
            f.lost_best
        );
        if let Some(median) = f.first_patch_median {
            let mine = self.first_patch_minutes.map_or_else(|| tr("none", "沒有"), |m| format!("{m:.0}"));
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{mine}</td><td>{} {median:.0}</td></tr>",
                tr("Minutes to the first deployed patch", "首個修補部署所需分鐘"),
                tr("median", "中位數"),
            );
        }
        let _ = write!(h, "</tbody></table>");
        if !f.named.is_empty() {
            let _ = write!(
                h,
                "<table class=\"field\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
                tr("Team", "隊伍"),
                tr("Service ticks down, mumble or corrupt", "服務中斷、異常或損壞的回合比例"),
                tr("Flags lost", "失去旗幟"),
            );
            for r in &f.named {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{:.1}%</td><td>{}</td></tr>",
                    self.named(NameKey::Team(r.team), lang),
                    r.faulty,
                    r.lost
                );
            }
            let _ = write!(h, "</tbody></table>");
        }
        let _ = writeln!(
            h,
            "<footer>{}</footer></body></html>",
            tr("Gongfang · figures read from the drill's records", "攻防 · 數字取自演練紀錄")
        );
        h
    }
}

/// A tick strip: one coloured cell per tick, with the letters as text for those who cannot see
/// the colours.
fn strip(letters: &str) -> String {
    let mut s = String::from("<span class=\"ticks\" aria-hidden=\"true\">");
    for c in letters.chars() {
        let _ = write!(s, "<i class=\"v{c}\"></i>");
    }
    let _ = write!(s, "</span><code>{}</code>", escape(letters));
    s
}

const STYLE: &str = "@page{size:A4;margin:14mm}\
body{font-family:'Noto Sans','Noto Sans CJK TC',sans-serif;color:#111;margin:0 auto;max-width:52rem;line-height:1.45;font-size:11pt}\
h1{font-size:18pt;margin:0 0 .2rem}h1 span{display:block;font-size:14pt;color:#333}\
.drill{color:#444;margin:0 0 1rem}h2{font-size:13pt;margin:1.2rem 0 .4rem;border-bottom:1px solid #999;break-after:avoid}\
table{border-collapse:collapse;width:100%;margin:.3rem 0}th,td{border:1px solid #bbb;padding:.25rem .4rem;text-align:left;vertical-align:top}\
th{background:#eee}.summary th{width:45%}.note{color:#444;font-size:10pt}\
.recommendations li{margin:.3rem 0}.strip code{display:block;font-size:7pt;color:#555;word-break:break-all}\
.ticks{display:flex;flex-wrap:wrap;gap:1px}.ticks i{display:inline-block;width:5px;height:10px}\
.vo{background:#22a34a}.vm{background:#d4a017}.vc{background:#8b5cf6}.vd{background:#dc2626}.ve{background:#94a3b8}\
footer{margin-top:1.5rem;color:#666;font-size:9pt}\
@media print{.ticks i{print-color-adjust:exact;-webkit-print-color-adjust:exact}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn names_are_escaped_in_the_page() {
        assert_eq!(escape("<b>\"x\" & y</b>"), "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;");
    }

    #[test]
    fn languages_parse_by_their_tags() {
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("zh-HK"), Some(Lang::ZhHk));
        assert_eq!(Lang::parse("zh-TW"), None);
    }
}
