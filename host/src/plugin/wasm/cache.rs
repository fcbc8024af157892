//! The compiled-component cache: a plugin is compiled once per wasmtime version, engine
//! configuration and plugin content, and later starts deserialize the artefact instead of
//! compiling again (docs/architecture.md, plugins, fast start).
//!
//! Artefacts are native code, so they are trusted only as written: each sits beside the sha256
//! of its bytes, checked before use, in a directory only this user can write. Anything that does
//! not check out is compiled again and rewritten.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine::sha256_hex;

/// The environment variable naming the cache directory.
pub const CACHE_DIR_VAR: &str = "CDC_PLUGIN_CACHE_DIR";

/// A directory of compiled components.
pub(super) struct ComponentCache {
    dir: PathBuf,
    /// The engine's compatibility hash (wasmtime's version and configuration): artefacts of
    /// another build or configuration are never tried.
    engine_key: String,
}

impl ComponentCache {
    /// The cache at `$CDC_PLUGIN_CACHE_DIR`, else `$XDG_CACHE_HOME/cdc/plugins`, else
    /// `$HOME/.cache/cdc/plugins`; `None` when no directory can be had (plugins then compile at
    /// every start).
    pub(super) fn open(engine: &Engine) -> Option<Self> {
        let dir = std::env::var_os(CACHE_DIR_VAR)
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|dir| PathBuf::from(dir).join("cdc/plugins")))
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/cdc/plugins"))
            })?;
        if let Err(error) = create_private_dir(&dir) {
            tracing::warn!(dir = %dir.display(), error = %error, "plugin.cache_unavailable");
            return None;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Some(ComponentCache { dir, engine_key })
    }

    /// The component for `bytes` (whose sha256 is `sha256`): from the cache when a checked
    /// artefact is there, else compiled and stored.
    pub(super) fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<Component> {
        let artefact = self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key));
        if let Some(component) = self.load(engine, &artefact) {
            tracing::debug!(artefact = %artefact.display(), "plugin.cache_hit");
            return Ok(component);
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(error) = store(&artefact, &compiled) {
            tracing::warn!(artefact = %artefact.display(), error = %error, "plugin.cache_write_failed");
        }
        load_trusted(engine, &compiled)
    }

    fn load(&self, engine: &Engine, artefact: &Path) -> Option<Component> {
        let bytes = std::fs::read(artefact).ok()?;
        let expected = std::fs::read_to_string(checksum_path(artefact)).ok()?;
        if sha256_hex(&bytes) != expected.trim() {
            tracing::warn!(artefact = %artefact.display(), "plugin.cache_checksum_mismatch");
            return None;
        }
        load_trusted(engine, &bytes).ok()
    }
}

/// Deserializes an artefact this process compiled or whose checksum it verified.
#[allow(unsafe_code)]
fn load_trusted(engine: &Engine, artefact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artefact` is output of `Engine::precompile_component`, either just produced by this
    // process or read back from the private cache with its recorded sha256 verified; wasmtime
    // itself rejects artefacts of another version or engine configuration.
    unsafe { Component::deserialize(engine, artefact) }
}

fn store(artefact: &Path, compiled: &[u8]) -> std::io::Result<()> {
    // Write both files under temporary names and rename: a reader sees whole files or none.
    let staging = artefact.with_extension("cwasm.tmp");
    std::fs::File::create(&staging)?.write_all(compiled)?;
    std::fs::write(checksum_path(&staging), sha256_hex(compiled))?;
    std::fs::rename(checksum_path(&staging), checksum_path(artefact))?;
    std::fs::rename(&staging, artefact)
}

fn checksum_path(artefact: &Path) -> PathBuf {
    let mut name = artefact.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefacts_are_reused_and_a_tampered_one_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = ComponentCache { dir: dir.path().to_owned(), engine_key: "test".into() };
        // The smallest valid component.
        let bytes = b"\0asm\x0d\0\x01\0";
        let sha = sha256_hex(bytes);
        cache.load_or_compile(&engine, bytes, &sha).unwrap();
        let artefact = dir.path().join(format!("{sha}-test.cwasm"));
        assert!(artefact.exists() && checksum_path(&artefact).exists());
        assert!(cache.load(&engine, &artefact).is_some(), "a stored artefact loads");
        std::fs::write(&artefact, b"not what was compiled").unwrap();
        assert!(cache.load(&engine, &artefact).is_none(), "a tampered artefact is refused");
        cache.load_or_compile(&engine, bytes, &sha).unwrap();
        assert!(cache.load(&engine, &artefact).is_some(), "and rewritten");
    }
}
