//! Digests of files outside the store (dataset folders), with a stat cache.
//!
//! A dataset folder is hashed as the sorted list of its files' relative paths and digests.
//! Re-hashing twelve thousand images on every run would cost seconds, so each file's digest
//! is cached under its path, keyed by size, modification time and inode: a file whose stat
//! is unchanged is not read again. A copied folder (new inodes and times) is simply
//! re-hashed once and, its bytes being equal, gives the same digest.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use exmap_artefact::{hash_file, Digest};
use serde::{Deserialize, Serialize};

use crate::RunnerError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    size: u64,
    modified_ns: i128,
    inode: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    digest: Digest,
}

/// File digests cached by stat, persisted in the store.
pub struct StatCache {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl StatCache {
    pub fn load(path: &Path) -> Self {
        let entries = fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self { path: path.to_path_buf(), entries: Mutex::new(entries) }
    }

    pub fn save(&self) -> Result<(), RunnerError> {
        let entries = self.entries.lock().expect("stat cache lock");
        crate::store::write_atomically(&self.path, &serde_json::to_vec(&*entries)?)
    }

    /// Digest of a file, or of a folder's sorted (relative path, digest) list.
    pub fn digest(&self, path: &Path) -> Result<Digest, RunnerError> {
        let meta = fs::metadata(path).map_err(|e| RunnerError::io(path, e))?;
        if meta.is_file() {
            return self.file_digest(path, &meta);
        }
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        let mut hasher = blake3::Hasher::new();
        for file in &files {
            let meta = fs::metadata(file).map_err(|e| RunnerError::io(file, e))?;
            let relative = file.strip_prefix(path).unwrap_or(file).to_string_lossy().into_owned();
            hasher.update(&(relative.len() as u64).to_le_bytes());
            hasher.update(relative.as_bytes());
            hasher.update(self.file_digest(file, &meta)?.as_bytes());
        }
        Ok(Digest::from_bytes(*hasher.finalize().as_bytes()))
    }

    /// A cheap fingerprint of a file or folder's stats, to notice changes during a run.
    pub fn stat_fingerprint(path: &Path) -> Result<Digest, RunnerError> {
        let mut hasher = blake3::Hasher::new();
        let mut files = Vec::new();
        if fs::metadata(path).map_err(|e| RunnerError::io(path, e))?.is_file() {
            files.push(path.to_path_buf());
        } else {
            collect_files(path, &mut files)?;
            files.sort();
        }
        for file in files {
            let meta = fs::metadata(&file).map_err(|e| RunnerError::io(&file, e))?;
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(&serde_json::to_vec(&stat_of(&meta))?);
        }
        Ok(Digest::from_bytes(*hasher.finalize().as_bytes()))
    }

    fn file_digest(&self, path: &Path, meta: &fs::Metadata) -> Result<Digest, RunnerError> {
        let key = path.to_string_lossy().into_owned();
        let stat = stat_of(meta);
        if let Some(entry) = self.entries.lock().expect("stat cache lock").get(&key) {
            if entry.stat == stat {
                return Ok(entry.digest);
            }
        }
        let digest = hash_file(path)?;
        self.entries.lock().expect("stat cache lock").insert(key, Entry { stat, digest });
        Ok(digest)
    }
}

fn stat_of(meta: &fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        size: meta.len(),
        modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        inode: meta.ino(),
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RunnerError> {
    for entry in fs::read_dir(dir).map_err(|e| RunnerError::io(dir, e))? {
        let path = entry.map_err(|e| RunnerError::io(dir, e))?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_folder_has_the_same_digest_and_an_edit_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir_all(a.join("sub")).unwrap();
        fs::write(a.join("metadata.csv"), "x\n1\n").unwrap();
        fs::write(a.join("sub/img.png"), [1, 2, 3]).unwrap();
        let cache = StatCache::load(&dir.path().join("cache.json"));
        let first = cache.digest(&a).unwrap();
        fs::create_dir_all(b.join("sub")).unwrap();
        fs::copy(a.join("metadata.csv"), b.join("metadata.csv")).unwrap();
        fs::copy(a.join("sub/img.png"), b.join("sub/img.png")).unwrap();
        assert_eq!(cache.digest(&b).unwrap(), first);
        fs::write(b.join("sub/img.png"), [1, 2, 4]).unwrap();
        assert_ne!(cache.digest(&b).unwrap(), first);
    }
}
