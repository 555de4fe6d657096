//! Reading a scenario from disk: the real file system and environment behind validation, and
//! the secret resolved from wherever the scenario says it lives.

use std::path::Path;

use anyhow::{Context, bail};
use gongfang_core::Secret;
use gongfang_core::scenario::{self, Drill, Probe, Problems, Scenario, SecretSource};

/// Answers validation's questions from the real file system and environment.
#[derive(Debug, Clone, Copy)]
pub struct FsProbe;

impl Probe for FsProbe {
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn env_var_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read scenario {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Problems),
}

/// Reads and validates the scenario at `path`.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let src =
        std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
    scenario::parse(&src, path, &FsProbe).map_err(LoadError::Invalid)
}

/// The drill's secret bytes, from wherever the scenario says they live. A real drill's
/// secret has at least 32 bytes (anyone who guesses it can mint flags); only a demo's
/// (`demo = true`) may be shorter, down to 16.
pub fn resolve_secret(drill: &Drill) -> anyhow::Result<Secret<Vec<u8>>> {
    let secret = match &drill.secret {
        SecretSource::Inline(s) => s.expose().clone(),
        SecretSource::Env(name) => {
            std::env::var(name).with_context(|| format!("environment variable {name} is not set"))?
        }
        SecretSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?
            .trim_end()
            .to_owned(),
    };
    let min = drill.min_secret_len();
    if secret.len() < min {
        let hint = if drill.demo { "" } else { " (a demo drill, marked demo = true, may use 16)" };
        bail!(
            "the scenario's secret has {} bytes, fewer than the {min} a drill needs{hint}; use a long random string, e.g. from `openssl rand -hex 32`",
            secret.len()
        );
    }
    Ok(Secret::new(secret.into_bytes()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A scenario whose secret lives in `secret.txt` next to it, as a real drill keeps it.
    fn drill_with_secret_file(dir: &Path, secret: &str, demo: bool) -> Drill {
        std::fs::write(dir.join("secret.txt"), format!("{secret}\n")).unwrap();
        let demo = if demo { "demo = true\n" } else { "" };
        let src = format!(
            "[drill]\nslug = \"t\"\nname = \"T\"\nduration = \"1h\"\n{demo}secret_file = \"secret.txt\"\n\n\
             [[team]]\nid = 1\nslug = \"a\"\nname = \"A\"\nnetwork = \"10.60.1.0/24\"\n\n\
             [[team]]\nid = 2\nslug = \"b\"\nname = \"B\"\nnetwork = \"10.60.2.0/24\"\n\n\
             [[service]]\nslug = \"s\"\nname = \"S\"\nimage = \"s:1\"\nports = [80]\nchecker = \"s.wasm\"\n"
        );
        let path = dir.join("scenario.toml");
        scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap_or_else(|p| panic!("{p}")).drill
    }

    #[test]
    fn a_real_drill_refuses_a_secret_shorter_than_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let short = "0123456789abcdef0123456789abcde"; // 31 bytes
        let err = resolve_secret(&drill_with_secret_file(dir.path(), short, false)).unwrap_err().to_string();
        assert!(err.contains("31 bytes, fewer than the 32"), "{err}");
        assert!(!err.contains(short), "the error shows the secret: {err}");

        let long = "0123456789abcdef0123456789abcdef";
        let secret = resolve_secret(&drill_with_secret_file(dir.path(), long, false)).unwrap();
        assert_eq!(secret.expose(), long.as_bytes(), "the file's trailing newline is not part of it");
    }

    #[test]
    fn a_demo_may_use_a_shorter_secret_but_not_a_tiny_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve_secret(&drill_with_secret_file(dir.path(), "0123456789abcdef", true)).is_ok());
        let err = resolve_secret(&drill_with_secret_file(dir.path(), "0123456789abcde", true)).unwrap_err();
        assert!(err.to_string().contains("fewer than the 16"), "{err}");
    }
}
