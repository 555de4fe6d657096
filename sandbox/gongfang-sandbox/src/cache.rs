//! The on-disk cache of compiled components, keyed by the component's content hash and the
//! engine's compatibility hash, so a restarted platform does not compile every checker again.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{Inner, SandboxError};

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash can be part of the key.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is read from the inner hasher.
        0
    }
}

/// The cache key: SHA-256 over the engine's compatibility hash and the component's bytes.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(b"\0component\0");
    hasher.0.update(bytes);
    hex::encode(hasher.0.finalize())
}

/// Compiles `bytes`, or loads the compiled form from the cache.
pub(crate) fn compile(inner: &Inner, name: &str, bytes: &[u8]) -> Result<Component, SandboxError> {
    let engine = &inner.engine;
    let Some(dir) = &inner.config.cache_dir else {
        return compile_now(engine, name, bytes);
    };
    let file = dir.join(format!("{}.cwasm", key(engine, bytes)));
    if file.is_file() {
        match deserialize_cached(engine, &file) {
            Ok(component) => {
                tracing::debug!(checker = name, cache = %file.display(), "compiled checker loaded from cache");
                return Ok(component);
            }
            Err(e) => {
                tracing::warn!(checker = name, cache = %file.display(), error = %e, "unusable cache entry; compiling again");
            }
        }
    }
    let component = compile_now(engine, name, bytes)?;
    store(&component, &file)?;
    Ok(component)
}

fn compile_now(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Component, SandboxError> {
    let started = std::time::Instant::now();
    let component = Component::new(engine, bytes)
        .map_err(|e| SandboxError::Compile { path: name.to_owned(), message: format!("{e:#}") })?;
    tracing::info!(checker = name, elapsed_ms = started.elapsed().as_millis() as u64, "checker compiled");
    Ok(component)
}

/// Writes the compiled component next to its final name and renames it into place, so a
/// reader never sees a half-written file.
fn store(component: &Component, file: &Path) -> Result<(), SandboxError> {
    let cache_err = |source| SandboxError::Cache { path: file.display().to_string(), source };
    let serialized = component.serialize().map_err(|e| cache_err(std::io::Error::other(format!("{e:#}"))))?;
    let tmp: PathBuf = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serialized).map_err(cache_err)?;
    std::fs::rename(&tmp, file).map_err(cache_err)?;
    Ok(())
}

/// Loads a compiled component from the cache.
///
/// `Component::deserialize` is unsafe because it loads native code from the bytes and trusts
/// them to be what wasmtime produced. That holds here: only [`store`] writes into the cache
/// directory, with the output of `Component::serialize` from an engine whose compatibility
/// hash is part of the file name, and files appear only by atomic rename. wasmtime still checks
/// the header and the engine settings and rejects a mismatch with an error. The cache directory
/// must not be writable by anyone who is not the platform's operator.
///
/// The file is read into memory rather than mapped (`deserialize_file`): a mapped file that is
/// truncated or rewritten in place while a checker runs would crash the whole process.
#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(file)?;
    // SAFETY: see the function's documentation: the bytes are our own `serialize` output for
    // a compatible engine, keyed by content hash, and now a private copy in memory.
    unsafe { Component::deserialize(engine, &bytes) }
}
