//! The rule pack built into the binary, and where the rules of a run come from.
//!
//! `--rules DIR` (or `GUARDRAIL_RULES`), then `rules = "DIR"` in the configuration
//! file, then the embedded pack. The embedded pack is written once to a directory named
//! after its digest (under the user's cache directory, else the temp directory), so the
//! rest of guardrail (hot reload, rule test cases, errors that name a file) works on
//! plain files either way, and a new build never reuses an old pack.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

include!(concat!(env!("OUT_DIR"), "/rules_pack.rs"));

/// The digest of the embedded pack (paths and contents).
pub fn digest() -> String {
    let mut all = String::new();
    for (path, body) in PACK {
        all.push_str(path);
        all.push('\0');
        all.push_str(body);
        all.push('\0');
    }
    guardrail_model::content_hash(&all)
}

/// The embedded pack as a directory, written if it is not there yet.
pub fn materialize() -> anyhow::Result<PathBuf> {
    let name = format!("rules-{}", &digest()[..16]);
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Some(cache) = dirs::cache_dir() {
        bases.push(cache.join("guardrail"));
    }
    bases.push(std::env::temp_dir().join("guardrail"));
    let mut last_error = None;
    for base in bases {
        match write_once(&base, &name) {
            Ok(dir) => return Ok(dir),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no directory to write to")))
        .context("writing the built-in rule pack (give --rules DIR to use a directory instead)")
}

fn write_once(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = base.join(name);
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    // Written beside the final name and renamed into place: two processes starting at
    // once never see a half-written pack.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempdir_in(base)
        .with_context(|| format!("creating a directory in {}", base.display()))?;
    for (path, body) in PACK {
        let target = staging.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, body).with_context(|| format!("writing {}", target.display()))?;
    }
    std::fs::write(staging.path().join(".complete"), "")?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Another process won the race; its copy is identical.
        let _ = std::fs::remove_dir_all(&staged);
        anyhow::ensure!(
            dir.join(".complete").exists(),
            "could not put the rule pack at {}",
            dir.display()
        );
    }
    Ok(dir)
}

/// Where this run's rules come from.
pub fn resolve(flag: Option<PathBuf>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    match (flag, config) {
        (Some(dir), _) => Ok(dir),
        (None, Some(dir)) => Ok(dir.to_path_buf()),
        (None, None) => materialize(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_pack_is_the_shipped_one() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut rhai = 0;
        for (path, body) in PACK {
            let on_disk = std::fs::read_to_string(shipped.join(path)).unwrap();
            assert_eq!(&on_disk, body, "{path}");
            rhai += usize::from(path.ends_with(".rhai"));
        }
        assert!(rhai >= 20, "{rhai} rules embedded");
    }

    #[test]
    fn the_pack_is_written_once_and_complete() {
        let base = tempfile::tempdir().unwrap();
        let a = write_once(base.path(), "rules-x").unwrap();
        let b = write_once(base.path(), "rules-x").unwrap();
        assert_eq!(a, b);
        for (path, body) in PACK {
            assert_eq!(&std::fs::read_to_string(a.join(path)).unwrap(), body);
        }
    }
}
