//! A located mistake in a scenario file, and how to print a list of them.

use std::fmt;
use std::ops::Range;

/// One thing wrong with a scenario, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Every problem found in one scenario file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems {
    /// The file as the user named it.
    pub file: String,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.list {
            writeln!(f, "{}:{}:{}: error: {}", self.file, p.line, p.column, p.message)?;
            if let Some(help) = &p.help {
                writeln!(f, "  help: {help}")?;
            }
        }
        let n = self.list.len();
        write!(f, "{}: {n} problem{}", self.file, if n == 1 { "" } else { "s" })
    }
}

/// Collects problems by byte span while a file is walked, then locates them.
#[derive(Debug)]
pub(crate) struct Collector<'s> {
    src: &'s str,
    found: Vec<(usize, String, Option<String>)>,
}

impl<'s> Collector<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Collector { src, found: Vec::new() }
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>, help: impl Into<Option<String>>) {
        self.found.push((span.start, message.into(), help.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        locate(self.src, offset).0
    }

    pub(crate) fn finish(self, file: &str) -> Problems {
        let mut list: Vec<Problem> = self
            .found
            .into_iter()
            .map(|(offset, message, help)| {
                let (line, column) = locate(self.src, offset);
                Problem { line, column, message, help }
            })
            .collect();
        // Stable: problems at the same place keep the order they were found in.
        list.sort_by_key(|p| (p.line, p.column));
        Problems { file: file.to_owned(), list }
    }
}

fn locate(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char_boundary(src, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("tik", &["tick", "name"]), Some("tick"));
        assert_eq!(did_you_mean("flag_lifetme", &["flag_lifetime", "flag_prefix"]), Some("flag_lifetime"));
        assert_eq!(did_you_mean("colour", &["tick", "name"]), None);
    }

    #[test]
    fn location_counts_characters() {
        assert_eq!(locate("a\n攻防x", 8), (2, 3));
        assert_eq!(locate("abc", 0), (1, 1));
    }
}
