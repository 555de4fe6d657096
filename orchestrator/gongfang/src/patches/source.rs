//! A service's build folder in memory, and the two ways a team changes it: a unified diff
//! applied to it, or a tar archive whose files overlay it. Both work on a copy: a patch that
//! fails anywhere leaves nothing half-applied, and a path that leaves the folder, a link, a
//! device, a fixed file or a size over the limits refuses the whole patch with a message that
//! says which.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use gongfang_core::patch::inside_folder;

/// The Dockerfile and `.dockerignore` are the organisers' in every service.
const ALWAYS_FIXED: &[&str] = &["Dockerfile", ".dockerignore"];
/// Longest path a patch may name, in bytes.
const MAX_PATH: usize = 1024;
/// Most line comparisons placing a diff's hunks may take: a diff that needs more (a hunk of
/// lines repeated all over a large file) is refused rather than holding the build slot.
const MAX_COMPARISONS: u64 = 50_000_000;
/// What an archive's headers (names, PAX records, padding) may add to its files' bytes.
const ARCHIVE_OVERHEAD_PER_FILE: u64 = 4096;

/// How big a patched build folder may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// Bytes of all files together.
    pub max_bytes: u64,
    pub max_files: u32,
}

/// Why a patch was refused. Every message names what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the diff has no file in it: send a unified diff (`diff -u` or `git diff`) with --- and +++ lines")]
    EmptyDiff,
    #[error("line {line} of the diff: {what}")]
    Malformed { line: usize, what: String },
    #[error("`{path}` is outside the build folder: paths are relative to it, without `..`")]
    Outside { path: String },
    #[error("`{path}` is the organisers' and may not be changed (fixed files: {fixed})")]
    Fixed { path: String, fixed: String },
    #[error(
        "`{path}`: hunk {hunk} does not apply: its lines are not in the file as it runs now; download the current source and diff against it"
    )]
    HunkFailed { path: String, hunk: usize },
    #[error("`{path}` does not exist in the build folder")]
    Missing { path: String },
    #[error("the diff creates `{path}` (from /dev/null), but it exists already; diff against the current file instead")]
    Exists { path: String },
    #[error("the diff removes `{path}` (to /dev/null) but leaves lines of it; a removal must take every line")]
    PartialRemoval { path: String },
    #[error(
        "the diff has Windows line ends (CR LF) and the files do not; convert it to LF line ends (e.g. with dos2unix)"
    )]
    WindowsLineEnds,
    #[error(
        "the diff's hunks could not be placed within the work one patch may take; send a diff with more context lines, or a tar archive"
    )]
    TooCostly,
    #[error(
        "the patch is neither UTF-8 text (a diff) nor a tar archive (plain or gzip): send a diff, or a .tar/.tar.gz with kind=tar"
    )]
    NotADiff,
    #[error("`{path}` is a {kind} in the archive: only regular files and folders may be sent")]
    NotAFile { path: String, kind: String },
    #[error("the archive is not a tar archive (plain or gzip): {0}")]
    BadArchive(String),
    #[error("a path in the archive is longer than {MAX_PATH} bytes")]
    LongPath,
    #[error(
        "`{path}` is not UTF-8 text with LF line ends where the diff touches it; send binary changes as a tar archive"
    )]
    Binary { path: String },
    #[error("the patched build folder would hold {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the patched build folder would hold {files} files, over the limit of {limit}")]
    TooManyFiles { files: u64, limit: u32 },
}

/// One file of a build folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct File {
    data: Vec<u8>,
    executable: bool,
}

/// A build folder: relative path -> file, folders implied by the paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceTree {
    files: BTreeMap<String, File>,
}

/// What a patch may not change: the always-fixed files and the scenario's `fixed` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed(Vec<String>);

impl Fixed {
    /// The always-fixed files plus `extra` (paths relative to the build folder).
    pub fn new(extra: impl IntoIterator<Item = String>) -> Fixed {
        Fixed(ALWAYS_FIXED.iter().map(|s| (*s).to_owned()).chain(extra).collect())
    }

    fn check(&self, path: &str) -> Result<(), PatchError> {
        let hit = self.0.iter().any(|f| path == f || path.strip_prefix(f.as_str()).is_some_and(|r| r.starts_with('/')));
        if hit { Err(PatchError::Fixed { path: path.to_owned(), fixed: self.0.join(", ") }) } else { Ok(()) }
    }
}

impl SourceTree {
    /// Reads a build folder from disk: its regular files, following no links.
    pub fn from_dir(dir: &Path) -> std::io::Result<SourceTree> {
        fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, File>) -> std::io::Result<()> {
            let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let kind = entry.file_type()?;
                let path = entry.path();
                if kind.is_dir() {
                    walk(root, &path, files)?;
                } else if kind.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let rel = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
                    let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
                    files.insert(rel, File { data: std::fs::read(&path)?, executable });
                }
            }
            Ok(())
        }
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files)?;
        Ok(SourceTree { files })
    }

    /// Reads a tar archive this module wrote (a stored version).
    pub fn from_tar(bytes: &[u8], limits: SourceLimits) -> Result<SourceTree, PatchError> {
        let mut tree = SourceTree::default();
        tree.overlay_tar(bytes, &Fixed(Vec::new()), limits)?;
        Ok(tree)
    }

    /// The folder as a tar archive, the same bytes for the same files: sorted, owned by root,
    /// dated 0. This is what is stored, downloaded and sent to the image build.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, file) in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_size(file.data.len() as u64);
            header.set_mode(if file.executable { 0o755 } else { 0o644 });
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, &file.data[..]).expect("writing to memory");
        }
        builder.into_inner().expect("writing to memory")
    }

    /// The file at `path`, if any.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|f| f.data.as_slice())
    }

    /// Leaves out the file or folder at `path`.
    pub fn remove(&mut self, path: &str) {
        self.files.retain(|p, _| p != path && !p.strip_prefix(path).is_some_and(|r| r.starts_with('/')));
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// This folder with a unified diff applied, or why it does not apply.
    pub fn apply_diff(&self, diff: &[u8], fixed: &Fixed, limits: SourceLimits) -> Result<SourceTree, PatchError> {
        let text = std::str::from_utf8(diff).map_err(|_| PatchError::NotADiff)?;
        if text.contains("\r\n") && !self.files.values().any(|f| f.data.windows(2).any(|w| w == b"\r\n")) {
            return Err(PatchError::WindowsLineEnds);
        }
        let files = parse_diff(text)?;
        if files.is_empty() {
            return Err(PatchError::EmptyDiff);
        }
        let mut out = self.clone();
        let mut budget = MAX_COMPARISONS;
        for mut change in files {
            // `diff -ru old new` and `diff -u f.orig f` name the file twice: the one that
            // exists is the one changed.
            if change.old_exists
                && !out.files.contains_key(&change.path)
                && let Some(old) = change.old_path.take().filter(|p| out.files.contains_key(p))
            {
                change.path = old;
            }
            fixed.check(&change.path)?;
            match (change.old_exists, change.new_exists) {
                (false, _) => {
                    if out.files.contains_key(&change.path) {
                        return Err(PatchError::Exists { path: change.path });
                    }
                    let data = apply_hunks(&change.path, "", &change.hunks, &mut budget)?;
                    out.files.insert(change.path, File { data: data.into_bytes(), executable: change.executable });
                }
                (true, new_exists) => {
                    let file =
                        out.files.get(&change.path).ok_or_else(|| PatchError::Missing { path: change.path.clone() })?;
                    let old = std::str::from_utf8(&file.data)
                        .map_err(|_| PatchError::Binary { path: change.path.clone() })?;
                    let data = apply_hunks(&change.path, old, &change.hunks, &mut budget)?;
                    if new_exists {
                        let executable = file.executable || change.executable;
                        out.files.insert(change.path, File { data: data.into_bytes(), executable });
                    } else if data.is_empty() {
                        out.files.remove(&change.path);
                    } else {
                        return Err(PatchError::PartialRemoval { path: change.path });
                    }
                }
            }
        }
        out.check(limits)?;
        Ok(out)
    }

    /// This folder with the files of a tar archive (plain or gzip) written over it.
    pub fn apply_tar(&self, archive: &[u8], fixed: &Fixed, limits: SourceLimits) -> Result<SourceTree, PatchError> {
        let mut out = self.clone();
        out.overlay_tar(archive, fixed, limits)?;
        out.check(limits)?;
        Ok(out)
    }

    fn overlay_tar(&mut self, archive: &[u8], fixed: &Fixed, limits: SourceLimits) -> Result<(), PatchError> {
        let gzip = archive.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + '_> =
            if gzip { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
        // The whole unpacked stream is bounded too: names and extended headers are read into
        // memory before an entry's size can be checked.
        let most = limits
            .max_bytes
            .saturating_add(u64::from(limits.max_files).saturating_mul(ARCHIVE_OVERHEAD_PER_FILE))
            .saturating_add(1 << 20);
        let mut tar = tar::Archive::new(Bounded { inner: reader, left: most });
        let bad = |e: std::io::Error| PatchError::BadArchive(e.to_string());
        // What the archive may still add: sizes are checked from each header before reading,
        // so a huge entry (or a small gzip that unpacks to one) is refused unread.
        let mut budget = limits.max_bytes;
        let mut count = 0u64;
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if entry.path_bytes().len() > MAX_PATH {
                return Err(PatchError::LongPath);
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = raw.trim_start_matches("./").trim_end_matches('/').to_owned();
            let kind = entry.header().entry_type();
            // `git archive` writes a global header with the commit: nothing to unpack.
            if (path.is_empty() && kind.is_dir()) || kind == tar::EntryType::XGlobalHeader {
                continue;
            }
            if !inside_folder(&path) {
                return Err(PatchError::Outside { path: raw });
            }
            match kind {
                tar::EntryType::Directory => continue,
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => return Err(PatchError::NotAFile { path, kind: entry_kind(other).to_owned() }),
            }
            fixed.check(&path)?;
            let size = entry.size();
            if size > budget {
                return Err(PatchError::TooLarge { bytes: limits.max_bytes - budget + size, limit: limits.max_bytes });
            }
            count += 1;
            if count > u64::from(limits.max_files) {
                return Err(PatchError::TooManyFiles { files: count, limit: limits.max_files });
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry).take(size).read_to_end(&mut data).map_err(bad)?;
            budget -= data.len() as u64;
            let executable = entry.header().mode().map_err(bad)? & 0o111 != 0;
            self.files.insert(path, File { data, executable });
        }
        Ok(())
    }

    fn check(&self, limits: SourceLimits) -> Result<(), PatchError> {
        let bytes: u64 = self.files.values().map(|f| f.data.len() as u64).sum();
        if bytes > limits.max_bytes {
            return Err(PatchError::TooLarge { bytes, limit: limits.max_bytes });
        }
        let files = self.files.len() as u64;
        if files > u64::from(limits.max_files) {
            return Err(PatchError::TooManyFiles { files, limit: limits.max_files });
        }
        Ok(())
    }
}

/// A reader that fails once it has given `left` bytes: an archive that unpacks to more than the
/// limits allow is refused however it is built.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("it unpacks to more than the patch size limits allow"));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn entry_kind(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "named pipe",
        _ => "special entry",
    }
}

/// One file's changes in a diff.
#[derive(Debug)]
struct FileChange {
    path: String,
    /// The other name the diff gives the file, when it gives two (`old/x` and `new/x`).
    old_path: Option<String>,
    old_exists: bool,
    new_exists: bool,
    /// A git diff said `new file mode 100755` (or `new mode 100755`).
    executable: bool,
    hunks: Vec<Hunk>,
}

/// One `@@ -a,b +c,d @@` block: the old lines it expects and the new lines it leaves.
#[derive(Debug)]
struct Hunk {
    /// 1-based line of the old file where it starts (0 for an empty file).
    old_start: usize,
    old: Vec<String>,
    new: Vec<String>,
}

/// The path a `---`/`+++` line names: `None` for /dev/null. As `patch -p1` does, the first
/// folder is taken off (git's `a/` and `b/`, `diff -ru old new`'s `old/` and `new/`) when the
/// path has one; a timestamp after a tab is ignored.
fn diff_path(rest: &str, line: usize) -> Result<Option<String>, PatchError> {
    let name = rest.split('\t').next().unwrap_or("").trim_end();
    if name == "/dev/null" {
        return Ok(None);
    }
    if name.starts_with('"') {
        return Err(PatchError::Malformed {
            line,
            what: format!("quoted file names ({name}) are not supported; send files with such names as a tar archive"),
        });
    }
    Ok(Some(match name.split_once('/') {
        Some((_, rest)) if !name.starts_with('/') && !rest.is_empty() => rest.to_owned(),
        _ => name.to_owned(),
    }))
}

fn parse_diff(text: &str) -> Result<Vec<FileChange>, PatchError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut files = Vec::new();
    // A `diff --git` block not yet followed by its `---`/`+++` lines, and its mode.
    let mut git_block: Option<usize> = None;
    let mut executable = false;
    let contentless = |line: usize| PatchError::Malformed {
        line,
        what: "a change without content lines (a rename, a mode change, an empty file) cannot be sent as a diff; \
               send it as a tar archive"
            .into(),
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("diff --git ") {
            if let Some(at) = git_block {
                return Err(contentless(at));
            }
            git_block = Some(i + 1);
            executable = false;
        }
        if line.starts_with("new file mode 100755") || line.starts_with("new mode 100755") {
            executable = true;
        }
        if line.starts_with("Binary files ") || line.starts_with("GIT binary patch") {
            return Err(PatchError::Malformed {
                line: i + 1,
                what: "binary changes cannot be sent as a diff; send them as a tar archive".into(),
            });
        }
        let Some(old) = line.strip_prefix("--- ") else {
            i += 1;
            continue;
        };
        let new = lines.get(i + 1).and_then(|l| l.strip_prefix("+++ ")).ok_or_else(|| PatchError::Malformed {
            line: i + 2,
            what: "a `---` line must be followed by a `+++` line".into(),
        })?;
        git_block = None;
        let old_path = diff_path(old.trim_end_matches('\n'), i + 1)?;
        let new_path = diff_path(new.trim_end_matches('\n'), i + 2)?;
        let path = new_path
            .clone()
            .or(old_path.clone())
            .ok_or_else(|| PatchError::Malformed { line: i + 1, what: "both sides are /dev/null".into() })?;
        for p in [&old_path, &new_path].into_iter().flatten() {
            if !inside_folder(p) {
                return Err(PatchError::Outside { path: p.clone() });
            }
        }
        i += 2;
        let mut hunks = Vec::new();
        while let Some(header) = lines.get(i).and_then(|l| l.strip_prefix("@@ ")) {
            let (old_start, old_len, new_len) = hunk_header(header).ok_or_else(|| PatchError::Malformed {
                line: i + 1,
                what: "a hunk header looks like `@@ -12,7 +12,8 @@`".into(),
            })?;
            i += 1;
            let mut hunk = Hunk { old_start, old: Vec::new(), new: Vec::new() };
            while hunk.old.len() < old_len || hunk.new.len() < new_len {
                let Some(line) = lines.get(i) else {
                    return Err(PatchError::Malformed { line: i + 1, what: "the diff ends inside a hunk".into() });
                };
                let body = line.get(1..).unwrap_or("");
                let body = if line == &"\n" { "\n" } else { body };
                match line.as_bytes().first() {
                    Some(b' ') => {
                        hunk.old.push(body.to_owned());
                        hunk.new.push(body.to_owned());
                    }
                    // An empty line in a hunk is an empty context line some tools write.
                    Some(b'\n') => {
                        hunk.old.push("\n".to_owned());
                        hunk.new.push("\n".to_owned());
                    }
                    Some(b'-') => hunk.old.push(body.to_owned()),
                    Some(b'+') => hunk.new.push(body.to_owned()),
                    Some(b'\\') => {}
                    _ => {
                        return Err(PatchError::Malformed {
                            line: i + 1,
                            what:
                                "a hunk line starts with a space, `-` or `+`; the hunk is shorter than its header says"
                                    .into(),
                        });
                    }
                }
                i += 1;
                // "\ No newline at end of file" takes the newline off the line before it.
                if lines.get(i).is_some_and(|l| l.starts_with('\\')) {
                    match line.as_bytes().first() {
                        Some(b'-') => drop_newline(&mut hunk.old),
                        Some(b'+') => drop_newline(&mut hunk.new),
                        _ => {
                            drop_newline(&mut hunk.old);
                            drop_newline(&mut hunk.new);
                        }
                    }
                    i += 1;
                }
            }
            if hunk.old.len() != old_len || hunk.new.len() != new_len {
                return Err(PatchError::Malformed {
                    line: i,
                    what: "a hunk's lines do not match its header's counts".into(),
                });
            }
            // A line that looks like the hunk's but comes after it: the header counts too few.
            let next = lines.get(i).copied().unwrap_or("");
            let next_header = next.starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ "));
            if (next.starts_with('+') || next.starts_with('-') || next.starts_with(' ')) && !next_header {
                return Err(PatchError::Malformed {
                    line: i + 1,
                    what: "the hunk goes on past the lines its header counts; fix the counts in `@@ -a,b +c,d @@`"
                        .into(),
                });
            }
            hunks.push(hunk);
        }
        if hunks.is_empty() {
            return Err(PatchError::Malformed { line: i + 1, what: format!("`{path}` has no hunk (`@@ … @@`)") });
        }
        let other = old_path.clone().filter(|o| *o != path);
        files.push(FileChange {
            path,
            old_path: other,
            old_exists: old_path.is_some(),
            new_exists: new_path.is_some(),
            executable,
            hunks,
        });
        executable = false;
    }
    if let Some(at) = git_block {
        return Err(contentless(at));
    }
    Ok(files)
}

/// Takes the newline off the last of `lines`.
fn drop_newline(lines: &mut [String]) {
    if let Some(last) = lines.last_mut()
        && last.ends_with('\n')
    {
        last.pop();
    }
}

/// `-12,7 +12,8 @@ …` -> (12, 7, 8); a missing count is 1.
fn hunk_header(h: &str) -> Option<(usize, usize, usize)> {
    let mut parts = h.split_whitespace();
    let range = |s: &str, sign: char| -> Option<(usize, usize)> {
        let s = s.strip_prefix(sign)?;
        match s.split_once(',') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => Some((s.parse().ok()?, 1)),
        }
    };
    let (old_start, old_len) = range(parts.next()?, '-')?;
    let (_, new_len) = range(parts.next()?, '+')?;
    Some((old_start, old_len, new_len))
}

/// `old` with the hunks applied in order. A hunk must match exactly; it is looked for where its
/// header says and, if the file moved, at the nearest place after the hunk before it.
fn apply_hunks(path: &str, old: &str, hunks: &[Hunk], budget: &mut u64) -> Result<String, PatchError> {
    let lines: Vec<&str> = old.split_inclusive('\n').collect();
    let mut out = String::with_capacity(old.len());
    let mut next = 0;
    for (n, hunk) in hunks.iter().enumerate() {
        // `@@ -a,0 …` (no old lines) inserts after line a; otherwise the hunk starts at line a.
        let start = if hunk.old.is_empty() { hunk.old_start } else { hunk.old_start.saturating_sub(1) };
        let want = start.max(next);
        let cost = hunk.old.len().max(1) as u64;
        let fits =
            |at: usize| at + hunk.old.len() <= lines.len() && hunk.old.iter().zip(&lines[at..]).all(|(a, b)| a == b);
        let mut found = None;
        // Nearest first: the place the header says, then one line after, one before, ...
        let places = (0..=lines.len())
            .flat_map(|d| [want.checked_add(d), want.checked_sub(d).filter(|_| d > 0)])
            .flatten()
            .filter(|at| *at >= next && *at <= lines.len());
        for at in places {
            *budget = budget.checked_sub(cost).ok_or(PatchError::TooCostly)?;
            if fits(at) {
                found = Some(at);
                break;
            }
        }
        let at = found.ok_or_else(|| PatchError::HunkFailed { path: path.to_owned(), hunk: n + 1 })?;
        out.extend(lines[next..at].iter().copied());
        out.extend(hunk.new.iter().map(String::as_str));
        next = at + hunk.old.len();
    }
    out.extend(lines[next..].iter().copied());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SourceLimits = SourceLimits { max_bytes: 1 << 20, max_files: 100 };

    fn tree(files: &[(&str, &str)]) -> SourceTree {
        SourceTree {
            files: files
                .iter()
                .map(|(p, d)| ((*p).to_owned(), File { data: d.as_bytes().to_vec(), executable: false }))
                .collect(),
        }
    }

    fn fixed() -> Fixed {
        Fixed::new(["run.sh".to_owned(), "conf".to_owned()])
    }

    fn text(t: &SourceTree, path: &str) -> String {
        String::from_utf8(t.file(path).unwrap().to_vec()).unwrap()
    }

    const APP: &str = "one\ntwo\nthree\nfour\nfive\nsix\n";

    #[test]
    fn a_git_diff_applies_and_leaves_the_original_alone() {
        let base = tree(&[("app.py", APP), ("Dockerfile", "FROM x\n")]);
        let diff =
            "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -2,3 +2,3 @@\n two\n-three\n+THREE\n four\n";
        let patched = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap();
        assert_eq!(text(&patched, "app.py"), "one\ntwo\nTHREE\nfour\nfive\nsix\n");
        assert_eq!(text(&base, "app.py"), APP);
    }

    #[test]
    fn a_hunk_is_found_where_the_file_moved_and_files_are_made_and_removed() {
        let base = tree(&[("app.py", &format!("new first line\n{APP}")), ("old.txt", "bye\n")]);
        let diff = "--- app.py\n+++ app.py\n@@ -5,2 +5,2 @@\n five\n-six\n+SIX\n\
                    --- /dev/null\n+++ b/lib/new.py\n@@ -0,0 +1,2 @@\n+a\n+b\n\
                    --- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        let patched = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap();
        assert!(text(&patched, "app.py").ends_with("five\nSIX\n"));
        assert_eq!(text(&patched, "lib/new.py"), "a\nb\n");
        assert!(patched.file("old.txt").is_none());
    }

    /// The demo's published fix, applied here and by GNU patch, gives the same file.
    #[test]
    fn the_demo_fix_applies_as_gnu_patch_applies_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/opendata");
        let base = SourceTree::from_dir(&root.join("service")).unwrap();
        let fix = std::fs::read(root.join("patch/fix.patch")).unwrap();
        let ours = base.apply_diff(&fix, &fixed(), LIMITS).unwrap();
        let work = tempfile::tempdir().unwrap();
        std::fs::copy(root.join("service/app.py"), work.path().join("app.py")).unwrap();
        let status = std::process::Command::new("patch")
            .current_dir(work.path())
            .args(["-p1", "--quiet", "-i"])
            .arg(root.join("patch/fix.patch"))
            .status()
            .expect("GNU patch is installed");
        assert!(status.success());
        assert_eq!(ours.file("app.py").unwrap(), std::fs::read(work.path().join("app.py")).unwrap());
        assert_eq!(ours.file("run.sh"), base.file("run.sh"), "other files untouched");
    }

    #[test]
    fn no_newline_at_end_of_file_is_kept() {
        let base = tree(&[("a.txt", "x\ny")]);
        let diff = "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n";
        assert_eq!(text(&base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap(), "a.txt"), "x\nz");
    }

    #[test]
    fn a_diff_that_does_not_apply_names_the_file_and_hunk() {
        let base = tree(&[("app.py", APP)]);
        let diff = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n@@ -4,1 +4,1 @@\n-not there\n+x\n";
        let e = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap_err();
        assert_eq!(e, PatchError::HunkFailed { path: "app.py".into(), hunk: 2 });
        assert!(e.to_string().contains("download the current source"), "{e}");
    }

    #[test]
    fn diffs_leaving_the_folder_or_touching_fixed_files_are_refused() {
        let base = tree(&[("app.py", APP), ("Dockerfile", "FROM x\n"), ("conf/a", "1\n")]);
        let one = |path: &str| format!("--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x\n+y\n");
        for (path, want) in [
            ("../etc/passwd", "outside the build folder"),
            ("/etc/passwd", "outside the build folder"),
            ("Dockerfile", "is the organisers'"),
            ("run.sh", "is the organisers'"),
            ("conf/a", "is the organisers'"),
        ] {
            let diff = if path.starts_with('/') {
                format!("--- {path}\n+++ {path}\n@@ -1 +1 @@\n-x\n+y\n")
            } else {
                one(path)
            };
            let e = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap_err().to_string();
            assert!(e.contains(want), "{path}: {e}");
        }
        let e = base.apply_diff(b"just some text\n", &fixed(), LIMITS).unwrap_err();
        assert_eq!(e, PatchError::EmptyDiff);
        let e = base.apply_diff(b"--- a/app.py\n+++ b/app.py\n@@ -1,3 +1,3 @@\n one\n", &fixed(), LIMITS).unwrap_err();
        assert!(matches!(e, PatchError::Malformed { .. }), "{e}");
        let e = base.apply_diff(b"Binary files a/x.png and b/x.png differ\n", &fixed(), LIMITS).unwrap_err();
        assert!(e.to_string().contains("tar archive"), "{e}");
    }

    #[test]
    fn diffs_as_diff_and_git_write_them_apply() {
        let base = tree(&[("app.py", APP)]);
        // `diff -ru old new`, and `diff -u app.py.orig app.py`.
        for (old, new) in [("old/app.py", "new/app.py"), ("app.py.orig", "app.py")] {
            let diff = format!("--- {old}\t2026-11-21 09:00:00\n+++ {new}\n@@ -1 +1 @@\n-one\n+ONE\n");
            let patched = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap();
            assert!(text(&patched, "app.py").starts_with("ONE\ntwo\n"), "{old} {new}");
        }
        // `diff -U0`: an insertion after line 2.
        let patched =
            base.apply_diff(b"--- a/app.py\n+++ b/app.py\n@@ -2,0 +3 @@\n+inserted\n", &fixed(), LIMITS).unwrap();
        assert!(text(&patched, "app.py").starts_with("one\ntwo\ninserted\nthree\n"));
        // A new script keeps the mode git gives it.
        let diff =
            "diff --git a/go.sh b/go.sh\nnew file mode 100755\n--- /dev/null\n+++ b/go.sh\n@@ -0,0 +1 @@\n+echo hi\n";
        let patched = base.apply_diff(diff.as_bytes(), &fixed(), LIMITS).unwrap();
        assert!(patched.files["go.sh"].executable);
    }

    #[test]
    fn diffs_that_would_be_misread_are_refused_with_the_reason() {
        let base = tree(&[("app.py", APP)]);
        let refused = |diff: &[u8]| base.apply_diff(diff, &fixed(), LIMITS).unwrap_err().to_string();
        let e = refused(b"--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-one\n+ONE\n+dropped?\n");
        assert!(e.contains("goes on past the lines its header counts"), "{e}");
        let e =
            refused(b"diff --git a/app.py b/main.py\nsimilarity index 100%\nrename from app.py\nrename to main.py\n");
        assert!(e.contains("without content lines"), "{e}");
        let e = refused(b"--- \"a/caf\\303\\251.py\"\n+++ \"b/caf\\303\\251.py\"\n@@ -1 +1 @@\n-x\n+y\n");
        assert!(e.contains("quoted file names"), "{e}");
        let e = refused(b"--- a/app.py\r\n+++ b/app.py\r\n@@ -1 +1 @@\r\n-one\r\n+ONE\r\n");
        assert!(e.contains("Windows line ends"), "{e}");
        let e = refused(&[0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe]);
        assert!(e.contains("neither UTF-8 text"), "{e}");
        let e = refused(b"--- a/app.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-one\n");
        assert!(e.contains("leaves lines of it"), "{e}");
        let e = refused(b"--- /dev/null\n+++ b/app.py\n@@ -0,0 +1 @@\n+x\n");
        assert!(e.contains("exists already"), "{e}");
    }

    /// A hunk that matches nowhere in a large file of repeated lines is given up on within a
    /// bounded number of comparisons.
    #[test]
    fn placing_hunks_is_bounded() {
        let big = "x\n".repeat(300_000);
        let base = tree(&[("big.txt", &big)]);
        let hunk: String = "-x\n".repeat(200) + "-y\n";
        let diff = format!("--- a/big.txt\n+++ b/big.txt\n@@ -1,201 +1,0 @@\n{hunk}");
        let e = base.apply_diff(diff.as_bytes(), &fixed(), SourceLimits { max_bytes: 16 << 20, max_files: 10 });
        assert_eq!(e.unwrap_err(), PatchError::TooCostly);
    }

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Names are written raw, so `..` and absolute paths reach the archive as attackers send them.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A stored version is read without limits of its own.
    #[test]
    fn a_stored_version_reads_back_without_limits() {
        let base = tree(&[("app.py", APP)]);
        let unlimited = SourceLimits { max_bytes: u64::MAX, max_files: u32::MAX };
        assert_eq!(SourceTree::from_tar(&base.to_tar(), unlimited).unwrap(), base);
    }

    #[test]
    fn a_tar_overlays_files_and_round_trips() {
        let base = tree(&[("app.py", APP), ("Dockerfile", "FROM x\n")]);
        let tar = archive(&[
            ("./app.py", tar::EntryType::Regular, b"patched\n"),
            ("lib/", tar::EntryType::Directory, b""),
            ("lib/x.py", tar::EntryType::Regular, b"x\n"),
        ]);
        let patched = base.apply_tar(&tar, &fixed(), LIMITS).unwrap();
        assert_eq!(text(&patched, "app.py"), "patched\n");
        assert_eq!(text(&patched, "Dockerfile"), "FROM x\n");
        assert_eq!(SourceTree::from_tar(&patched.to_tar(), LIMITS).unwrap(), patched);
        assert_eq!(patched.to_tar(), patched.clone().to_tar(), "the same files make the same bytes");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        assert_eq!(base.apply_tar(&gz.finish().unwrap(), &fixed(), LIMITS).unwrap(), patched);
    }

    #[test]
    fn malicious_tars_are_refused_whole() {
        let base = tree(&[("app.py", APP), ("Dockerfile", "FROM x\n")]);
        let ok = ("app.py", tar::EntryType::Regular, &b"changed\n"[..]);
        for (entry, want) in [
            (("../escape.py", tar::EntryType::Regular, &b"x"[..]), "outside the build folder"),
            (("/etc/cron.d/x", tar::EntryType::Regular, &b"x"[..]), "outside the build folder"),
            (("lib/../../x", tar::EntryType::Regular, &b"x"[..]), "outside the build folder"),
            (("link", tar::EntryType::Symlink, &b""[..]), "symbolic link"),
            (("hard", tar::EntryType::Link, &b""[..]), "hard link"),
            (("dev", tar::EntryType::Char, &b""[..]), "character device"),
            (("Dockerfile", tar::EntryType::Regular, &b"FROM evil\n"[..]), "is the organisers'"),
        ] {
            let tar = archive(&[ok, entry]);
            let e = base.apply_tar(&tar, &fixed(), LIMITS).unwrap_err().to_string();
            assert!(e.contains(want), "{}: {e}", entry.0);
        }
        let e = base.apply_tar(
            b"not a tar at all, just text that is long enough to be read as a header".repeat(10).as_slice(),
            &fixed(),
            LIMITS,
        );
        assert!(matches!(e, Err(PatchError::BadArchive(_))), "{e:?}");
    }

    /// Names are bounded before anything is kept: a GNU long name over the limit is refused,
    /// and a PAX global header (`git archive`) is skipped.
    #[test]
    fn long_names_are_refused_and_global_headers_skipped() {
        let mut b = tar::Builder::new(Vec::new());
        let mut global = tar::Header::new_ustar();
        global.set_entry_type(tar::EntryType::XGlobalHeader);
        global.set_size(0);
        global.set_path("pax_global_header").unwrap();
        global.set_cksum();
        b.append(&global, &b""[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "lib/x.py", &b"x\n"[..]).unwrap();
        let ok = b.into_inner().unwrap();
        let patched = tree(&[]).apply_tar(&ok, &fixed(), LIMITS).unwrap();
        assert_eq!(patched.paths().collect::<Vec<_>>(), ["lib/x.py"]);

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, "d/".repeat(1000) + "x", &b""[..]).unwrap();
        let e = tree(&[]).apply_tar(&b.into_inner().unwrap(), &fixed(), LIMITS).unwrap_err();
        assert_eq!(e, PatchError::LongPath);
    }

    /// A gzip of a few MiB that unpacks to 1 GiB of zeros is refused from the entry's header,
    /// without unpacking it.
    #[test]
    fn a_gigabyte_of_zeros_is_refused_unread() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut header = tar::Header::new_gnu();
        header.set_path("zeros.bin").unwrap();
        header.set_size(1 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        std::io::Write::write_all(&mut gz, header.as_bytes()).unwrap();
        // Only the first MiB of the entry's data: the refusal must come before reading more.
        std::io::Write::write_all(&mut gz, &vec![0u8; 1 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let base = tree(&[("app.py", APP)]);
        let e = base.apply_tar(&bomb, &fixed(), LIMITS).unwrap_err();
        assert_eq!(e, PatchError::TooLarge { bytes: 1 << 30, limit: 1 << 20 });
        let many: Vec<(String, Vec<u8>)> = (0..101).map(|i| (format!("f{i}"), vec![b'x'])).collect();
        let entries: Vec<(&str, tar::EntryType, &[u8])> =
            many.iter().map(|(p, d)| (p.as_str(), tar::EntryType::Regular, d.as_slice())).collect();
        let e = tree(&[]).apply_tar(&archive(&entries), &fixed(), LIMITS).unwrap_err();
        assert!(matches!(e, PatchError::TooManyFiles { .. }), "{e}");
    }
}
