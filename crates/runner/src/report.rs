//! The read-only commands: plan (dry run), why, verify, gc and dag.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use exmap_artefact::Digest;
use exmap_pipeline::Plan;
use serde::Serialize;

use crate::exec::{levels, Results};
use crate::{NodeReport, Runner, RunnerError, Status, Store};

/// One node of a dry run.
#[derive(Clone, Debug, Serialize)]
pub struct PlanEntry {
    pub node: String,
    pub kind: String,
    /// Unknown while an upstream node still has to run.
    pub key: Option<Digest>,
    /// `hit`, `miss`, or `pending` (an upstream miss decides).
    pub status: &'static str,
    pub reason: String,
}

/// One node of a reproducibility check.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyEntry {
    pub node: String,
    pub identical: bool,
    /// Outputs whose bytes differ, with committed and re-executed digests.
    pub differing: Vec<(String, Digest, Digest)>,
    pub error: Option<String>,
}

impl Runner<'_> {
    /// What a run would do, without running anything or reading artefact bytes.
    pub fn dry_run(&self, plan: &Plan) -> Result<Vec<PlanEntry>, RunnerError> {
        let results: Results = RwLock::new(vec![None; plan.nodes.len()]);
        let mut entries = Vec::new();
        for (index, node) in plan.nodes.iter().enumerate() {
            let Some(manifest) = self.manifest(plan, index, &results)? else {
                let upstream = node
                    .inputs
                    .values()
                    .flatten()
                    .find(|b| results.read().expect("lock")[b.node].is_none())
                    .map(|b| plan.nodes[b.node].id.clone())
                    .unwrap_or_default();
                entries.push(PlanEntry {
                    node: node.id.clone(),
                    kind: node.kind.clone(),
                    key: None,
                    status: "pending",
                    reason: format!("runs if `{upstream}` produces new bytes"),
                });
                continue;
            };
            let key = manifest.key();
            match self.committed(&key, node) {
                Some(record) => {
                    results.write().expect("lock")[index] = Some(hit_report(node, key, record));
                    entries.push(PlanEntry {
                        node: node.id.clone(),
                        kind: node.kind.clone(),
                        key: Some(key),
                        status: "hit",
                        reason: String::new(),
                    });
                }
                None => entries.push(PlanEntry {
                    node: node.id.clone(),
                    kind: node.kind.clone(),
                    key: Some(key),
                    status: "miss",
                    reason: self.miss_reason(plan, node, &manifest),
                }),
            }
        }
        Ok(entries)
    }

    /// Which parts of a node's key changed since it last committed. `name` is a node id or
    /// a stage id (every node of that stage).
    pub fn why(&self, plan: &Plan, name: &str) -> Result<Vec<(String, Vec<String>)>, RunnerError> {
        let entries = self.dry_run(plan)?;
        let chosen: Vec<&PlanEntry> = plan
            .nodes
            .iter()
            .zip(&entries)
            .filter(|(node, _)| node.id == name || node.stage_id == name)
            .map(|(_, entry)| entry)
            .collect();
        if chosen.is_empty() {
            return Err(RunnerError::UnknownNode(name.to_string()));
        }
        Ok(chosen
            .into_iter()
            .map(|entry| {
                let lines = match entry.status {
                    "hit" => vec!["up to date: its key is committed".to_string()],
                    _ => vec![entry.reason.clone()],
                };
                (entry.node.clone(), lines)
            })
            .collect())
    }

    /// Runs the plan, then re-executes every node into scratch with the same inputs and
    /// compares output digests with the committed ones.
    pub fn verify(&self, plan: &Plan) -> Result<Vec<VerifyEntry>, RunnerError> {
        let reports = self.run(plan)?;
        if let Some(failed) = reports.iter().find(|r| r.status == Status::Failed) {
            return Err(RunnerError::Other(format!(
                "stage `{}` failed before verification: {}",
                failed.node, failed.reason
            )));
        }
        let results: Results = RwLock::new(reports.iter().cloned().map(Some).collect());
        let mut entries = Vec::new();
        for level in levels(plan) {
            for index in level {
                let node = &plan.nodes[index];
                let committed = &reports[index].outputs;
                let entry = match self.reexecute(plan, index, &results) {
                    Ok(digests) => {
                        let differing: Vec<(String, Digest, Digest)> = committed
                            .iter()
                            .filter_map(|(name, record)| {
                                let again = digests.get(name)?;
                                (*again != record.digest)
                                    .then(|| (name.clone(), record.digest, *again))
                            })
                            .collect();
                        VerifyEntry {
                            node: node.id.clone(),
                            identical: differing.is_empty(),
                            differing,
                            error: None,
                        }
                    }
                    Err(err) => VerifyEntry {
                        node: node.id.clone(),
                        identical: false,
                        differing: Vec::new(),
                        error: Some(err.to_string()),
                    },
                };
                tracing::info!(stage = %entry.node, identical = entry.identical, "verified");
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

fn hit_report(
    node: &exmap_pipeline::Node,
    key: Digest,
    record: crate::store::ActionRecord,
) -> NodeReport {
    NodeReport {
        node: node.id.clone(),
        kind: node.kind.clone(),
        key: Some(key),
        status: Status::Hit,
        reason: String::new(),
        seconds: 0.0,
        outputs: record.outputs,
        inputs: BTreeMap::new(),
        params: node.params.clone(),
        threads: 0,
        peak_rss_kib: 0,
    }
}

/// What `gc` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcSummary {
    pub kept_actions: usize,
    pub removed_actions: usize,
    pub removed_blobs: usize,
    pub removed_bytes: u64,
    /// Blobs no kept record references that were left alone because they are younger than
    /// the grace period (a run in progress may be about to commit them).
    pub young_blobs: usize,
    pub removed_scratch: usize,
    pub removed_runs: usize,
}

/// Removes every action record not reached by the `keep_runs` most recent run records or by
/// `pinned` keys, then every blob no kept record references and older than `grace`, then the
/// scratch folders of processes that no longer exist, then the older run records.
pub fn gc(
    store: &Store,
    keep_runs: usize,
    pinned: &BTreeSet<Digest>,
    grace: std::time::Duration,
) -> Result<GcSummary, RunnerError> {
    let runs = store.run_records()?;
    let mut keep: BTreeSet<Digest> = pinned.clone();
    for run in runs.iter().rev().take(keep_runs) {
        let text = std::fs::read_to_string(run).unwrap_or_default();
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if let Some(key) = value.get("key").and_then(|k| k.as_str()).and_then(Digest::parse) {
                keep.insert(key);
            }
        }
    }
    let mut summary = GcSummary::default();
    let mut live_blobs = BTreeSet::new();
    for record in store.actions() {
        if keep.contains(&record.key) {
            summary.kept_actions += 1;
            live_blobs.extend(record.outputs.values().map(|o| o.digest));
        } else {
            store.remove_action(&record.key);
            summary.removed_actions += 1;
        }
    }
    let now = std::time::SystemTime::now();
    let young = |meta: &std::fs::Metadata| {
        meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age < grace)
    };
    for blob in store.blob_files()? {
        let name = blob.file_name().to_string_lossy().into_owned();
        if Digest::parse(&name).is_some_and(|d| live_blobs.contains(&d)) {
            continue;
        }
        let meta = blob.metadata().ok();
        if meta.as_ref().is_some_and(young) {
            summary.young_blobs += 1;
            continue;
        }
        if std::fs::remove_file(blob.path()).is_ok() {
            summary.removed_bytes += meta.map(|m| m.len()).unwrap_or(0);
            summary.removed_blobs += 1;
        }
    }
    let scratch = store.root().join("tmp");
    for folder in std::fs::read_dir(&scratch).map_err(|e| RunnerError::io(&scratch, e))?.flatten() {
        let name = folder.file_name().to_string_lossy().into_owned();
        if scratch_owner(&name).is_some_and(process_exists) {
            continue;
        }
        if std::fs::remove_dir_all(folder.path()).is_ok() {
            summary.removed_scratch += 1;
        }
    }
    for old in runs.iter().rev().skip(keep_runs) {
        if std::fs::remove_file(old).is_ok() {
            summary.removed_runs += 1;
        }
    }
    Ok(summary)
}

/// What a store holds: committed results, blobs, scratch folders and the latest run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreStatus {
    pub results: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Scratch folders of running stages, or left by killed runs (`gc` removes those).
    pub scratch_folders: usize,
    pub runs: usize,
    pub latest_run: Option<RunSummary>,
}

/// The outcome of one recorded run, counted by node status.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    pub record: std::path::PathBuf,
    pub ran: usize,
    pub hit: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Seconds spent executing nodes, summed over the nodes.
    pub seconds: f64,
}

/// Counts what `store` holds, reading only file metadata and the latest run record.
pub fn store_status(store: &Store) -> Result<StoreStatus, RunnerError> {
    let mut status = StoreStatus { results: store.actions().len(), ..Default::default() };
    for blob in store.blob_files()? {
        status.blobs += 1;
        status.blob_bytes += blob.metadata().map(|m| m.len()).unwrap_or(0);
    }
    let scratch = store.root().join("tmp");
    status.scratch_folders =
        std::fs::read_dir(&scratch).map_err(|e| RunnerError::io(&scratch, e))?.count();
    let runs = store.run_records()?;
    status.runs = runs.len();
    if let Some(latest) = runs.last() {
        let text = std::fs::read_to_string(latest).map_err(|e| RunnerError::io(latest, e))?;
        let mut summary = RunSummary { record: latest.clone(), ..Default::default() };
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            match value.get("status").and_then(|s| s.as_str()) {
                Some("ran") => summary.ran += 1,
                Some("hit") => summary.hit += 1,
                Some("failed") => summary.failed += 1,
                Some("skipped") => summary.skipped += 1,
                _ => {}
            }
            summary.seconds += value.get("seconds").and_then(|s| s.as_f64()).unwrap_or(0.0);
        }
        status.latest_run = Some(summary);
    }
    Ok(status)
}

/// The process id in a scratch folder's name (`<short key>-<pid>-<counter>`).
fn scratch_owner(name: &str) -> Option<u32> {
    name.split('-').nth(1)?.parse().ok()
}

/// Whether a process with this id is running. Where that cannot be told (no `/proc`), every
/// process counts as running, so no scratch folder is removed.
fn process_exists(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Graph output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DagFormat {
    Dot,
    Mermaid,
}

/// The plan's nodes and connections as DOT or Mermaid text.
pub fn render_dag(plan: &Plan, format: DagFormat) -> String {
    let mut edges = Vec::new();
    for node in &plan.nodes {
        let mut seen = BTreeMap::new();
        for (port, bindings) in &node.inputs {
            for binding in bindings {
                seen.entry(binding.node).or_insert_with(Vec::new).push(port.clone());
            }
        }
        for (source, ports) in seen {
            edges.push((plan.nodes[source].id.clone(), node.id.clone(), ports.join(", ")));
        }
    }
    let mut out = String::new();
    match format {
        DagFormat::Dot => {
            out.push_str(&format!("digraph \"{}\" {{\n  rankdir=LR;\n", plan.name));
            for node in &plan.nodes {
                out.push_str(&format!(
                    "  \"{}\" [label=\"{}\\n({})\"];\n",
                    node.id, node.id, node.kind
                ));
            }
            for (from, to, label) in edges {
                out.push_str(&format!("  \"{from}\" -> \"{to}\" [label=\"{label}\"];\n"));
            }
            out.push_str("}\n");
        }
        DagFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            let ids: BTreeMap<&str, usize> =
                plan.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
            for (i, node) in plan.nodes.iter().enumerate() {
                out.push_str(&format!("  n{i}[\"{}<br/>({})\"]\n", node.id, node.kind));
            }
            for (from, to, label) in edges {
                out.push_str(&format!(
                    "  n{} -->|{label}| n{}\n",
                    ids[from.as_str()],
                    ids[to.as_str()]
                ));
            }
        }
    }
    out
}
