//! Base images without a registry: a minimal Debian root file system made by `debootstrap`
//! and imported into the engine as an image (what `docker import` does), so a service's
//! Dockerfile can start `FROM` it on a machine that never pulls.

use std::path::{Path, PathBuf};

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;
use tracing::info;

use crate::{Engine, Error, Result, Runtime};

/// What to put in a base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The image's name, e.g. `gongfang/python:bookworm`.
    pub tag: String,
    /// The Debian release, e.g. `bookworm`.
    pub suite: String,
    /// Packages installed on top of the minimal base, e.g. `python3`.
    pub include: Vec<String>,
}

impl BaseImage {
    /// The mirror debootstrap downloads from: `$DEBIAN_MIRROR`, else the first one apt uses on
    /// this machine.
    pub fn mirror() -> Result<String> {
        if let Some(m) = std::env::var("DEBIAN_MIRROR").ok().filter(|m| !m.trim().is_empty()) {
            return Ok(m);
        }
        let mut lists = vec![PathBuf::from("/etc/apt/sources.list")];
        let mut deb822 = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                match p.extension().and_then(|e| e.to_str()) {
                    Some("list") => lists.push(p),
                    Some("sources") => deb822.push(p),
                    _ => {}
                }
            }
        }
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let one_line = lists.iter().map(read).find_map(|text| mirror_in_list(&text));
        let found = one_line.or_else(|| deb822.iter().map(read).find_map(|text| mirror_in_sources(&text)));
        found.ok_or_else(|| {
            Error::BaseImage("no Debian mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR".into())
        })
    }
}

/// The first `http(s)` URL of a `deb` line in one-line format (`deb [opts] URL suite …`).
fn mirror_in_list(text: &str) -> Option<String> {
    text.lines()
        .map(str::split_whitespace)
        .find_map(|mut words| {
            (words.next() == Some("deb")).then(|| words.find(|w| w.starts_with("http:") || w.starts_with("https:")))?
        })
        .map(str::to_owned)
}

/// The first `URIs:` of a deb822 `.sources` file that is not a security mirror.
fn mirror_in_sources(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("URIs:"))
        .filter_map(|uris| uris.split_whitespace().next())
        .find(|uri| !uri.contains("security"))
        .map(str::to_owned)
}

impl Engine {
    /// Builds `image` with debootstrap (a minute or more: it downloads Debian packages) and
    /// imports it; returns the image id. Needs root and the `debootstrap` program.
    pub async fn build_base_image(&self, image: &BaseImage) -> Result<String> {
        let mirror = BaseImage::mirror()?;
        let root = tempdir_for(&image.suite)?;
        let result = async {
            debootstrap(image, &mirror, &root.0).await?;
            self.import_root_fs(&image.tag, &root.0).await
        }
        .await;
        drop(root);
        result
    }

    /// Imports a root file system folder as the image `tag`, with a usual `PATH` and a shell
    /// as its command; returns the image id.
    pub async fn import_root_fs(&self, tag: &str, root: &Path) -> Result<String> {
        // The system's tar keeps owners, modes and device files exactly as debootstrap made them.
        let out = tokio::process::Command::new("tar")
            .arg("-C")
            .arg(root)
            .args(["-c", "."])
            .output()
            .await
            .map_err(|e| Error::BaseImage(format!("cannot run tar: {e}")))?;
        if !out.status.success() {
            return Err(Error::BaseImage(format!(
                "tar of {} failed: {}",
                root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (repo, version) = split_tag(tag);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repo)
            .tag(version)
            .changes(vec![
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
                r#"CMD ["/bin/bash"]"#.to_owned(),
            ])
            .build();
        let mut stream = self.docker().create_image(Some(options), Some(bollard::body_full(out.stdout.into())), None);
        while let Some(item) = stream.next().await {
            item.map_err(Error::docker(format!("import image {tag}")))?;
        }
        let id =
            self.image_id(tag).await?.ok_or_else(|| Error::BaseImage(format!("no image {tag} after the import")))?;
        info!(tag, id, "base image imported");
        Ok(id)
    }
}

/// `repo:tag` split as the engine's API wants it (`latest` when no tag is given).
fn split_tag(tag: &str) -> (&str, &str) {
    match tag.rsplit_once(':') {
        Some((repo, version)) if !version.contains('/') => (repo, version),
        _ => (tag, "latest"),
    }
}

/// A folder removed when dropped, even after a failure.
struct TempRoot(PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_for(suite: &str) -> Result<TempRoot> {
    let unique = format!("gongfang-base-{suite}-{}-{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let path = std::env::temp_dir().join(unique);
    std::fs::create_dir_all(&path).map_err(|e| Error::BaseImage(format!("cannot create {}: {e}", path.display())))?;
    Ok(TempRoot(path))
}

async fn debootstrap(image: &BaseImage, mirror: &str, root: &Path) -> Result<()> {
    let mut cmd = tokio::process::Command::new("debootstrap");
    cmd.arg("--variant=minbase");
    if !image.include.is_empty() {
        cmd.arg(format!("--include={}", image.include.join(",")));
    }
    cmd.arg(&image.suite).arg(root).arg(mirror);
    let out = cmd.output().await.map_err(|e| {
        Error::BaseImage(format!(
            "cannot run debootstrap ({e}); install it (`apt-get install debootstrap`) and run as root"
        ))
    })?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::BaseImage(format!(
            "debootstrap {} from {mirror} failed ({}; it needs root): {}{}",
            image.suite,
            out.status,
            tail.join("\n"),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // Caches and logs only make the image bigger.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists", "var/log"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for entry in entries.flatten() {
                let path = entry.path();
                let keep = dir == "var/cache/apt/archives" && path.extension().is_none_or(|e| e != "deb");
                if !keep {
                    let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_are_read_from_both_formats() {
        let list = "# comment\ndeb-src http://src.example/debian bookworm main\n\
                    deb [arch=amd64] http://deb.example/debian bookworm main\n";
        assert_eq!(mirror_in_list(list).as_deref(), Some("http://deb.example/debian"));
        assert_eq!(mirror_in_list("deb cdrom:[Debian]/ bookworm main\n"), None);
        let sources = "Types: deb\nURIs: http://security.example/debian-security\n\n\
                       Types: deb\nURIs: https://deb.example/debian\nSuites: bookworm\n";
        assert_eq!(mirror_in_sources(sources).as_deref(), Some("https://deb.example/debian"));
    }

    #[test]
    fn tags_split_into_repository_and_version() {
        assert_eq!(split_tag("gongfang/python:bookworm"), ("gongfang/python", "bookworm"));
        assert_eq!(split_tag("gongfang/base"), ("gongfang/base", "latest"));
        assert_eq!(split_tag("registry.local:5000/base"), ("registry.local:5000/base", "latest"));
    }
}
