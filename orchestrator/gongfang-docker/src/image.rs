//! Service images without a registry: a build folder sent to the engine as a tar context;
//! and the isolated build of a team's patched folder, with no network and bounded CPU, memory
//! and time.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures::StreamExt;
use tracing::{debug, info};

use crate::runtime::Engine;
use crate::{Error, Result};

/// What one isolated build may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildLimits {
    /// Memory of each build step's container (swap included).
    pub memory_bytes: u64,
    pub cpus: f64,
    /// The whole build; past it the build is stopped and its containers removed.
    pub timeout: Duration,
}

/// Removes an image built for a patch (by tag); a missing one is not an error.
pub async fn remove_image(engine: &Engine, tag: &str) -> Result<()> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().force(true).build();
    match engine.docker().remove_image(tag, Some(options), None).await {
        Ok(_) => Ok(()),
        Err(e) if crate::is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::docker(format!("remove image {tag}"))(e)),
    }
}

/// How many lines of the build's output an error carries.
const OUTPUT_TAIL: usize = 12;

/// Builds `tag` from a tar context with no network (`RUN` steps reach nothing), the CPU and
/// memory of `limits`, no pull (the base image must be on the engine), and intermediate
/// containers removed even when a step fails. A build past `limits.timeout` is abandoned: the
/// engine stops a build whose client went away, and its step container is removed.
pub async fn build_isolated(
    engine: &Engine,
    tag: &str,
    context: Vec<u8>,
    labels: HashMap<String, String>,
    limits: BuildLimits,
) -> Result<String> {
    let docker = engine.docker();
    let memory = i32::try_from(limits.memory_bytes).unwrap_or(i32::MAX);
    let period = 100_000;
    let options = BuildImageOptionsBuilder::new()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .pull("false")
        .networkmode("none")
        .memory(memory)
        .memswap(memory)
        .cpuperiod(period)
        .cpuquota((limits.cpus * f64::from(period)).round() as i32)
        .labels(&labels)
        .build();
    let build = async {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            // A failed stream is the engine's trouble (or ours), not the build's.
            let info = item.map_err(Error::docker(format!("build {tag}")))?;
            if let Some(detail) = info.error_detail {
                let mut message = tail.concat();
                message.push_str(&detail.message.unwrap_or_default());
                return Err(Error::Build { tag: tag.to_owned(), message });
            }
            if let Some(line) = info.stream.filter(|l| !l.trim().is_empty()) {
                debug!(tag, line = line.trim_end(), "patched build");
                if tail.len() == OUTPUT_TAIL {
                    tail.remove(0);
                }
                tail.push(line);
            }
        }
        Ok(tail)
    };
    let tail = match tokio::time::timeout(limits.timeout, build).await {
        Ok(result) => result?,
        Err(_) => return Err(Error::BuildTimeout { tag: tag.to_owned(), seconds: limits.timeout.as_secs() }),
    };
    let id = crate::docker::image_id(docker, tag).await?.ok_or_else(|| Error::Build {
        tag: tag.to_owned(),
        message: format!("no image after the build: {}", tail.concat()),
    })?;
    info!(tag, id, "patched image built");
    Ok(id)
}

/// A tar archive of everything under `dir`, paths relative to it, as `docker build` sends it.
pub fn tar_context(dir: &Path) -> Result<Vec<u8>> {
    let err = |source| Error::Context { path: dir.display().to_string(), source };
    if !dir.join("Dockerfile").is_file() {
        return Err(err(std::io::Error::new(std::io::ErrorKind::NotFound, "no Dockerfile in the build folder")));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).map_err(err)?;
    builder.into_inner().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/app"), "x").unwrap();
        let bytes = tar_context(dir.path()).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert!(names.iter().any(|n| n.ends_with("Dockerfile")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("bin/app")), "{names:?}");
    }

    #[test]
    fn a_folder_without_dockerfile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(tar_context(dir.path()), Err(Error::Context { .. })));
    }
}
