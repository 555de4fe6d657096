//! The `[logs]` table: how much of each service container's output Docker keeps on disk.

use super::units::parse_bytes;
use super::{Tab, Walker};
use crate::scenario::model::LogRules;

pub(super) const LOG_KEYS: &[&str] = &["max_size", "max_files"];
/// Smallest `max_size`: below it a chatty service rotates its last minutes away.
const MIN_LOG_FILE: u64 = 1 << 20;
/// Largest `max_size`: one file is read whole when a judge asks for old lines.
const MAX_LOG_FILE: u64 = 4 << 30;
/// Most log files per container.
const MAX_LOG_FILES: u32 = 100;

impl Walker<'_, '_> {
    pub(super) fn logs(&mut self, t: &Tab<'_, '_>) -> Option<LogRules> {
        self.unknown_keys(t, LOG_KEYS, "keys");
        let d = LogRules::default();
        let max_size = self.log_file_size(t, d.max_size_bytes);
        let max_files = self.int(t, "max_files", Some(d.max_files), 1..=MAX_LOG_FILES);
        Some(LogRules { max_size_bytes: max_size?, max_files: max_files? })
    }

    fn log_file_size(&mut self, t: &Tab<'_, '_>, default: u64) -> Option<u64> {
        let key = "max_size";
        let Some(s) = self.string(t, key, false, "max_size = \"64MiB\"")? else { return Some(default) };
        match parse_bytes(&s).filter(|b| (MIN_LOG_FILE..=MAX_LOG_FILE).contains(b)) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get(key).expect("read").span(),
                    format!("`{key}` \"{s}\" is not a size between 1MiB and 4GiB"),
                    Some("write a number with a unit: MiB or GiB, e.g. \"64MiB\" (the size of one log file)".into()),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::LogRules;

    use super::super::parsed;

    #[test]
    fn defaults_keep_512_mib_per_container() {
        let s = parsed("").unwrap();
        assert_eq!(s.logs, LogRules { max_size_bytes: 64 << 20, max_files: 8 });
        assert_eq!(s.logs.max_total_bytes(), 512 << 20);
        assert_eq!(parsed("[logs]\n").unwrap().logs, LogRules::default());
    }

    #[test]
    fn both_keys_can_be_set() {
        let s = parsed("[logs]\nmax_size = \"1MiB\"\nmax_files = 2\n").unwrap();
        assert_eq!(s.logs, LogRules { max_size_bytes: 1 << 20, max_files: 2 });
        assert_eq!(parsed("[logs]\nmax_size = \"2GiB\"\n").unwrap().logs.max_size_bytes, 2 << 30);
    }

    #[test]
    fn bad_values_are_named_with_a_hint() {
        let e = parsed("[logs]\nmax_size = \"100KiB\"\n").unwrap_err();
        assert!(e.contains("`max_size` \"100KiB\" is not a size between 1MiB and 4GiB"), "{e}");
        assert!(e.contains("e.g. \"64MiB\""), "{e}");
        let e = parsed("[logs]\nmax_size = \"lots\"\n").unwrap_err();
        assert!(e.contains("`max_size` \"lots\""), "{e}");
        let e = parsed("[logs]\nmax_files = 0\n").unwrap_err();
        assert!(e.contains("max_files"), "{e}");
        let e = parsed("[logs]\nmax_files = 1000\n").unwrap_err();
        assert!(e.contains("max_files"), "{e}");
        let e = parsed("[logs]\nmax_size = 64\n").unwrap_err();
        assert!(e.contains("max_size"), "{e}");
        let e = parsed("[logs]\nmax_bytes = \"1GiB\"\n").unwrap_err();
        assert!(e.contains("max_bytes"), "{e}");
        let e = parsed("logs = 5\n").unwrap_err();
        assert!(e.contains("logs"), "{e}");
    }
}
