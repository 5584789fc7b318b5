//! The artefact store: blobs by digest, action records by key, locks, run records.
//!
//! Layout under the store root:
//!
//! - `blobs/<2 hex>/<64 hex>`: artefact bytes, written once (temp file, fsync, rename) and
//!   never modified;
//! - `actions/<key>.json`: for a stage key, the digests of its outputs. It is written last,
//!   with the same temp-fsync-rename dance, and is the commit point: a stage whose record is
//!   absent did not happen, whatever blobs it left;
//! - `locks/<key>.lock`: OS file locks held while a key is computed, so that two runs needing
//!   the same stage compute it once. The kernel releases them when a process dies, so no
//!   manual unlock is ever needed;
//! - `history/<pipeline>/<node>.json`: the key manifest a node last committed, for `plan` and
//!   `why` to say what changed;
//! - `runs/<time>-<pid>.jsonl`: one line per stage per run;
//! - `tmp/`: scratch folders of running stages, removed when they finish.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use exmap_artefact::{hash_file, Digest};
use serde::{Deserialize, Serialize};

use crate::key::KeyManifest;
use crate::RunnerError;

/// What a committed stage execution produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionRecord {
    pub key: Digest,
    /// The node that first computed it.
    pub node: String,
    pub manifest: KeyManifest,
    pub outputs: std::collections::BTreeMap<String, OutputRecord>,
    pub seconds: f64,
}

/// One output of a committed stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub digest: Digest,
    pub size: u64,
    pub extension: String,
}

/// A held key lock; released when dropped or when the process dies.
pub struct KeyLock {
    _file: File,
}

/// The content-addressed store.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: &Path) -> Result<Self, RunnerError> {
        for dir in ["blobs", "actions", "locks", "history", "runs", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| RunnerError::io(&path, e))?;
        }
        Ok(Self { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("blobs").join(&hex[..2]).join(hex)
    }

    /// Whether the blob exists with the recorded size (a stat, no bytes read).
    pub fn has_blob(&self, output: &OutputRecord) -> bool {
        fs::metadata(self.blob_path(&output.digest)).is_ok_and(|m| m.len() == output.size)
    }

    /// Moves a finished file into the store and returns its record. The file is hashed,
    /// synced to disk and renamed into place; an existing blob with that digest is kept.
    pub fn put_blob(&self, file: &Path, extension: &str) -> Result<OutputRecord, RunnerError> {
        let digest = hash_file(file)?;
        let size = fs::metadata(file).map_err(|e| RunnerError::io(file, e))?.len();
        let target = self.blob_path(&digest);
        if fs::metadata(&target).is_ok_and(|m| m.len() == size) {
            let _ = fs::remove_file(file);
        } else {
            File::open(file).and_then(|f| f.sync_all()).map_err(|e| RunnerError::io(file, e))?;
            let dir = target.parent().expect("blob has a parent");
            fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
            fs::rename(file, &target).map_err(|e| RunnerError::io(&target, e))?;
            sync_dir(dir);
        }
        Ok(OutputRecord { digest, size, extension: extension.to_string() })
    }

    /// Re-hashes a blob; a blob whose bytes no longer match its digest is evicted.
    pub fn verify_blob(&self, digest: &Digest) -> Result<bool, RunnerError> {
        let path = self.blob_path(digest);
        if !path.exists() {
            return Ok(false);
        }
        if hash_file(&path)? == *digest {
            return Ok(true);
        }
        tracing::warn!(blob = %digest.short(), "corrupt blob evicted");
        fs::remove_file(&path).map_err(|e| RunnerError::io(&path, e))?;
        Ok(false)
    }

    fn action_path(&self, key: &Digest) -> PathBuf {
        self.root.join("actions").join(format!("{}.json", key.to_hex()))
    }

    /// The committed record of `key`, if any. An unreadable record counts as absent.
    pub fn action(&self, key: &Digest) -> Option<ActionRecord> {
        let text = fs::read_to_string(self.action_path(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Commits a stage execution: the record is written to a temp file, synced and renamed.
    pub fn commit_action(&self, record: &ActionRecord) -> Result<(), RunnerError> {
        write_atomically(&self.action_path(&record.key), &serde_json::to_vec_pretty(record)?)
    }

    pub fn remove_action(&self, key: &Digest) {
        let _ = fs::remove_file(self.action_path(key));
    }

    /// Every committed record.
    pub fn actions(&self) -> Vec<ActionRecord> {
        let Ok(entries) = fs::read_dir(self.root.join("actions")) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    /// The run record files, oldest first (their names start with the time they were opened).
    pub fn run_records(&self) -> Result<Vec<PathBuf>, RunnerError> {
        let dir = self.root.join("runs");
        let mut runs: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| RunnerError::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        runs.sort();
        Ok(runs)
    }

    /// Every file in the blob folders (committed blobs and any temp file left beside them).
    pub fn blob_files(&self) -> Result<Vec<fs::DirEntry>, RunnerError> {
        let dir = self.root.join("blobs");
        let shards = fs::read_dir(&dir).map_err(|e| RunnerError::io(&dir, e))?;
        Ok(shards
            .flatten()
            .flat_map(|shard| fs::read_dir(shard.path()).into_iter().flatten().flatten())
            .collect())
    }

    /// Blocks until this process holds the lock of `key`.
    pub fn lock(&self, key: &Digest) -> Result<KeyLock, RunnerError> {
        let path = self.root.join("locks").join(format!("{}.lock", key.to_hex()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| RunnerError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                tracing::info!(key = %key.short(), "waiting for another run computing this stage");
                file.lock().map_err(|e| RunnerError::io(&path, e))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(RunnerError::io(&path, e)),
        }
        Ok(KeyLock { _file: file })
    }

    /// A fresh scratch folder for one execution of `key`.
    pub fn scratch(&self, key: &Digest) -> Result<PathBuf, RunnerError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{}-{}-{unique}", key.short(), std::process::id());
        let path = self.root.join("tmp").join(name);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(|e| RunnerError::io(&path, e))?;
        Ok(path)
    }

    fn history_path(&self, pipeline: &str, node: &str) -> PathBuf {
        self.root.join("history").join(sanitise(pipeline)).join(format!("{}.json", sanitise(node)))
    }

    /// The key manifest `node` of `pipeline` last committed or hit.
    pub fn history(&self, pipeline: &str, node: &str) -> Option<KeyManifest> {
        let text = fs::read_to_string(self.history_path(pipeline, node)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn record_history(
        &self,
        pipeline: &str,
        node: &str,
        manifest: &KeyManifest,
    ) -> Result<(), RunnerError> {
        let path = self.history_path(pipeline, node);
        if self.history(pipeline, node).as_ref() == Some(manifest) {
            return Ok(());
        }
        let dir = path.parent().expect("history has a parent");
        fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
        write_atomically(&path, &serde_json::to_vec_pretty(manifest)?)
    }

    /// Opens a new run record file.
    pub fn run_record(&self) -> Result<(PathBuf, File), RunnerError> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let path = self.root.join("runs").join(format!("{millis}-{}.jsonl", std::process::id()));
        let file = File::create(&path).map_err(|e| RunnerError::io(&path, e))?;
        Ok((path, file))
    }
}

/// Writes `bytes` to `path` through a synced temp file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RunnerError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
    let mut file = File::create(&temp).map_err(|e| RunnerError::io(&temp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| RunnerError::io(&temp, e))?;
    fs::rename(&temp, path).map_err(|e| RunnerError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' })
        .collect()
}
