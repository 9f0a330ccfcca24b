//! Embeds the shipped rule pack (`rules/`) in the binary, so an installed `guardrail`
//! judges with the pack it was built with and needs no checkout.
//!
//! Written by hand rather than with `include_dir`: that macro cannot tell cargo which
//! files it read on stable Rust, so editing a rule would leave a stale pack in the
//! binary. Here every file goes through `include_str!` (tracked by cargo's dep-info)
//! and the directory itself is watched for added or removed files.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "rhai" || e == "json" || e == "md")
        {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let rules = root.join("rules");
    println!("cargo:rerun-if-changed={}", rules.display());
    let mut found = Vec::new();
    files(&rules, &mut found);
    found.sort();
    let mut code = String::from("/// The shipped rule pack: (path below `rules/`, contents).\npub const PACK: &[(&str, &str)] = &[\n");
    for path in &found {
        let rel = path
            .strip_prefix(&rules)
            .expect("below rules/")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("rules_pack.rs");
    std::fs::write(out, code).expect("write the embedded rule pack");
}
