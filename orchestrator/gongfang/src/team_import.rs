//! `gongfang team import TEAMS.csv --into SCENARIO`: adds hundreds of teams to a scenario from
//! a spreadsheet, before the drill. Each row becomes a `[[team]]` table appended to the file
//! (comments and layout kept); ids and networks not given are the next free ones. Every row
//! is checked first and the grown scenario validated as a whole: on any problem nothing is
//! written and every problem is listed with its line. The console adds teams to a running
//! drill the same way ([`LiveImport`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{Context, bail};
use gongfang_core::scenario::{self, Ipv4Net, Role};
use gongfang_reports::{AdmissionFuture, AdmissionRefusal, Admitted, TeamAdmission};
use tokio::sync::Notify;

use crate::scenario_file::FsProbe;

/// The largest file `import` reads.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most teams one import adds.
pub const MAX_ROWS: usize = 5000;

/// The columns a file may have; `slug` and `name` are required.
const COLUMNS: &[&str] = &["slug", "name", "name_zh", "role", "network", "id", "nop"];

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV file: a header line naming its columns (`slug`, `name`, and optionally
    /// `name_zh`, `role`, `network`, `id`, `nop`), then one team per line. UTF-8; fields with
    /// commas or quotes in double quotes.
    pub file: PathBuf,
    /// The scenario file the teams are added to.
    #[arg(long, value_name = "SCENARIO")]
    pub into: PathBuf,
}

/// One team as the file gives it, with the line it came from.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    line: usize,
    slug: String,
    name: String,
    name_zh: Option<String>,
    role: Option<Role>,
    network: Option<Ipv4Net>,
    id: Option<u16>,
    nop: bool,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{} is {size} bytes; import at most {MAX_FILE_BYTES} bytes at a time (split the file)",
            args.file.display()
        );
    }
    let csv = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {} (it must be UTF-8 text)", args.file.display()))?;
    let grown = grow(&args.into, &csv, &file_name(&args.file)).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    println!(
        "{} teams added to {} ({} in all); `gongfang validate {}` checks it, `gongfang up` starts it",
        grown.added.len(),
        args.into.display(),
        grown.teams,
        args.into.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What [`grow`] did to a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    /// The slugs of the teams added, in the file's order.
    pub added: Vec<String>,
    /// How many teams the scenario has now.
    pub teams: usize,
}

/// Adds the teams of `csv` (named `source` in the comment above them) to the scenario file at
/// `scenario`: every row checked, the grown scenario validated as a whole, then the file
/// replaced in one step. On any problem nothing is written and the error lists every problem
/// with its line.
pub fn grow(scenario: &Path, csv: &str, source: &str) -> Result<Grown, String> {
    let text = std::fs::read_to_string(scenario).map_err(|e| format!("reading {}: {e}", scenario.display()))?;
    let current = scenario::parse(&text, scenario, &FsProbe).map_err(|problems| {
        format!("{}: fix the scenario before importing into it:\n{problems}", scenario.display())
    })?;
    let rows = parse_rows(csv).map_err(|problems| format!("{source}:\n{}", problems.join("\n")))?;
    let taken_ids: BTreeSet<u16> = current.teams.iter().map(|t| t.id.0).collect();
    let taken_slugs: BTreeSet<String> = current.teams.iter().map(|t| t.slug.clone()).collect();
    let networks: Vec<Ipv4Net> = current.teams.iter().map(|t| t.network).collect();
    let tables = tables(&rows, &taken_ids, &taken_slugs, &networks)
        .map_err(|problems| format!("{source}:\n{}", problems.join("\n")))?;

    let mut grown = text;
    if !grown.ends_with('\n') {
        grown.push('\n');
    }
    let _ = write!(grown, "\n# {} teams imported from {source}\n", rows.len());
    grown.push_str(&tables);
    let checked = scenario::parse(&grown, scenario, &FsProbe).map_err(|problems| {
        format!("with these teams the scenario would not be valid; nothing was written:\n{problems}")
    })?;

    let temporary = scenario.with_extension("toml.importing");
    std::fs::write(&temporary, &grown).map_err(|e| format!("writing {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, scenario).map_err(|e| format!("replacing {}: {e}", scenario.display()))?;
    Ok(Grown { added: rows.into_iter().map(|r| r.slug).collect(), teams: checked.teams.len() })
}

/// Teams added to the drill this process runs, from the console: the scenario file grows as
/// `gongfang team import` grows it, then `reload` is told, and `gongfang up` starts the drill
/// again with the grown file (its store, containers and game carry on).
#[derive(Debug)]
pub struct LiveImport {
    scenario: PathBuf,
    reload: Arc<Notify>,
    /// One import at a time: each checks its rows against the file the last one wrote.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl LiveImport {
    pub fn new(scenario: PathBuf, reload: Arc<Notify>) -> LiveImport {
        LiveImport { scenario, reload, one_at_a_time: tokio::sync::Mutex::new(()) }
    }

    async fn admit(&self, csv: &str) -> Result<Admitted, AdmissionRefusal> {
        let _one = self.one_at_a_time.lock().await;
        let (path, csv) = (self.scenario.clone(), csv.to_owned());
        let grown = tokio::task::spawn_blocking(move || grow(&path, &csv, "the console"))
            .await
            .map_err(|e| AdmissionRefusal::Invalid(format!("the import stopped: {e}")))?
            .map_err(AdmissionRefusal::Invalid)?;
        tracing::info!(added = ?grown.added, teams = grown.teams, "teams added to the scenario; the drill starts again");
        // A stored permit: the drill stops for the reload even if it is not waiting yet.
        self.reload.notify_one();
        Ok(Admitted { added: grown.added, teams: grown.teams })
    }
}

impl TeamAdmission for LiveImport {
    fn admit<'a>(&'a self, csv: &'a str) -> AdmissionFuture<'a> {
        Box::pin(LiveImport::admit(self, csv))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The file's teams, or every problem found, each with its line.
fn parse_rows(csv: &str) -> Result<Vec<Row>, Vec<String>> {
    let records = records(csv)?;
    let mut problems = Vec::new();
    let Some((_, header)) = records.first() else {
        return Err(vec![
            "the file is empty; its first line names the columns, e.g. `slug,name,name_zh,role`".to_owned(),
        ]);
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase()).collect();
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            problems.push(format!("line 1: unknown column `{h}`; the columns are {}", COLUMNS.join(", ")));
        }
    }
    for required in ["slug", "name"] {
        if !header.iter().any(|h| h == required) {
            problems.push(format!("line 1: the column `{required}` is missing"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let column = |name: &str| header.iter().position(|h| h == name);
    if records.len() - 1 > MAX_ROWS {
        return Err(vec![format!("{} teams in one file; import at most {MAX_ROWS} at a time", records.len() - 1)]);
    }
    let mut rows = Vec::new();
    for (line, fields) in records.iter().skip(1) {
        let line = *line;
        if fields.len() != header.len() {
            problems.push(format!("line {line}: {} fields, but the header names {}", fields.len(), header.len()));
            continue;
        }
        let get = |name: &str| column(name).map(|i| fields[i].trim().to_owned()).filter(|v| !v.is_empty());
        let slug = get("slug").unwrap_or_default();
        if slug.is_empty() || slug.len() > 32 {
            problems.push(format!("line {line}: the slug must be 1 to 32 characters"));
        } else if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || slug.starts_with('-')
            || slug.ends_with('-')
        {
            problems.push(format!("line {line}: slug `{slug}` may only hold lowercase letters, digits and inner `-`"));
        }
        let name = get("name").unwrap_or_default();
        if name.is_empty() {
            problems.push(format!("line {line}: the team has no name"));
        }
        let role = match get("role") {
            None => None,
            Some(r) => match Role::from_name(&r) {
                Some(role) => Some(role),
                None => {
                    problems.push(format!("line {line}: role `{r}` is not one of {}", Role::NAMES.join(", ")));
                    None
                }
            },
        };
        let network = match get("network") {
            None => None,
            Some(n) => match Ipv4Net::parse(&n) {
                Ok(net) => Some(net),
                Err(e) => {
                    problems.push(format!("line {line}: network {e}; write it like 10.60.7.0/24"));
                    None
                }
            },
        };
        let id = match get("id") {
            None => None,
            Some(i) => match i.parse::<u16>().ok().filter(|i| *i > 0) {
                Some(id) => Some(id),
                None => {
                    problems.push(format!("line {line}: id `{i}` is not a team number from 1 to 65535"));
                    None
                }
            },
        };
        let nop = match get("nop").as_deref().map(str::to_lowercase).as_deref() {
            None | Some("no" | "false" | "0") => false,
            Some("yes" | "true" | "1") => true,
            Some(other) => {
                problems.push(format!("line {line}: nop `{other}` is not yes or no"));
                false
            }
        };
        rows.push(Row { line, slug, name, name_zh: get("name_zh"), role, network, id, nop });
    }
    if problems.is_empty() { Ok(rows) } else { Err(problems) }
}

/// The `[[team]]` tables of `rows`, with ids and networks given to rows without; or every
/// clash with the scenario's teams or between rows.
fn tables(
    rows: &[Row],
    taken_ids: &BTreeSet<u16>,
    taken_slugs: &BTreeSet<String>,
    networks: &[Ipv4Net],
) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut ids = taken_ids.clone();
    let mut slugs = taken_slugs.clone();
    let mut nets = networks.to_vec();
    for row in rows {
        if !slugs.insert(row.slug.clone()) {
            problems.push(format!("line {}: slug `{}` is taken by another team", row.line, row.slug));
        }
        if let Some(id) = row.id
            && !ids.insert(id)
        {
            problems.push(format!("line {}: id {id} is taken by another team", row.line));
        }
        if let Some(net) = row.network {
            if nets.iter().any(|n| n.overlaps(net)) {
                problems.push(format!("line {}: network {net} overlaps another team's", row.line));
            }
            nets.push(net);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Networks not given: the next free /24s after the scenario's first team's (10.60.1.0/24
    // when it has none).
    let base = networks.first().map_or(Ipv4Addr::new(10, 60, 1, 0), |n| n.network());
    let mut next_block = u32::from(base) >> 8;
    let mut next_id = ids.iter().next_back().copied().unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        let id = match row.id {
            Some(id) => id,
            None => {
                next_id = next_id.checked_add(1).ok_or_else(|| vec!["no team number left under 65536".to_owned()])?;
                while ids.contains(&next_id) {
                    next_id += 1;
                }
                ids.insert(next_id);
                next_id
            }
        };
        let network = match row.network {
            Some(net) => net,
            None => loop {
                let addr = Ipv4Addr::from(next_block << 8);
                next_block += 1;
                let net = Ipv4Net { addr, prefix: 24 };
                if !nets.iter().any(|n| n.overlaps(net)) {
                    nets.push(net);
                    break net;
                }
            },
        };
        let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let _ = writeln!(out, "\n[[team]]\nid = {id}\nslug = {}\nname = {}", quoted(&row.slug), quoted(&row.name));
        if let Some(zh) = &row.name_zh {
            let _ = writeln!(out, "name_zh = {}", quoted(zh));
        }
        if let Some(role) = row.role {
            let _ = writeln!(out, "role = {}", quoted(role.as_str()));
        }
        let _ = writeln!(out, "network = {}", quoted(&network.to_string()));
        if row.nop {
            out.push_str("nop = true\n");
        }
    }
    Ok(out)
}

/// The file's records with their first line numbers: comma-separated fields, a field in double
/// quotes may hold commas, line breaks and `""` for a quote. Blank lines are skipped.
fn records(csv: &str) -> Result<Vec<(usize, Vec<String>)>, Vec<String>> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = csv.chars().peekable();
    let mut touched = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() => {
                field.clear();
                quoted = true;
                touched = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                touched = true;
            }
            (false, '\r') => {}
            (false, '\n') => {
                if touched || !field.trim().is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut fields)));
                }
                field.clear();
                touched = false;
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(vec![format!("line {start}: a quoted field is never closed")]);
    }
    if touched || !field.trim().is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        let csv = "slug,name\r\n\"a\",\"Kowloon, \"\"East\"\"\"\n\nb,\"two\nlines\"\nc,plain\n";
        let r = records(csv).unwrap();
        assert_eq!(r[1], (2, vec!["a".to_owned(), "Kowloon, \"East\"".to_owned()]));
        assert_eq!(r[2], (4, vec!["b".to_owned(), "two\nlines".to_owned()]));
        assert_eq!(r[3], (6, vec!["c".to_owned(), "plain".to_owned()]));
        assert!(records("slug,name\n\"open,x\n").is_err());
    }

    #[test]
    fn every_bad_row_is_named_with_its_line() {
        let csv = "slug,name,role,colour\n";
        assert!(parse_rows(csv).unwrap_err()[0].contains("unknown column `colour`"));
        let csv = "slug,name,role,nop\nBad Slug,x,both,no\nok,,both,no\nok2,y,judge,no\nok3,z,both,maybe\nok4,w\n";
        let problems = parse_rows(csv).unwrap_err();
        for (line, says) in [(2, "may only hold"), (3, "no name"), (4, "not one of"), (5, "yes or no"), (6, "fields")] {
            assert!(
                problems.iter().any(|p| p.starts_with(&format!("line {line}:")) && p.contains(says)),
                "line {line}: {problems:?}"
            );
        }
    }

    #[test]
    fn ids_and_networks_follow_the_scenarios_and_clashes_are_refused() {
        let row = |line, slug: &str| Row {
            line,
            slug: slug.to_owned(),
            name: slug.to_owned(),
            name_zh: None,
            role: None,
            network: None,
            id: None,
            nop: false,
        };
        let nets = [Ipv4Net::parse("10.60.1.0/24").unwrap(), Ipv4Net::parse("10.60.3.0/24").unwrap()];
        let ids = BTreeSet::from([1, 3]);
        let slugs = BTreeSet::from(["ddb".to_owned(), "nop".to_owned()]);
        let out = tables(&[row(2, "a"), row(3, "b")], &ids, &slugs, &nets).unwrap();
        assert!(out.contains("id = 4\nslug = \"a\"\nname = \"a\"\nnetwork = \"10.60.2.0/24\""), "{out}");
        assert!(out.contains("id = 5\nslug = \"b\"\nname = \"b\"\nnetwork = \"10.60.4.0/24\""), "{out}");
        let clash = tables(&[row(2, "ddb"), row(3, "x"), row(4, "x")], &ids, &slugs, &nets).unwrap_err();
        assert_eq!(clash.len(), 2, "{clash:?}");
        assert!(clash[0].starts_with("line 2:") && clash[1].starts_with("line 4:"), "{clash:?}");
    }
}
