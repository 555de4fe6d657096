//! The dependency rules of `ARCHITECTURE.md` ("Boundaries"), checked against `cargo metadata`.
//!
//! The map is only worth reading while it is true, so the rules it states live here as data
//! and `tests/architecture.rs` fails, naming the crate and the dependency, when the workspace
//! breaks one. "Depends on" means a direct normal dependency (`[dependencies]`) for the rules
//! about who may use a library, and the whole tree of normal and build dependencies for the
//! teams' command, which must pull in no server crate at all. Dev-dependencies never count:
//! tests may start a real server.
//!
//! Beside them live the repository's other standing checks: a purpose line atop every Rust file
//! (`tests/architecture.rs`) and Hong Kong usage in every tracked text file
//! (`tests/hong_kong_usage.rs`): the platform serves Hong Kong's government drills, so its
//! Chinese is Hong Kong Traditional Chinese and its sample teams are Hong Kong bodies, not
//! Taiwan's ministries; and the operators' dashboard and alerts query only series the
//! platform writes (`tests/operations.rs`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Libraries only some crates may depend on directly, and those crates.
pub const OWNED: &[Owned] = &[
    Owned { family: &["sea-orm", "sea-query", "sqlx"], owners: &["gongfang-store", "gongfang-migration"], what: "SQL" },
    Owned { family: &["bollard"], owners: &["gongfang-docker"], what: "the Docker engine" },
    Owned { family: &["wasmtime"], owners: &["gongfang-sandbox"], what: "the wasm runtime" },
];

/// Command-line parsing: only for crates that build a command (a `bin` target).
pub const CLI: &[&str] = &["clap"];

/// The teams' command, which must link no server part.
pub const AGENT: &str = "gongfang-agent";

/// What the teams' command must not pull in, directly or through anything it depends on: our
/// server crates (by exact name: `gongfang-core` is the domain and may be shared) ...
pub const SERVER_CRATES: &[&str] = &[
    "gongfang",
    "gongfang-store",
    "gongfang-migration",
    "gongfang-engine",
    "gongfang-docker",
    "gongfang-sandbox",
    "gongfang-submission",
    "gongfang-reports",
    "gongfang-web",
];

/// ... and the libraries they are built on (by family, e.g. `sqlx` and `sqlx-postgres`).
pub const SERVER_LIBRARIES: &[&str] = &["sea-orm", "sea-query", "sqlx", "wasmtime", "bollard", "axum"];

/// Whether crate `name` is a server part the teams' command must not link.
pub fn is_server(name: &str) -> bool {
    SERVER_CRATES.contains(&name) || in_family(name, SERVER_LIBRARIES)
}

/// Libraries of one concern (a family of crates by name prefix) and the crates that own it.
#[derive(Debug)]
pub struct Owned {
    /// `sqlx` stands for `sqlx` and every `sqlx-…` crate.
    pub family: &'static [&'static str],
    pub owners: &'static [&'static str],
    /// How the message names the concern.
    pub what: &'static str,
}

/// Whether crate `name` is `family` or one of its `family-…` crates.
fn in_family(name: &str, family: &[&str]) -> bool {
    family.iter().any(|f| name == *f || name.strip_prefix(f).is_some_and(|rest| rest.starts_with('-')))
}

/// One broken rule, said so a reader knows which crate to fix and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub krate: String,
    pub dependency: String,
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` depends on `{}`: {}", self.krate, self.dependency, self.rule)
    }
}

/// A workspace package, as much of it as the rules read.
#[derive(Debug)]
struct Package {
    name: String,
    /// Direct normal dependencies, by package name.
    normal: BTreeSet<String>,
    has_bin: bool,
    /// The library's root file, for crates with a library and a command.
    lib_root: Option<PathBuf>,
}

/// Reads `cargo metadata --format-version 1` output.
#[derive(Debug)]
pub struct Workspace {
    members: Vec<Package>,
    /// Package id → (name, ids of its normal and build dependencies).
    graph: BTreeMap<String, (String, Vec<String>)>,
    member_ids: BTreeMap<String, String>,
}

impl Workspace {
    /// Parses the JSON `cargo metadata` prints (with the dependency graph, so without
    /// `--no-deps`).
    pub fn from_metadata(metadata: &Value) -> Result<Workspace, String> {
        let members: BTreeSet<&str> = metadata["workspace_members"]
            .as_array()
            .ok_or("no workspace_members")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut out = Workspace { members: Vec::new(), graph: BTreeMap::new(), member_ids: BTreeMap::new() };
        let mut names = BTreeMap::new();
        for p in metadata["packages"].as_array().ok_or("no packages")? {
            let id = p["id"].as_str().ok_or("a package without id")?;
            let name = p["name"].as_str().ok_or("a package without name")?;
            names.insert(id.to_owned(), name.to_owned());
            if !members.contains(id) {
                continue;
            }
            let normal = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect();
            let targets = p["targets"].as_array().into_iter().flatten();
            let kinds = |t: &Value, k: &str| t["kind"].as_array().is_some_and(|ks| ks.iter().any(|x| x == k));
            let has_bin = targets.clone().any(|t| kinds(t, "bin"));
            let lib_root = targets
                .clone()
                .find(|t| kinds(t, "lib"))
                .and_then(|t| t["src_path"].as_str())
                .map(PathBuf::from)
                .filter(|_| has_bin);
            out.member_ids.insert(name.to_owned(), id.to_owned());
            out.members.push(Package { name: name.to_owned(), normal, has_bin, lib_root });
        }
        for node in metadata["resolve"]["nodes"].as_array().ok_or("no resolve graph; run without --no-deps")? {
            let id = node["id"].as_str().ok_or("a node without id")?;
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    // Everything but dev-dependencies ends up in what the crate builds.
                    d["dep_kinds"].as_array().is_some_and(|ks| ks.iter().any(|k| k["kind"] != "dev"))
                })
                .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
                .collect();
            let name = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
            out.graph.insert(id.to_owned(), (name, deps));
        }
        Ok(out)
    }

    /// Every rule the workspace breaks, sorted by crate.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        for p in &self.members {
            for dep in &p.normal {
                for rule in OWNED {
                    if in_family(dep, rule.family) && !rule.owners.contains(&p.name.as_str()) {
                        out.push(Violation {
                            krate: p.name.clone(),
                            dependency: dep.clone(),
                            rule: format!("only {} may talk to {}", rule.owners.join(" and "), rule.what),
                        });
                    }
                }
                if in_family(dep, CLI) && !p.has_bin {
                    out.push(Violation {
                        krate: p.name.clone(),
                        dependency: dep.clone(),
                        rule: "a library holds no command line; parse arguments in the binary".into(),
                    });
                }
            }
            if let Some(root) = &p.lib_root
                && p.normal.iter().any(|d| in_family(d, CLI))
            {
                out.extend(cli_in_library(&p.name, root));
            }
        }
        out.extend(self.agent_violations());
        out.sort();
        out.dedup();
        out
    }

    /// Server crates anywhere in the teams' command's tree, each with the path that pulls it in.
    fn agent_violations(&self) -> Vec<Violation> {
        let Some(root) = self.member_ids.get(AGENT) else {
            return vec![Violation {
                krate: AGENT.into(),
                dependency: "-".into(),
                rule: "the teams' command is missing from the workspace".into(),
            }];
        };
        let mut out = Vec::new();
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([root.as_str()]);
        while let Some(id) = queue.pop_front() {
            let Some((name, deps)) = self.graph.get(id) else { continue };
            if id != root && is_server(name) {
                let mut path = vec![name.as_str()];
                let mut at = id;
                while let Some(up) = parent.get(at) {
                    path.push(&self.graph[*up].0);
                    at = up;
                }
                path.reverse();
                out.push(Violation {
                    krate: AGENT.into(),
                    dependency: name.clone(),
                    rule: format!("the teams' command links no server crate (through {})", path.join(" → ")),
                });
                // What a server crate pulls in is reported once, at the server crate.
                continue;
            }
            for dep in deps {
                if dep != root && !parent.contains_key(dep.as_str()) {
                    parent.insert(dep, id);
                    queue.push_back(dep);
                }
            }
        }
        out
    }
}

/// Files of the library of `krate` (rooted at `root`) that use clap. A crate with a command
/// and a library may depend on clap for the command, but what its library exports holds none.
fn cli_in_library(krate: &str, root: &Path) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut files = vec![root.to_path_buf()];
    while let Some(file) = files.pop() {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        if text.contains("clap::") || text.contains("use clap") {
            out.push(Violation {
                krate: krate.into(),
                dependency: "clap".into(),
                rule: format!(
                    "its library uses clap in {}; keep the command line in the binary's modules",
                    file.display()
                ),
            });
        }
        files.extend(child_modules(&file, &text));
    }
    out
}

/// Files of the modules `file` declares with `mod name;`.
fn child_modules(file: &Path, text: &str) -> Vec<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = if matches!(stem, "lib" | "main" | "mod") { dir.to_path_buf() } else { dir.join(stem) };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub ").or_else(|| line.strip_prefix("pub(crate) ")).unwrap_or(line);
            let name = rest.strip_prefix("mod ")?.strip_suffix(';')?.trim();
            let flat = dir.join(format!("{name}.rs"));
            Some(if flat.exists() { flat } else { dir.join(name).join("mod.rs") })
        })
        .collect()
}

/// `.rs` files under `root` (skipping `target` folders and hidden ones) whose first non-empty
/// line is not a `//!` line saying what the file is for.
pub fn files_without_purpose(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = std::fs::read_to_string(&path)?;
                let first = text.lines().map(str::trim).find(|l| !l.is_empty());
                if !first.is_some_and(|l| l.starts_with("//!")) {
                    out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A word that is not Hong Kong usage, and what to write instead.
#[derive(Debug)]
pub struct Usage {
    /// Chinese words match anywhere; ASCII words (team slugs) only whole, in any case.
    pub word: &'static str,
    pub instead: &'static str,
}

/// Taiwan's words and ministries (and the slugs of its ministries), which crept into scenarios,
/// tests and docs before. The words are written as escapes so that this file holds none of them
/// and is checked like any other; what to write instead is plain Hong Kong usage.
pub const NOT_HONG_KONG: &[Usage] = &[
    Usage { word: "\u{6578}\u{4F4D}", instead: "數碼 or 數字" },
    Usage { word: "\u{8CC7}\u{5B89}", instead: "網絡安全" },
    Usage { word: "\u{7DB2}\u{8DEF}", instead: "網絡" },
    Usage { word: "\u{8EDF}\u{9AD4}", instead: "軟件" },
    Usage { word: "\u{958B}\u{653E}\u{8CC7}\u{6599}", instead: "開放數據" },
    Usage { word: "\u{8CC7}\u{6599}\u{5E73}\u{53F0}", instead: "數據平台" },
    Usage {
        word: "\u{6578}\u{4F4D}\u{767C}\u{5C55}\u{90E8}",
        instead: "數字發展局 (that is Taiwan's Ministry of Digital Affairs)",
    },
    Usage {
        word: "\u{5167}\u{653F}\u{90E8}",
        instead: "a Hong Kong body, e.g. 公民紀錄處 (that is Taiwan's Ministry of the Interior)",
    },
    Usage {
        word: "\u{74B0}\u{5883}\u{90E8}",
        instead: "a Hong Kong body, e.g. 環境監測署 (that is Taiwan's Ministry of Environment)",
    },
    Usage {
        word: "\u{885B}\u{751F}\u{798F}\u{5229}\u{90E8}",
        instead: "a Hong Kong body, e.g. 社區健康紀錄管理局 (that is Taiwan's Ministry of Health and Welfare)",
    },
    Usage { word: "\u{884C}\u{653F}\u{9662}", instead: "a Hong Kong body (that is Taiwan's Executive Yuan)" },
    Usage { word: "\u{81FA}\u{7063}", instead: "香港: the drills are Hong Kong's" },
    Usage { word: "\u{53F0}\u{7063}", instead: "香港: the drills are Hong Kong's" },
    Usage {
        word: "\x6Doda",
        instead: "ddb, the Digital Development Bureau (that slug is Taiwan's Ministry of Digital Affairs)",
    },
    Usage {
        word: "\x6Doenv",
        instead: "emd, the Environmental Monitoring Department (that slug is Taiwan's Ministry of Environment)",
    },
];

/// A word of [`NOT_HONG_KONG`] found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Counting from 1.
    pub line: usize,
    /// As the text has it: a slug may be in capitals, as a constant's name.
    pub found: String,
    pub instead: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.found, self.instead)
    }
}

/// The words of [`NOT_HONG_KONG`] in `text`, by line. A word found inside a longer one (a
/// ministry's name that starts with another listed word) is said once, as the longer one.
pub fn not_hong_kong_usage(text: &str) -> Vec<Finding> {
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        // Same byte offsets as `line`: only ASCII letters change.
        let folded = line.to_ascii_lowercase();
        let mut spans: Vec<(usize, usize, &Usage)> = Vec::new();
        for usage in NOT_HONG_KONG {
            let ascii = usage.word.is_ascii();
            let haystack = if ascii { folded.as_str() } else { line };
            for (at, word) in haystack.match_indices(usage.word) {
                let end = at + word.len();
                if ascii && (word_char(line[..at].chars().next_back()) || word_char(line[end..].chars().next())) {
                    continue;
                }
                // 部 then 門 is 部門, "department": an environment department is any city's.
                if usage.word.ends_with('部') && line[end..].starts_with('門') {
                    continue;
                }
                spans.push((at, end, usage));
            }
        }
        spans.sort_by_key(|&(at, end, _)| (at, std::cmp::Reverse(end)));
        for (i, &(at, end, usage)) in spans.iter().enumerate() {
            if !spans[..i].iter().any(|&(a, e, _)| a <= at && end <= e) {
                out.push(Finding { line: n + 1, found: line[at..end].to_owned(), instead: usage.instead });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn package(name: &str, deps: &[&str], bin: bool) -> Value {
        let mut targets = vec![json!({ "kind": ["lib"], "src_path": format!("/nowhere/{name}/src/lib.rs") })];
        if bin {
            targets.push(json!({ "kind": ["bin"], "src_path": format!("/nowhere/{name}/src/main.rs") }));
        }
        json!({
            "id": name,
            "name": name,
            "targets": targets,
            "dependencies": deps.iter().map(|d| json!({ "name": d, "kind": null })).collect::<Vec<_>>(),
        })
    }

    fn node(id: &str, deps: &[(&str, &str)]) -> Value {
        let deps: Vec<_> = deps
            .iter()
            .map(|(d, kind)| {
                let kind = if *kind == "normal" { Value::Null } else { json!(kind) };
                json!({ "pkg": d, "dep_kinds": [{ "kind": kind }] })
            })
            .collect();
        json!({ "id": id, "deps": deps })
    }

    fn workspace(packages: Vec<Value>, nodes: Vec<Value>) -> Workspace {
        let members: Vec<_> = packages.iter().map(|p| p["id"].clone()).collect();
        let metadata = json!({ "packages": packages, "workspace_members": members, "resolve": { "nodes": nodes } });
        Workspace::from_metadata(&metadata).unwrap()
    }

    #[test]
    fn owned_libraries_only_in_their_owners() {
        let ws = workspace(
            vec![
                package("gongfang-store", &["sea-orm"], false),
                package("gongfang-web", &["bollard", "sqlx-core", "axum"], false),
                package("gongfang-docker", &["bollard"], false),
                package("gongfang-engine", &["wasmtime-wasi"], false),
                package(AGENT, &[], true),
            ],
            vec![node(AGENT, &[])],
        );
        let found: Vec<_> = ws.violations().into_iter().map(|v| (v.krate, v.dependency)).collect();
        let want = [("gongfang-engine", "wasmtime-wasi"), ("gongfang-web", "bollard"), ("gongfang-web", "sqlx-core")];
        assert_eq!(found, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn clap_only_where_a_command_is_built() {
        let ws = workspace(
            vec![package("gongfang-reports", &["clap"], false), package(AGENT, &["clap"], true)],
            vec![node(AGENT, &[])],
        );
        let v = ws.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].krate.as_str(), v[0].dependency.as_str()), ("gongfang-reports", "clap"));
    }

    #[test]
    fn the_agent_tree_is_walked_past_its_direct_dependencies() {
        let ws = workspace(
            vec![package(AGENT, &["helper"], true), package("helper", &[], false)],
            vec![
                node(AGENT, &[("helper", "normal"), ("gongfang-store", "dev")]),
                node("helper", &[("hyper-thing", "normal")]),
                node("hyper-thing", &[("axum", "build")]),
                node("axum", &[]),
                node("gongfang-store", &[("sea-orm", "normal")]),
                node("sea-orm", &[]),
            ],
        );
        let v = ws.violations();
        assert_eq!(v.len(), 1, "a dev-dependency does not count: {v:?}");
        assert_eq!(v[0].dependency, "axum");
        assert!(v[0].rule.contains("gongfang-agent → helper → hyper-thing → axum"), "{}", v[0]);
    }

    #[test]
    fn clap_is_found_in_a_library_module_however_deep() {
        let dir = std::env::temp_dir().join(format!("gongfang-architecture-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("lib.rs"), "//! Lib.\npub mod a;\n").unwrap();
        std::fs::write(dir.join("main.rs"), "//! Main.\nuse clap::Parser;\n").unwrap();
        std::fs::write(dir.join("a.rs"), "//! A.\nmod b;\n").unwrap();
        std::fs::write(dir.join("a/b.rs"), "//! B.\nuse clap::Args;\n").unwrap();
        let found = cli_in_library("gongfang", &dir.join("lib.rs"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1, "only the library's module, not main.rs: {found:?}");
        assert!(found[0].rule.contains("b.rs"), "{}", found[0]);
    }

    #[test]
    fn families_match_whole_names() {
        assert!(in_family("sqlx-postgres", &["sqlx"]));
        assert!(in_family("sea-orm", &["sea-orm"]));
        assert!(!in_family("sqlxish", &["sqlx"]));
        assert!(is_server("gongfang") && is_server("sea-orm-migration") && is_server("axum-core"));
        assert!(!is_server("gongfang-core"), "the domain crate is no server part");
    }

    /// Taiwan's digital and environment ministries' slugs, spelt so that this file holds neither.
    const DIGITAL: &str = "\x6Doda";
    const ENVIRONMENT: &str = "\x6Doenv";

    #[test]
    fn taiwan_usage_is_found_by_line_with_hong_kong_usage_to_write_instead() {
        let upper = DIGITAL.to_uppercase();
        let text = format!(
            "fine\r\nthe \u{7DB2}\u{8DEF} is down\n\nteam {DIGITAL}, {upper}, {DIGITAL}-1.conf, attack_on_{DIGITAL}\n"
        );
        let found = not_hong_kong_usage(&text);
        let at: Vec<_> = found.iter().map(|f| (f.line, f.found.as_str())).collect();
        assert_eq!(at, [(2, "\u{7DB2}\u{8DEF}"), (4, DIGITAL), (4, upper.as_str()), (4, DIGITAL), (4, DIGITAL)]);
        assert_eq!(found[0].to_string(), "\u{7DB2}\u{8DEF} → 網絡");
        assert!(found[1].instead.starts_with("ddb"), "{}", found[1]);
    }

    #[test]
    fn slugs_match_only_as_whole_words() {
        let near = [
            format!("{DIGITAL}l"),
            format!("com{DIGITAL}s"),
            format!("{DIGITAL}2"),
            format!("3{DIGITAL}"),
            format!("{ENVIRONMENT}s"),
        ];
        for text in near.iter().map(String::as_str).chain(["modest", "a moment", "nhits", "mois"]) {
            let found = not_hong_kong_usage(text);
            assert!(found.is_empty(), "{text}: {found:?}");
        }
        let found = not_hong_kong_usage(&format!("gf-national-2026-{ENVIRONMENT}-opendata"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].found, ENVIRONMENT);
    }

    #[test]
    fn a_longer_word_is_said_once_and_a_department_is_no_ministry() {
        // Taiwan's digital ministry starts with its word for digital.
        let found = not_hong_kong_usage("\u{6578}\u{4F4D}\u{767C}\u{5C55}\u{90E8}");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].instead.starts_with("數字發展局"), "{}", found[0]);
        // An environment ministry is Taiwan's; an environment department (部門) is not.
        assert_eq!(not_hong_kong_usage("\u{74B0}\u{5883}\u{90E8}").len(), 1);
        assert!(not_hong_kong_usage("\u{74B0}\u{5883}\u{90E8}\u{9580}").is_empty());
        let found = not_hong_kong_usage("數據 網絡安全 軟件 數字發展局 香港");
        assert!(found.is_empty(), "Hong Kong usage passes: {found:?}");
    }
}
