//! The `[patches]` table: limits of submitted patches and their builds, the checks a patch
//! passes before deployment, and how patching counts; and a service's `fixed` files.

use toml::de::DeValue;

use super::units::parse_bytes;
use super::{Tab, Walker};
use crate::scenario::model::{PatchRules, PatchScoring};

pub(super) const PATCH_KEYS: &[&str] = &[
    "max_size",
    "max_source",
    "max_files",
    "build_timeout",
    "build_memory",
    "build_cpus",
    "max_builds",
    "max_queued",
    "max_per_team",
    "rounds",
    "start_timeout",
    "scoring",
    "points",
];

impl Walker<'_, '_> {
    pub(super) fn patches(&mut self, t: &Tab<'_, '_>) -> Option<PatchRules> {
        self.unknown_keys(t, PATCH_KEYS, "keys");
        let d = PatchRules::default();
        let max_size = self.size(t, "max_size", d.max_size, (1 << 10, 64 << 20), "\"1MiB\"");
        let max_source = self.size(t, "max_source", d.max_source, (1 << 10, 1 << 30), "\"16MiB\"");
        let max_files = self.int(t, "max_files", Some(d.max_files), 1..=100_000);
        let build_timeout = self.duration(t, "build_timeout", Some(d.build_timeout));
        // The engine's build API takes memory as a 32-bit number and a CPU quota of at least 1 ms
        // per 100 ms.
        let build_memory = self.size(t, "build_memory", d.build_memory, (64 << 20, 2047 << 20), "\"1GiB\"");
        let build_cpus = self.number(t, "build_cpus", d.build_cpus, (0.01, 64.0));
        let max_builds = self.int(t, "max_builds", Some(d.max_builds), 1..=64);
        let max_queued = self.int(t, "max_queued", Some(d.max_queued), 1..=100);
        let max_per_team = self.int(t, "max_per_team", Some(d.max_per_team), 1..=100_000);
        let rounds = self.int(t, "rounds", Some(d.rounds), 1..=20);
        let start_timeout = self.duration(t, "start_timeout", Some(d.start_timeout));
        let scoring = self
            .choice(t, "scoring", PatchScoring::NAMES, Some(d.scoring.as_str()))
            .map(|s| PatchScoring::from_name(&s).expect("choice returns a listed name"));
        let points = self.number(t, "points", d.points, (0.0, 10_000.0));
        Some(PatchRules {
            max_size: max_size?,
            max_source: max_source?,
            max_files: max_files?,
            build_timeout: build_timeout?.expect("defaulted"),
            build_memory: build_memory?,
            build_cpus: build_cpus?,
            max_builds: max_builds?,
            max_queued: max_queued?,
            max_per_team: max_per_team?,
            rounds: rounds?,
            start_timeout: start_timeout?.expect("defaulted"),
            scoring: scoring?,
            points: points?,
        })
    }

    /// A size written with a unit, between `range.0` and `range.1` bytes.
    fn size(&mut self, t: &Tab<'_, '_>, key: &str, default: u64, range: (u64, u64), example: &str) -> Option<u64> {
        let Some(s) = self.string(t, key, false, &format!("{key} = {example}"))? else { return Some(default) };
        match parse_bytes(&s).filter(|b| (range.0..=range.1).contains(b)) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get(key).expect("read").span(),
                    format!("`{key}` \"{s}\" is not a size between {} and {}", show_size(range.0), show_size(range.1)),
                    Some(format!("write a number with a unit: KiB, MiB or GiB, e.g. {key} = {example}")),
                );
                None
            }
        }
    }

    /// A number (integer or not) above `range.0` and at most `range.1`.
    fn number(&mut self, t: &Tab<'_, '_>, key: &str, default: f64, range: (f64, f64)) -> Option<f64> {
        let Some(v) = t.get(key) else { return Some(default) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            _ => {
                self.wrong_type(v, key, "a number", Some(format!("write it without quotes, e.g. {key} = {default}")));
                return None;
            }
        };
        match n.filter(|n| n.is_finite() && *n >= range.0 && *n <= range.1 && *n > 0.0) {
            Some(n) => Some(n),
            None => {
                let least = if range.0 > 0.0 { format!("at least {}", range.0) } else { "more than 0".to_owned() };
                self.c.error(&v.span(), format!("`{key}` must be {least} and at most {}", range.1), None);
                None
            }
        }
    }

    /// A service's `fixed`: paths inside its build folder, relative, without `.` or `..`.
    pub(super) fn fixed_files(&mut self, t: &Tab<'_, '_>) -> Option<Vec<String>> {
        let Some(v) = t.get("fixed") else { return Some(Vec::new()) };
        let example = "fixed = [\"run.sh\", \"config/\"]";
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, "fixed", "an array of paths", Some(format!("write it like {example}")));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let path = item.get_ref().as_str().map(|s| s.trim_end_matches('/'));
            match path.filter(|p| crate::patch::inside_folder(p)) {
                Some(p) => out.push(p.to_owned()),
                None => {
                    self.c.error(
                        &item.span(),
                        "each path in `fixed` must be a file or folder inside the build folder",
                        Some(format!("write paths relative to the build folder, without `.` or `..`: {example}")),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn show_size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b => format!("{}KiB", b >> 10),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::{AssumeEverythingExists, PatchRules, PatchScoring, parse};

    const MINIMAL: &str = include_str!("../../../tests/scenarios/valid_minimal.toml");

    use super::super::parsed;

    #[test]
    fn without_the_table_patching_is_not_scored_and_limits_are_the_defaults() {
        let s = parsed("").unwrap();
        assert_eq!(s.patches, PatchRules::default());
        assert_eq!(s.patches.scoring, PatchScoring::None);
        assert!(s.services.iter().all(|svc| svc.fixed.is_empty()));
    }

    #[test]
    fn every_key_can_be_set() {
        let s = parsed(
            "[patches]\nmax_size = \"256KiB\"\nmax_source = \"4MiB\"\nmax_files = 50\nbuild_timeout = \"90s\"\n\
             build_memory = \"256MiB\"\nbuild_cpus = 0.5\nmax_builds = 2\nmax_queued = 3\nmax_per_team = 9\nrounds = 5\n\
             start_timeout = \"10s\"\nscoring = \"defended-ticks\"\npoints = 2.5\n",
        )
        .unwrap();
        let p = s.patches;
        assert_eq!((p.max_size, p.max_source, p.max_files), (256 << 10, 4 << 20, 50));
        assert_eq!((p.build_timeout, p.build_memory, p.build_cpus), (Duration::from_secs(90), 256 << 20, 0.5));
        assert_eq!((p.max_builds, p.max_queued, p.max_per_team, p.rounds), (2, 3, 9, 5));
        assert_eq!((p.start_timeout, p.scoring, p.points), (Duration::from_secs(10), PatchScoring::DefendedTicks, 2.5));
    }

    #[test]
    fn bad_values_are_named_with_a_hint() {
        let e = parsed("[patches]\nmax_size = \"2GiB\"\n").unwrap_err();
        assert!(e.contains("`max_size` \"2GiB\" is not a size between 1KiB and 64MiB"), "{e}");
        let e = parsed("[patches]\nscoring = \"cgc\"\n").unwrap_err();
        assert!(e.contains("unknown scoring \"cgc\""), "{e}");
        let e = parsed("[patches]\nbuild_cpus = 0\n").unwrap_err();
        assert!(e.contains("`build_cpus` must be at least 0.01"), "{e}");
        let e = parsed("[patches]\npoints = 0\n").unwrap_err();
        assert!(e.contains("`points` must be more than 0"), "{e}");
        let e = parsed("[patches]\nbuild_memory = \"4GiB\"\n").unwrap_err();
        assert!(e.contains("between 64MiB and 2047MiB"), "{e}");
        let e = parsed("[patches]\nrounds = 0\n").unwrap_err();
        assert!(e.contains("rounds"), "{e}");
        let e = parsed("[patches]\nbuild = \"fast\"\n").unwrap_err();
        assert!(e.contains("build"), "{e}");
    }

    #[test]
    fn fixed_paths_stay_inside_the_build_folder() {
        let with = |fixed: &str| MINIMAL.replacen("[[service]]\n", &format!("[[service]]\nfixed = {fixed}\n"), 1);
        let ok = parse(&with("[\"run.sh\", \"conf/\"]"), Path::new("s.toml"), &AssumeEverythingExists).unwrap();
        assert_eq!(ok.services[0].fixed, vec!["run.sh".to_owned(), "conf".to_owned()]);
        for bad in ["[\"../etc\"]", "[\"/run.sh\"]", "[\"a/./b\"]", "[\"\"]", "\"run.sh\""] {
            let e = parse(&with(bad), Path::new("s.toml"), &AssumeEverythingExists).unwrap_err().to_string();
            assert!(e.contains("fixed"), "{bad}: {e}");
        }
    }
}
