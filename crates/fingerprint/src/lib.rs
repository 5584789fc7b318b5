//! Code fingerprints for stage crates, computed in build scripts.
//!
//! A stage's cache key must change when, and only when, code that can change its result
//! changes. The fingerprint of a crate is blake3 over the relative paths and bytes of its
//! `Cargo.toml` and every file under `src/`, followed by the fingerprints of the workspace
//! crates it depends on (any dependency named `exmap-*` in its manifest, found in the sibling
//! folder `crates/<name>`). Editing one stage crate therefore changes the fingerprint of that
//! crate and of the crates that depend on it, and of nothing else.
//!
//! A stage crate calls [`emit`] from its `build.rs`; the value reaches the code as the
//! compile-time environment variable `EXMAP_CODE_FINGERPRINT`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Computes the fingerprint of the crate in `crate_dir` and prints the cargo directives
/// that export it as `EXMAP_CODE_FINGERPRINT` and re-run the build script on any change.
pub fn emit(crate_dir: &Path) {
    let mut seen = BTreeSet::new();
    let mut watched = Vec::new();
    let digest = fingerprint(crate_dir, &mut seen, &mut watched);
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rustc-env=EXMAP_CODE_FINGERPRINT={digest}");
}

/// The fingerprint of one crate folder, as lowercase hex.
pub fn fingerprint_of(crate_dir: &Path) -> String {
    fingerprint(crate_dir, &mut BTreeSet::new(), &mut Vec::new())
}

fn fingerprint(
    crate_dir: &Path,
    seen: &mut BTreeSet<PathBuf>,
    watched: &mut Vec<PathBuf>,
) -> String {
    let mut hasher = blake3::Hasher::new();
    seen.insert(crate_dir.to_path_buf());

    let manifest = crate_dir.join("Cargo.toml");
    let manifest_text = fs::read_to_string(&manifest).unwrap_or_default();
    hash_file(&mut hasher, "Cargo.toml", manifest_text.as_bytes());
    watched.push(manifest);

    let mut files = Vec::new();
    collect_files(&crate_dir.join("src"), &mut files);
    files.sort();
    for file in &files {
        let relative = file.strip_prefix(crate_dir).unwrap_or(file);
        let bytes = fs::read(file).unwrap_or_default();
        hash_file(&mut hasher, &relative.to_string_lossy(), &bytes);
    }
    watched.push(crate_dir.join("src"));

    let crates_dir = crate_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    for dependency in workspace_dependencies(&manifest_text) {
        let dir = crates_dir.join(&dependency);
        if seen.contains(&dir) || !dir.join("Cargo.toml").exists() {
            continue;
        }
        let nested = fingerprint(&dir, seen, watched);
        hasher.update(b"dep");
        hasher.update(dependency.as_bytes());
        hasher.update(nested.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

fn hash_file(hasher: &mut blake3::Hasher, name: &str, bytes: &[u8]) {
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Folder names (`crates/<name>`) of the `exmap-*` crates a manifest depends on, in the
/// `[dependencies]` table only: dev- and build-dependencies cannot change a result.
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies {
            continue;
        }
        if let Some(name) = line.strip_prefix("exmap-") {
            let name: String =
                name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if name != "fingerprint" {
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_from_the_dependencies_table_only() {
        let manifest = "[package]\nname = \"x\"\n[dependencies]\nexmap-artefact.workspace = true\n\
                        exmap-models = { workspace = true }\nrayon = \"1\"\n\
                        [build-dependencies]\nexmap-fingerprint.workspace = true\n\
                        [dev-dependencies]\nexmap-ingest.workspace = true\n";
        assert_eq!(workspace_dependencies(manifest), vec!["artefact", "models"]);
    }

    #[test]
    fn editing_a_source_file_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("exmap-fp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a/src")).unwrap();
        fs::write(dir.join("a/Cargo.toml"), "[package]\nname = \"exmap-a\"\n").unwrap();
        fs::write(dir.join("a/src/lib.rs"), "pub fn f() {}\n").unwrap();
        let before = fingerprint_of(&dir.join("a"));
        assert_eq!(before, fingerprint_of(&dir.join("a")));
        fs::write(dir.join("a/src/lib.rs"), "pub fn f() { }\n").unwrap();
        assert_ne!(before, fingerprint_of(&dir.join("a")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
