//! The document's structure: tables, arrays of tables, and keys no table allows.

use std::ops::Range;

use toml::de::DeValue;

use super::{Tab, Walker};
use crate::scenario::problem::did_you_mean;

impl Walker<'_, '_> {
    pub(super) fn unknown_keys(&mut self, t: &Tab<'_, '_>, known: &[&str], what: &str) {
        for (key, _) in t.table.iter() {
            let k: &str = key.get_ref();
            if known.contains(&k) {
                continue;
            }
            let help = match did_you_mean(k, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the {what} allowed here are: {}", known.join(", ")),
            };
            self.c.error(&key.span(), format!("unknown key `{k}` in {}", t.name), Some(help));
        }
    }

    pub(super) fn table_at<'t, 'i>(&mut self, parent: &Tab<'t, 'i>, key: &str, required: bool) -> Option<Tab<'t, 'i>> {
        let Some(v) = parent.get(key) else {
            if required {
                self.c.error(&parent.at, format!("missing section [{key}]"), Some(format!("add a [{key}] table")));
            }
            return None;
        };
        match v.get_ref() {
            DeValue::Table(table) => {
                Some(Tab { table, at: self.key_span(parent, key).unwrap_or(v.span()), name: format!("[{key}]") })
            }
            other => {
                self.c.error(
                    &v.span(),
                    format!("`{key}` must be a table, found {}", other.type_str()),
                    Some(format!("write it as a [{key}] section")),
                );
                None
            }
        }
    }

    /// Reads an array of tables (`[[team]]`), returning each entry with where it starts.
    pub(super) fn list<T>(
        &mut self,
        top: &Tab<'_, '_>,
        key: &str,
        help: &str,
        mut read: impl FnMut(&mut Self, &Tab<'_, '_>, usize) -> Option<T>,
    ) -> Vec<(Option<T>, Range<usize>)>
    where
        Self: Sized,
    {
        let Some(v) = top.get(key) else {
            self.c.error(&top.at, format!("no [[{key}]] entries"), Some(help.to_owned()));
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.c.error(
                &v.span(),
                format!("`{key}` must be an array of tables"),
                Some(format!("write each entry as a [[{key}]] section")),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = item.span();
            match item.get_ref() {
                DeValue::Table(table) => {
                    let tab = Tab { table, at: at.clone(), name: format!("[[{key}]] #{}", i + 1) };
                    out.push((read(self, &tab, i), at));
                }
                other => {
                    self.c.error(
                        &at,
                        format!("each `{key}` entry must be a table, found {}", other.type_str()),
                        Some(format!("write each entry as a [[{key}]] section")),
                    );
                    out.push((None, at));
                }
            }
        }
        out
    }

    pub(super) fn key_span(&self, t: &Tab<'_, '_>, key: &str) -> Option<Range<usize>> {
        t.table.iter().find(|(k, _)| k.get_ref() == key).map(|(k, _)| k.span())
    }
}
