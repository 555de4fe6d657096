//! Reading a scenario from disk: the real file system and environment behind validation, and
//! the secret resolved from wherever the scenario says it lives.

use std::path::Path;

use anyhow::{Context, bail};
use gongfang_core::Secret;
use gongfang_core::scenario::{self, Probe, Problems, Scenario, SecretSource};

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

/// The scenario's secret bytes, from wherever it says they live.
pub fn resolve_secret(source: &SecretSource) -> anyhow::Result<Secret<Vec<u8>>> {
    let secret = match source {
        SecretSource::Inline(s) => s.expose().clone(),
        SecretSource::Env(name) => {
            std::env::var(name).with_context(|| format!("environment variable {name} is not set"))?
        }
        SecretSource::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?
            .trim_end()
            .to_owned(),
    };
    if secret.len() < 16 {
        bail!("the scenario's secret is shorter than 16 characters; use a long random string");
    }
    Ok(Secret::new(secret.into_bytes()))
}
