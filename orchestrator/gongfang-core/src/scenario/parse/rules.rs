//! The rule-based preset's tables in `[reports]` (`scoring = "rules"`): attack types and their
//! caps per unit, key units, repeat factors, each unit's points, the defence rubric and the
//! defence caps. Tables left out get the preset's defaults.

use toml::de::DeValue;

use super::sections::MAX_REPORT_POINTS;
use super::{Tab, Val, Walker};
use crate::scenario::model::{AttackType, Criterion, KeyUnit, Names, ReportScoring, RulePreset, Team};
use crate::scenario::problem::did_you_mean;

pub(super) const RULE_KEYS: &[&str] = &[
    "attack_type",
    "key_units",
    "repeat_factors",
    "unit_points",
    "rubric",
    "max_defence_share",
    "max_counted_defences",
    "max_bonus",
    "capture_points",
];
const ATTACK_TYPE_KEYS: &[&str] = &["slug", "name", "name_zh", "points", "max_per_unit"];
const CRITERION_KEYS: &[&str] = &["slug", "name", "name_zh", "max_share"];
/// Most attack types, and most rubric criteria: judges pick from these lists.
const MAX_ENTRIES: usize = 32;
/// Most repeat factors.
const MAX_REPEATS: usize = 20;
/// Largest key-unit multiplier, in percent.
const MAX_MULTIPLIER: u32 = 1000;
/// Highest `max_counted_defences`: as high as the filing limit may go.
const MAX_COUNTED_DEFENCES: u32 = 100_000;

impl Walker<'_, '_> {
    /// The preset's tables: `Some` with defaults for the tables left out when `scoring` is
    /// `"rules"`; `None` inside for any other scoring, where each of the preset's keys is
    /// refused. A `scoring` of `None` (itself wrong, and reported) still has the tables checked,
    /// so the organiser sees every mistake at once. `teams` are the teams read so far, of
    /// `all_teams` entries.
    pub(super) fn rule_preset(
        &mut self,
        t: &Tab<'_, '_>,
        scoring: Option<ReportScoring>,
        teams: &[Team],
        all_teams: usize,
    ) -> Option<Option<RulePreset>> {
        if let Some(scoring) = scoring
            && scoring != ReportScoring::Rules
        {
            let mut ok = true;
            for key in RULE_KEYS {
                if let Some(at) = self.key_span(t, key) {
                    self.c.error(
                        &at,
                        format!("`{key}` belongs to the rule-based preset, which scoring = \"{scoring}\" does not use"),
                        Some(format!("set scoring = \"rules\" to score reports by the preset, or remove `{key}`")),
                    );
                    ok = false;
                }
            }
            return ok.then_some(None);
        }
        let d = RulePreset::default();
        let attack_types = self.attack_types(t, d.attack_types);
        let key_units = self.key_units(t, teams, all_teams);
        let repeat_factors = self.repeat_factors(t, d.repeat_factors);
        let unit_points = self.int_meaning(
            t,
            "unit_points",
            Some(d.unit_points),
            1..=MAX_REPORT_POINTS,
            Some("the most points ruled attacks may take from one defending unit, e.g. unit_points = 1000"),
        );
        let rubric = self.rubric(t, d.rubric);
        let max_defence_share = self.int_meaning(
            t,
            "max_defence_share",
            Some(d.max_defence_share),
            1..=100,
            Some("a percentage of the points the attack cost, e.g. max_defence_share = 80"),
        );
        let max_counted_defences = self.int_meaning(
            t,
            "max_counted_defences",
            Some(d.max_counted_defences),
            1..=MAX_COUNTED_DEFENCES,
            Some("how many of one team's defence results score, e.g. max_counted_defences = 20"),
        );
        let max_bonus = self.int_meaning(
            t,
            "max_bonus",
            Some(d.max_bonus),
            0..=MAX_REPORT_POINTS,
            Some("the most bonus points one team may earn, e.g. max_bonus = 100; 0 gives none"),
        );
        let capture_points = self.int_meaning(
            t,
            "capture_points",
            Some(d.capture_points),
            0..=MAX_REPORT_POINTS,
            Some("what a recorded capture counts as costing its victim, e.g. capture_points = 100"),
        );
        Some(Some(RulePreset {
            attack_types: attack_types?,
            key_units: key_units?,
            repeat_factors: repeat_factors?,
            unit_points: unit_points?,
            rubric: rubric?,
            max_defence_share: max_defence_share?,
            max_counted_defences: max_counted_defences?,
            max_bonus: max_bonus?,
            capture_points: capture_points?,
        }))
    }

    /// `[[reports.attack_type]]`, or `default` when there is none.
    fn attack_types(&mut self, t: &Tab<'_, '_>, default: Vec<AttackType>) -> Option<Vec<AttackType>> {
        let Some((entries, mut ok)) = self.entries(t, "attack_type") else { return Some(default) };
        let mut out = Vec::new();
        for e in &entries {
            self.unknown_keys(e, ATTACK_TYPE_KEYS, "keys");
            let slug = self.slug(e, "slug", true);
            let names = self.entry_names(e, "name = \"Perimeter breach\"");
            let points = self.int_meaning(
                e,
                "points",
                None,
                1..=MAX_REPORT_POINTS,
                Some("what a first finding of this type scores, e.g. points = 100"),
            );
            let max_per_unit = self.int_meaning(
                e,
                "max_per_unit",
                None,
                1..=MAX_REPORT_POINTS,
                Some("the most points findings of this type may take from one unit, e.g. max_per_unit = 200"),
            );
            if let (Some(points), Some(max)) = (points, max_per_unit)
                && max < points
            {
                self.c.error(
                    &e.get("max_per_unit").expect("read").span(),
                    format!(
                        "`max_per_unit` ({max}) is below `points` ({points}), so not even a first finding of this \
                         type could score in full"
                    ),
                    Some(format!("raise max_per_unit to at least {points}, or lower points")),
                );
                ok = false;
            }
            match (slug.flatten(), names, points, max_per_unit) {
                (Some(slug), Some(name), Some(points), Some(max_per_unit)) => {
                    out.push(AttackType { slug, name, points, max_per_unit })
                }
                _ => ok = false,
            }
        }
        let slugs: Vec<&str> = out.iter().map(|a| a.slug.as_str()).collect();
        ok &= self.unique_slugs(&entries, &slugs, "attack_type");
        ok.then_some(out)
    }

    /// `[[reports.rubric]]`, or `default` when there is none.
    fn rubric(&mut self, t: &Tab<'_, '_>, default: Vec<Criterion>) -> Option<Vec<Criterion>> {
        let Some((entries, mut ok)) = self.entries(t, "rubric") else { return Some(default) };
        let mut out = Vec::new();
        for e in &entries {
            self.unknown_keys(e, CRITERION_KEYS, "keys");
            let slug = self.slug(e, "slug", true);
            let names = self.entry_names(e, "name = \"Detection: timeliness\"");
            let max_share = self.int_meaning(
                e,
                "max_share",
                None,
                1..=100,
                Some("a percentage of the points the attack cost, e.g. max_share = 10"),
            );
            match (slug.flatten(), names, max_share) {
                (Some(slug), Some(name), Some(max_share)) => out.push(Criterion { slug, name, max_share }),
                _ => ok = false,
            }
        }
        let slugs: Vec<&str> = out.iter().map(|c| c.slug.as_str()).collect();
        ok &= self.unique_slugs(&entries, &slugs, "rubric");
        ok.then_some(out)
    }

    /// An entry's `name` and optional `name_zh` (the English name when absent).
    fn entry_names(&mut self, e: &Tab<'_, '_>, example: &str) -> Option<Names> {
        let name = self.string(e, "name", true, example);
        let name_zh = self.string(e, "name_zh", false, "");
        let en = name.flatten()?;
        Some(Names { zh: name_zh.flatten().unwrap_or_else(|| en.clone()), en })
    }

    /// Reports each slug listed twice among the entries, at its second entry. `slugs` are the
    /// slugs of the entries read whole; an entry with a broken slug is reported already.
    fn unique_slugs(&mut self, entries: &[Tab<'_, '_>], slugs: &[&str], key: &str) -> bool {
        let mut seen: Vec<&str> = Vec::new();
        let mut ok = true;
        for e in entries {
            let Some(v) = e.get("slug") else { continue };
            let Some(slug) = v.get_ref().as_str() else { continue };
            if !slugs.contains(&slug) {
                continue;
            }
            if seen.contains(&slug) {
                self.c.error(
                    &v.span(),
                    format!("{} has the slug \"{slug}\" of an earlier [[reports.{key}]]", e.name),
                    Some("give each entry a slug of its own".into()),
                );
                ok = false;
            } else {
                seen.push(slug);
            }
        }
        ok
    }

    /// The entries of the array of tables `[[reports.KEY]]` that are tables, and whether all
    /// are (the others are reported); `None` when the key is absent.
    fn entries<'t, 'i>(&mut self, t: &Tab<'t, 'i>, key: &str) -> Option<(Vec<Tab<'t, 'i>>, bool)> {
        let v = t.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.c.error(
                &v.span(),
                format!("`{key}` must be an array of tables, found {}", v.get_ref().type_str()),
                Some(format!("write each entry as a [[reports.{key}]] section")),
            );
            return Some((Vec::new(), false));
        };
        if items.is_empty() {
            self.c.error(
                &v.span(),
                format!("`{key}` is empty"),
                Some(format!("add [[reports.{key}]] entries, or remove `{key}` to use the preset's own")),
            );
            return Some((Vec::new(), false));
        }
        if items.len() > MAX_ENTRIES {
            self.c.error(
                &v.span(),
                format!("`{key}` has {} entries, more than {MAX_ENTRIES}", items.len()),
                Some("judges pick from this list: merge entries that score alike".into()),
            );
            return Some((Vec::new(), false));
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(table) => {
                    out.push(Tab { table, at: item.span(), name: format!("[[reports.{key}]] #{}", i + 1) })
                }
                other => {
                    self.c.error(
                        &item.span(),
                        format!("each `{key}` entry must be a table, found {}", other.type_str()),
                        Some(format!("write each entry as a [[reports.{key}]] section")),
                    );
                    ok = false;
                }
            }
        }
        Some((out, ok))
    }

    /// `[reports.key_units]`: a defending team's slug = its multiplier in percent.
    fn key_units(&mut self, t: &Tab<'_, '_>, teams: &[Team], all_teams: usize) -> Option<Vec<KeyUnit>> {
        let Some(v) = t.get("key_units") else { return Some(Vec::new()) };
        let DeValue::Table(table) = v.get_ref() else {
            self.wrong_type(
                v,
                "key_units",
                "a table",
                Some("write it as a [reports.key_units] section, one line per unit, e.g. ddb = 150".into()),
            );
            return None;
        };
        let slugs: Vec<&str> = teams.iter().map(|t| t.slug.as_str()).collect();
        let mut out = Vec::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let slug: &str = key.get_ref();
            let multiplier = self.multiplier(slug, value);
            match teams.iter().find(|t| t.slug == slug) {
                // A team whose own entry is broken is reported there.
                None if teams.len() < all_teams => ok = false,
                None => {
                    let help = match did_you_mean(slug, &slugs) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "use the slug of a [[team]] that defends".to_owned(),
                    };
                    self.c.error(
                        &key.span(),
                        format!("`key_units` names `{slug}`, which is no team's slug"),
                        Some(help),
                    );
                    ok = false;
                }
                Some(team) if !team.role.defends() => {
                    self.c.error(
                        &key.span(),
                        format!(
                            "`key_units` names `{slug}`, a team with role \"{}\": it runs no systems to weight",
                            team.role
                        ),
                        Some("name only teams with role \"defender\" or \"both\"".into()),
                    );
                    ok = false;
                }
                Some(team) => match multiplier {
                    Some(multiplier) => out.push(KeyUnit { team: team.id, multiplier }),
                    None => ok = false,
                },
            }
        }
        out.sort_by_key(|k| k.team);
        ok.then_some(out)
    }

    /// One key unit's multiplier: a whole percentage from 1 to [`MAX_MULTIPLIER`].
    fn multiplier(&mut self, slug: &str, v: &Val<'_>) -> Option<u32> {
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(
                v,
                &format!("key_units.{slug}"),
                "an integer",
                Some(format!("write the multiplier in percent without quotes, e.g. {slug} = 150")),
            );
            return None;
        };
        let n = u32::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| (1..=MAX_MULTIPLIER).contains(n));
        if n.is_none() {
            self.c.error(
                &v.span(),
                format!(
                    "the multiplier of `{slug}` in `key_units` must be a percentage between 1 and {MAX_MULTIPLIER}"
                ),
                Some(
                    "100 counts the unit like any other; 150 makes its findings and caps worth one and a half times"
                        .into(),
                ),
            );
        }
        n
    }

    /// `repeat_factors`: percentages from 1 to 100, none above the one before.
    fn repeat_factors(&mut self, t: &Tab<'_, '_>, default: Vec<u32>) -> Option<Vec<u32>> {
        let Some(v) = t.get("repeat_factors") else { return Some(default) };
        let example = "repeat_factors = [100, 70, 40]";
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, "repeat_factors", "an array of percentages", Some(format!("write it like {example}")));
            return None;
        };
        if items.is_empty() {
            self.c.error(
                &v.span(),
                "`repeat_factors` is empty, so no finding could score",
                Some(format!("list at least the first finding's factor, e.g. {example}")),
            );
            return None;
        }
        if items.len() > MAX_REPEATS {
            self.c.error(
                &v.span(),
                format!("`repeat_factors` lists {} factors, more than {MAX_REPEATS}", items.len()),
                Some("findings past the end of the list score nothing: list only the factors above 0".into()),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let Some(i) = item.get_ref().as_integer() else {
                self.c.error(
                    &item.span(),
                    format!("`repeat_factors` holds whole percentages, found {}", item.get_ref().type_str()),
                    Some(format!("write numbers without quotes or %, e.g. {example}")),
                );
                ok = false;
                continue;
            };
            let n = u32::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| (1..=100).contains(n));
            match (n, out.last()) {
                (None, _) => {
                    self.c.error(
                        &item.span(),
                        format!("`repeat_factors` holds percentages from 1 to 100, not {}", i.as_str()),
                        Some("findings past the end of the list score nothing: leave zeros out".into()),
                    );
                    ok = false;
                }
                (Some(n), Some(&before)) if n > before => {
                    self.c.error(
                        &item.span(),
                        format!("`repeat_factors` rises from {before} to {n}: a repeat never scores more than the finding before it"),
                        Some(format!("list the factors from the first finding down, e.g. {example}")),
                    );
                    ok = false;
                }
                (Some(n), _) => out.push(n),
            }
        }
        ok.then_some(out)
    }
}
