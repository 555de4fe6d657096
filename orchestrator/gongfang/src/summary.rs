//! What `gongfang up` and `serve` write for scripts and tests: the running drill as JSON
//! (`--summary`, format in `docs/running-a-drill.md`) and the team tokens issued so far
//! (`--tokens-file`, readable by its owner only), so nothing has to scrape the printed text.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongfang::drill::Addresses;
use gongfang_core::scenario::Scenario;
use gongfang_docker::Plan;
use serde_json::{Value, json};

/// The version of the summary's shape; raised when a field changes meaning or goes away.
pub const FORMAT: u32 = 1;

/// Everything the summary tells.
pub struct Summary<'a> {
    pub scenario: &'a Scenario,
    /// The database's URL without its password.
    pub database: &'a str,
    pub web: SocketAddr,
    /// `https` when the web port is served with a certificate, else `http`.
    pub scheme: &'a str,
    pub submit: SocketAddr,
    pub tokens_file: &'a Path,
    pub addresses: &'a Addresses,
    /// The containers' plan when this command started them (`up`).
    pub plan: Option<&'a Plan>,
}

impl Summary<'_> {
    pub fn to_json(&self) -> Value {
        let s = self.scenario;
        let teams: Vec<Value> = s
            .teams
            .iter()
            .map(|team| {
                let services: Vec<Value> = s
                    .services
                    .iter()
                    .filter_map(|service| {
                        let target = self.addresses.get(&(team.id, service.id))?;
                        let container =
                            self.plan.and_then(|p| p.instance(&team.slug, &service.slug)).map(|i| i.name.clone());
                        Some(json!({
                            "service": service.slug,
                            "address": target.address.to_string(),
                            "ports": target.ports,
                            "container": container,
                        }))
                    })
                    .collect();
                json!({
                    "id": team.id.0,
                    "slug": team.slug,
                    "role": team.role.as_str(),
                    "services": services,
                })
            })
            .collect();
        json!({
            "format": FORMAT,
            "drill": s.drill.slug,
            "pid": std::process::id(),
            "database": self.database,
            "web": self.web.to_string(),
            "scoreboard": format!("{}://{}/", self.scheme, self.web),
            "flags_http": format!("{}://{}/flags", self.scheme, self.web),
            "attack_info": format!("{}://{}/api/attack-info", self.scheme, self.web),
            "submit_tcp": self.submit.to_string(),
            "tokens_file": self.tokens_file.display().to_string(),
            "teams": teams,
        })
    }
}

/// The summary on disk, removed when dropped (the command stopped; a stale one would point at
/// ports nobody listens on).
pub struct SummaryFile(PathBuf);

impl SummaryFile {
    /// Writes `value` to `path` whole: readers see the old file or the new one, never half.
    pub fn write(path: &Path, value: &Value) -> anyhow::Result<SummaryFile> {
        let text = serde_json::to_string_pretty(value)? + "\n";
        write_whole(path, text.as_bytes(), false)
            .with_context(|| format!("cannot write the summary {}; choose another with --summary", path.display()))?;
        Ok(SummaryFile(path.to_path_buf()))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SummaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Adds the tokens issued now (team slug -> token) to the drill's tokens file and returns its
/// absolute path. Tokens are stored hashed in the database, so this file is the only copy of
/// them besides the printed text: kept across runs, replaced for a team that got a new one.
pub fn write_tokens(path: &Path, drill: &str, issued: &BTreeMap<String, String>) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        let old: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Tokens of another drill are not this drill's.
        if old["drill"] == drill
            && let Some(map) = old["tokens"].as_object()
        {
            tokens.extend(map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))));
        }
    }
    if issued.is_empty() && absolute.is_file() {
        return Ok(absolute);
    }
    tokens.extend(issued.iter().map(|(k, v)| (k.clone(), v.clone())));
    let text = serde_json::to_string_pretty(&json!({ "drill": drill, "tokens": tokens }))? + "\n";
    write_whole(path, text.as_bytes(), true).with_context(|| {
        format!("cannot write the tokens file {}; choose another with --tokens-file", path.display())
    })?;
    Ok(absolute)
}

/// Writes through a temporary file renamed over `path`; `private` files are readable by their
/// owner only.
fn write_whole(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_accumulate_per_drill_and_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let one = BTreeMap::from([("ddb".to_owned(), "t1".to_owned())]);
        let written = write_tokens(&path, "d", &one).unwrap();
        assert!(written.is_absolute());
        write_tokens(&path, "d", &BTreeMap::from([("crd".to_owned(), "t2".to_owned())])).unwrap();
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved, json!({ "drill": "d", "tokens": { "ddb": "t1", "crd": "t2" } }));
        // Another drill's tokens are dropped, not mixed in.
        write_tokens(&path, "other", &BTreeMap::from([("x".to_owned(), "t3".to_owned())])).unwrap();
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved["tokens"], json!({ "x": "t3" }));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn the_summary_file_goes_away_with_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("up.json");
        let file = SummaryFile::write(&path, &json!({ "format": FORMAT })).unwrap();
        let read: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(read["format"], FORMAT);
        drop(file);
        assert!(!path.exists());
    }
}
