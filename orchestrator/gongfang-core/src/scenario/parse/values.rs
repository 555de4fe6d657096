//! Readers of plain values: strings, slugs, integers, booleans, choices from a list,
//! durations and times. Each returns `Some(value)`, or `None` after reporting the problem;
//! optional keys return `Some(None)` when absent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toml::de::DeValue;

use super::units::parse_duration;
use super::{Tab, Val, Walker};
use crate::scenario::problem::did_you_mean;

impl Walker<'_, '_> {
    pub(super) fn missing(&mut self, t: &Tab<'_, '_>, key: &str, example: &str) {
        let help = if example.is_empty() { format!("add `{key} = …`") } else { format!("add {example}") };
        self.c.error(&t.at, format!("missing key `{key}` in {}", t.name), Some(help));
    }

    pub(super) fn wrong_type(&mut self, v: &Val<'_>, key: &str, expected: &str, help: Option<String>) {
        self.c.error(&v.span(), format!("`{key}` must be {expected}, found {}", v.get_ref().type_str()), help);
    }

    pub(super) fn string(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        required: bool,
        example: &str,
    ) -> Option<Option<String>> {
        match t.get(key) {
            None if required => {
                self.missing(t, key, example);
                None
            }
            None => Some(None),
            Some(v) => match v.get_ref().as_str() {
                Some(s) if s.trim().is_empty() => {
                    self.c.error(
                        &v.span(),
                        format!("`{key}` is empty"),
                        Some(format!("give `{key}` a value, or remove it")),
                    );
                    None
                }
                Some(s) => Some(Some(s.to_owned())),
                None => {
                    let help = (!example.is_empty()).then(|| format!("write it as {example}"));
                    self.wrong_type(v, key, "a string", help);
                    None
                }
            },
        }
    }

    pub(super) fn slug(&mut self, t: &Tab<'_, '_>, key: &str, required: bool) -> Option<Option<String>> {
        let s = self.string(t, key, required, "slug = \"short-name\"")?;
        if let Some(s) = &s {
            let ok = s.len() <= 32
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                let v = t.get(key).expect("read above");
                self.c.error(
                    &v.span(),
                    format!("`{key}` \"{s}\" is not a valid slug"),
                    Some(
                        "use 1 to 32 lowercase letters, digits and '-', starting with a letter, e.g. \"open-data\""
                            .into(),
                    ),
                );
                return None;
            }
        }
        Some(s)
    }

    pub(super) fn int(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        default: Option<u32>,
        range: std::ops::RangeInclusive<u32>,
    ) -> Option<u32> {
        self.int_meaning(t, key, default, range, None)
    }

    /// [`Walker::int`], saying what the number means when it is out of range.
    pub(super) fn int_meaning(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        default: Option<u32>,
        range: std::ops::RangeInclusive<u32>,
        meaning: Option<&str>,
    ) -> Option<u32> {
        let Some(v) = t.get(key) else {
            if default.is_none() {
                self.missing(t, key, &format!("`{key} = {}`", range.start()));
            }
            return default;
        };
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(
                v,
                key,
                "an integer",
                Some(format!("write a number without quotes, e.g. {key} = {}", range.start())),
            );
            return None;
        };
        match u32::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                self.c.error(
                    &v.span(),
                    format!("`{key}` must be between {} and {}", range.start(), range.end()),
                    meaning.map(str::to_owned),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, t: &Tab<'_, '_>, key: &str, default: bool) -> Option<bool> {
        match t.get(key) {
            None => Some(default),
            Some(v) => v.get_ref().as_bool().or_else(|| {
                self.wrong_type(
                    v,
                    key,
                    "true or false",
                    Some(format!("write {key} = true or {key} = false, without quotes")),
                );
                None
            }),
        }
    }

    pub(super) fn choice(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        names: &[&str],
        default: Option<&str>,
    ) -> Option<String> {
        let s = self.string(t, key, default.is_none(), "")?;
        let Some(s) = s else { return default.map(str::to_owned) };
        if names.contains(&s.as_str()) {
            return Some(s);
        }
        let v = t.get(key).expect("read above");
        let help = match did_you_mean(&s, names) {
            Some(n) => format!("did you mean \"{n}\"?"),
            None => format!("use one of: {}", names.join(", ")),
        };
        self.c.error(&v.span(), format!("unknown {key} \"{s}\""), Some(help));
        None
    }

    pub(super) fn duration(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        default: Option<Duration>,
    ) -> Option<Option<Duration>> {
        let Some(s) = self.string(t, key, false, &format!("{key} = \"90s\""))? else { return Some(default) };
        match parse_duration(&s) {
            Some(d) if !d.is_zero() => Some(Some(d)),
            _ => {
                let v = t.get(key).expect("read above");
                self.c.error(
                    &v.span(),
                    format!("`{key}` \"{s}\" is not a duration"),
                    Some("write a number with a unit: ms, s, m or h, e.g. \"90s\", \"2m\", \"60h\", \"1h30m\"".into()),
                );
                None
            }
        }
    }

    pub(super) fn datetime(&mut self, t: &Tab<'_, '_>, key: &str) -> Option<Option<DateTime<Utc>>> {
        let Some(v) = t.get(key) else { return Some(None) };
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            _ => {
                self.wrong_type(
                    v,
                    key,
                    "a date and time",
                    Some(format!("write it like {key} = 2026-11-21T09:00:00+08:00")),
                );
                return None;
            }
        };
        match DateTime::parse_from_rfc3339(&text) {
            Ok(d) => Some(Some(d.with_timezone(&Utc))),
            Err(_) => {
                self.c.error(
                    &v.span(),
                    format!("`{key}` {text} is not a date and time with a time zone"),
                    Some(format!("write it like {key} = 2026-11-21T09:00:00+08:00")),
                );
                None
            }
        }
    }
}
