//! Injects: tasks the organisers post to teams while a drill runs ("file your incident
//! notification for the breach of the consent gateway by 14:00"), each with a deadline and a
//! rubric; teams answer once, an answer after the deadline is marked late, and judges grade
//! each answer against the rubric. What an inject, an answer and a grade may hold is checked
//! here; the store keeps them and the reports crate serves them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scenario::Role;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest task text, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 8000;
/// Longest grading reason, in characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// Most criteria one rubric may have.
pub const MAX_CRITERIA: usize = 10;
/// Most points one criterion may be worth.
pub const MAX_CRITERION_POINTS: u32 = 1000;

crate::named_enum! {
    /// Which teams an inject is for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum InjectAudience {
        /// Every team.
        All = "all",
        /// Teams that attack (red, and symmetric teams).
        Attackers = "attackers",
        /// Teams that defend (blue, and symmetric teams).
        Defenders = "defenders",
    }
}

impl InjectAudience {
    /// Whether a team with this role is asked.
    pub fn includes(self, role: Role) -> bool {
        match self {
            InjectAudience::All => true,
            InjectAudience::Attackers => role.attacks(),
            InjectAudience::Defenders => role.defends(),
        }
    }
}

/// One criterion of an inject's rubric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// What is graded, in English.
    pub name: String,
    /// The same in Hong Kong Chinese.
    #[serde(default)]
    pub name_zh: Option<String>,
    /// The most points a judge may give on it.
    pub max_points: u32,
}

/// An inject as organisers post it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectDraft {
    pub title: String,
    #[serde(default)]
    pub title_zh: Option<String>,
    /// The task, in English.
    pub body: String,
    #[serde(default)]
    pub body_zh: Option<String>,
    pub audience: InjectAudience,
    /// Answers after it are accepted and marked late.
    pub deadline: DateTime<Utc>,
    pub rubric: Vec<Criterion>,
}

/// A judge's grade of one answer: points per criterion (by its English name; criteria left out
/// score 0) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectGrade {
    pub points: BTreeMap<String, u32>,
    #[serde(default)]
    pub reason: String,
}

impl InjectGrade {
    pub fn total(&self) -> u64 {
        self.points.values().map(|p| u64::from(*p)).sum()
    }
}

/// What is wrong with an inject, an answer or a grade: one sentence that says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InjectError(pub String);

fn bounded(field: &str, text: &str, max: usize, required: bool) -> Result<String, InjectError> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(InjectError(format!("`{field}` is empty; write it")));
    }
    if text.chars().count() > max {
        return Err(InjectError(format!("`{field}` is longer than {max} characters; shorten it")));
    }
    Ok(text.to_owned())
}

fn optional(field: &str, text: Option<&str>, max: usize) -> Result<Option<String>, InjectError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => bounded(field, t, max, true).map(Some),
    }
}

/// Checks an inject posted at `now`: texts present and bounded (the Chinese ones optional), a
/// deadline still ahead, a rubric of 1 to [`MAX_CRITERIA`] criteria with distinct names, each
/// worth 1 to [`MAX_CRITERION_POINTS`] points. Answers the inject trimmed.
pub fn check_inject(d: &InjectDraft, now: DateTime<Utc>) -> Result<InjectDraft, InjectError> {
    if d.deadline <= now {
        return Err(InjectError(format!(
            "the deadline {} has passed (it is {} now); give a time ahead, e.g. in an hour",
            d.deadline.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    if d.rubric.is_empty() || d.rubric.len() > MAX_CRITERIA {
        return Err(InjectError(format!(
            "the rubric has {} criteria; give 1 to {MAX_CRITERIA}, each with a `name` and `max_points`",
            d.rubric.len()
        )));
    }
    let mut rubric = Vec::with_capacity(d.rubric.len());
    for c in &d.rubric {
        let name = bounded("rubric name", &c.name, MAX_TITLE_CHARS, true)?;
        if rubric.iter().any(|x: &Criterion| x.name == name) {
            return Err(InjectError(format!("the rubric names `{name}` twice; give each criterion its own name")));
        }
        if !(1..=MAX_CRITERION_POINTS).contains(&c.max_points) {
            return Err(InjectError(format!(
                "`{name}` is worth {} points; give it 1 to {MAX_CRITERION_POINTS}",
                c.max_points
            )));
        }
        let name_zh = optional("rubric name_zh", c.name_zh.as_deref(), MAX_TITLE_CHARS)?;
        rubric.push(Criterion { name, name_zh, max_points: c.max_points });
    }
    Ok(InjectDraft {
        title: bounded("title", &d.title, MAX_TITLE_CHARS, true)?,
        title_zh: optional("title_zh", d.title_zh.as_deref(), MAX_TITLE_CHARS)?,
        body: bounded("body", &d.body, MAX_BODY_CHARS, true)?,
        body_zh: optional("body_zh", d.body_zh.as_deref(), MAX_BODY_CHARS)?,
        audience: d.audience,
        deadline: d.deadline,
        rubric,
    })
}

/// Checks an answer's text; answers it trimmed.
pub fn check_answer(text: &str) -> Result<String, InjectError> {
    bounded("text", text, MAX_ANSWER_CHARS, true)
}

/// Checks a grade against the inject's rubric: every criterion named is in it and given at most
/// its points. Answers the grade with its reason trimmed.
pub fn check_grade(rubric: &[Criterion], g: &InjectGrade) -> Result<InjectGrade, InjectError> {
    for (name, points) in &g.points {
        let Some(c) = rubric.iter().find(|c| &c.name == name) else {
            let names: Vec<&str> = rubric.iter().map(|c| c.name.as_str()).collect();
            return Err(InjectError(format!("the rubric has no criterion `{name}`; it has: {}", names.join(", "))));
        };
        if *points > c.max_points {
            return Err(InjectError(format!(
                "`{name}` is worth at most {} points; {points} is too many",
                c.max_points
            )));
        }
    }
    Ok(InjectGrade { points: g.points.clone(), reason: bounded("reason", &g.reason, MAX_REASON_CHARS, false)? })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
    }

    fn draft() -> InjectDraft {
        InjectDraft {
            title: " Incident notification ".into(),
            title_zh: Some(" ".into()),
            body: "File your notification of the consent gateway breach.".into(),
            body_zh: None,
            audience: InjectAudience::Defenders,
            deadline: now() + chrono::Duration::hours(2),
            rubric: vec![
                Criterion { name: "timeliness".into(), name_zh: Some("時效".into()), max_points: 10 },
                Criterion { name: "completeness".into(), name_zh: None, max_points: 20 },
            ],
        }
    }

    #[test]
    fn injects_are_checked_and_trimmed() {
        let ok = check_inject(&draft(), now()).unwrap();
        assert_eq!((ok.title.as_str(), ok.title_zh.as_deref()), ("Incident notification", None));
        let late = InjectDraft { deadline: now(), ..draft() };
        assert!(check_inject(&late, now()).unwrap_err().0.contains("has passed"));
        let none = InjectDraft { rubric: vec![], ..draft() };
        assert!(check_inject(&none, now()).unwrap_err().0.contains("give 1 to 10"));
        let mut twice = draft();
        twice.rubric[1].name = "timeliness".into();
        assert!(check_inject(&twice, now()).unwrap_err().0.contains("twice"));
        let mut zero = draft();
        zero.rubric[0].max_points = 0;
        assert!(check_inject(&zero, now()).unwrap_err().0.contains("give it 1 to 1000"));
        let empty = InjectDraft { body: "  ".into(), ..draft() };
        assert!(check_inject(&empty, now()).unwrap_err().0.contains("`body` is empty"));
    }

    #[test]
    fn grades_stay_within_the_rubric() {
        let rubric = check_inject(&draft(), now()).unwrap().rubric;
        let grade = |pairs: &[(&str, u32)]| InjectGrade {
            points: pairs.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect(),
            reason: " on time ".into(),
        };
        let ok = check_grade(&rubric, &grade(&[("timeliness", 10), ("completeness", 5)])).unwrap();
        assert_eq!((ok.total(), ok.reason.as_str()), (15, "on time"));
        assert!(check_grade(&rubric, &grade(&[("timeliness", 11)])).unwrap_err().0.contains("at most 10"));
        let unknown = check_grade(&rubric, &grade(&[("style", 1)])).unwrap_err().0;
        assert!(unknown.contains("no criterion `style`") && unknown.contains("timeliness, completeness"), "{unknown}");
        assert!(InjectAudience::Defenders.includes(Role::Both) && !InjectAudience::Defenders.includes(Role::Attacker));
        assert!(InjectAudience::Attackers.includes(Role::Attacker) && InjectAudience::All.includes(Role::Defender));
    }
}
