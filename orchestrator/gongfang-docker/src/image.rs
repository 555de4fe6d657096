//! Service images without a registry: a build folder sent to the engine as a tar context.

use std::path::Path;

use crate::{Error, Result};

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
