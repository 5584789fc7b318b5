//! Executing a plan: keys, cache hits, parallel execution, atomic commits.
//!
//! A node starts as soon as every node it reads from has finished, at most `jobs` at once,
//! each on its own thread and sharing the thread budget. A
//! node is a hit when the store holds an action record for its key and every output blob is
//! present with its recorded size: deciding that reads no artefact bytes. A miss first
//! verifies its input blobs (a corrupt one is evicted and its producer re-executed), runs the
//! stage into a scratch folder, checks every declared output exists and parses, checks that
//! no external input changed meanwhile, moves the outputs into the store and commits the
//! action record last.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Instant;

use exmap_artefact::Digest;
use exmap_pipeline::{Node, Plan};
use exmap_stage::{Device, Format, Progress, Registry, StageContext};
use serde::Serialize;

use crate::external::StatCache;
use crate::key::{KeyManifest, KEY_FORMAT};
use crate::store::{ActionRecord, OutputRecord, Store};
use crate::RunnerError;

/// Resources and environment of a run. None of it enters a key except `libtorch` and the
/// device class.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Total threads for tensor and data work.
    pub threads: usize,
    /// Most stages running at once.
    pub jobs: usize,
    pub device: Device,
    pub libtorch: String,
    /// Where the outputs of the final stages are copied after a run.
    pub export: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self { threads, jobs: threads, device: Device::Cpu, libtorch: String::new(), export: None }
    }
}

/// What happened to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Hit,
    Ran,
    Failed,
    Skipped,
}

/// The outcome of one node in a run.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub kind: String,
    pub key: Option<Digest>,
    pub status: Status,
    /// Why it ran (for a miss) or what went wrong.
    pub reason: String,
    pub seconds: f64,
    pub outputs: BTreeMap<String, OutputRecord>,
    pub inputs: BTreeMap<String, Vec<Digest>>,
    pub params: serde_json::Value,
    pub threads: usize,
    /// The process's peak resident memory when the node finished, in KiB.
    pub peak_rss_kib: u64,
}

/// Receives run events, to draw progress.
pub trait Observer: Send + Sync {
    fn started(&self, node: &str, kind: &str);
    fn progress(&self, node: &str, step: &str, done: u64, total: u64);
    fn finished(&self, report: &NodeReport);
}

/// An observer that shows nothing.
#[derive(Debug, Default)]
pub struct QuietObserver;

impl Observer for QuietObserver {
    fn started(&self, _node: &str, _kind: &str) {}
    fn progress(&self, _node: &str, _step: &str, _done: u64, _total: u64) {}
    fn finished(&self, _report: &NodeReport) {}
}

struct NodeProgress<'a> {
    node: &'a str,
    observer: &'a dyn Observer,
}

impl Progress for NodeProgress<'_> {
    fn update(&self, step: &str, done: u64, total: u64) {
        self.observer.progress(self.node, step, done, total);
    }
}

/// Runs plans against a store.
pub struct Runner<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) store: Store,
    pub(crate) options: RunOptions,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) stat_cache: StatCache,
}

pub(crate) type Results = RwLock<Vec<Option<NodeReport>>>;

impl<'a> Runner<'a> {
    pub fn new(
        registry: &'a Registry,
        store: Store,
        options: RunOptions,
        observer: &'a dyn Observer,
    ) -> Self {
        let stat_cache = StatCache::load(&store.root().join("stat-cache.json"));
        Self { registry, store, options, observer, stat_cache }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs every node of `plan`; returns one report per node, in plan order.
    ///
    /// A ready queue: a node starts as soon as every node it reads from has finished, at
    /// most `jobs` at once, each on its own thread with its own rayon pool of its share of the
    /// thread budget. Nodes never run nested inside one another's parallel work, so a node
    /// waiting for another's key lock (the same result reached twice in one sweep) only waits
    /// for that node to finish.
    pub fn run(&self, plan: &Plan) -> Result<Vec<NodeReport>, RunnerError> {
        let n = plan.nodes.len();
        let results: Results = RwLock::new(vec![None; n]);
        let (record_path, mut record) = self.store.run_record()?;
        let jobs = self.options.jobs.max(1);

        let mut waiting_on = vec![0usize; n];
        let mut dependants = vec![Vec::new(); n];
        for (i, node) in plan.nodes.iter().enumerate() {
            let upstream: BTreeSet<usize> =
                node.inputs.values().flatten().map(|b| b.node).collect();
            waiting_on[i] = upstream.len();
            for u in upstream {
                dependants[u].push(i);
            }
        }
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, NodeReport)>();
        std::thread::scope(|scope| -> Result<(), RunnerError> {
            let mut running = 0usize;
            loop {
                while running < jobs {
                    let Some(i) = ready.pop_front() else { break };
                    let sharing = (running + 1 + ready.len()).min(jobs);
                    let threads = (self.options.threads / sharing).max(1);
                    let sender = sender.clone();
                    let results = &results;
                    std::thread::Builder::new()
                        .name(format!("exmap-{}", plan.nodes[i].id))
                        .spawn_scoped(scope, move || {
                            let report = self.execute_in_pool(plan, i, results, threads);
                            // The receiver outlives every node thread.
                            let _ = sender.send((i, report));
                        })
                        .map_err(|e| RunnerError::Other(format!("cannot start a thread: {e}")))?;
                    running += 1;
                }
                if running == 0 {
                    return Ok(());
                }
                let (i, report) = receiver.recv().expect("a node thread reports before it ends");
                running -= 1;
                self.observer.finished(&report);
                let line = serde_json::to_string(&report)?;
                writeln!(record, "{line}").map_err(|e| RunnerError::io(&record_path, e))?;
                results.write().expect("results lock")[i] = Some(report);
                for &d in &dependants[i] {
                    waiting_on[d] -= 1;
                    if waiting_on[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
        })?;
        self.stat_cache.save()?;
        let reports: Vec<NodeReport> =
            results.into_inner().expect("results lock").into_iter().flatten().collect();
        if let Some(dir) = &self.options.export {
            self.export(plan, &reports, dir)?;
        }
        Ok(reports)
    }

    /// [`Runner::execute`] inside a rayon pool of `threads` threads, so that a stage's own
    /// parallel work stays within its share of the budget.
    fn execute_in_pool(
        &self,
        plan: &Plan,
        index: usize,
        results: &Results,
        threads: usize,
    ) -> NodeReport {
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(|| self.execute(plan, index, results, threads)),
            Err(err) => {
                tracing::warn!(
                    "no thread pool for `{}` ({err}); using the global one",
                    plan.nodes[index].id
                );
                self.execute(plan, index, results, threads)
            }
        }
    }

    /// The key manifest of node `index`, when every input digest is known.
    pub(crate) fn manifest(
        &self,
        plan: &Plan,
        index: usize,
        results: &Results,
    ) -> Result<Option<KeyManifest>, RunnerError> {
        let node = &plan.nodes[index];
        let stage = self.registry.get(&node.kind).expect("plan checked the kind");
        let mut inputs = BTreeMap::new();
        {
            let results = results.read().expect("results lock");
            for (port, bindings) in &node.inputs {
                let mut digests = Vec::new();
                for binding in bindings {
                    let Some(report) = &results[binding.node] else { return Ok(None) };
                    let Some(output) = report.outputs.get(&binding.output) else {
                        return Ok(None);
                    };
                    digests.push(output.digest);
                }
                inputs.insert(port.clone(), digests);
            }
        }
        let mut external = BTreeMap::new();
        for path in &node.external {
            external.insert(path.display().to_string(), self.stat_cache.digest(path)?);
        }
        let sources = gathered_sources(plan, node, stage.as_ref());
        Ok(Some(KeyManifest {
            format: KEY_FORMAT,
            kind: node.kind.clone(),
            code: stage.code_fingerprint().to_string(),
            params: node.params.clone(),
            seed: node.seed,
            inputs,
            sources,
            external,
            libtorch: self.options.libtorch.clone(),
            device: device_class(self.options.device).to_string(),
        }))
    }

    /// Whether `key` is committed with every output present (stats only, no bytes read).
    pub(crate) fn committed(&self, key: &Digest, node: &Node) -> Option<ActionRecord> {
        let record = self.store.action(key)?;
        let complete = node.outputs.iter().all(|port| {
            record.outputs.get(port.name).is_some_and(|output| self.store.has_blob(output))
        });
        complete.then_some(record)
    }

    /// Why node `index` with `manifest` is not committed, in words.
    pub(crate) fn miss_reason(&self, plan: &Plan, node: &Node, manifest: &KeyManifest) -> String {
        let key = manifest.key();
        if let Some(record) = self.store.action(&key) {
            let missing: Vec<&str> = node
                .outputs
                .iter()
                .filter(|p| !record.outputs.get(p.name).is_some_and(|o| self.store.has_blob(o)))
                .map(|p| p.name)
                .collect();
            return format!("output blob missing: {}", missing.join(", "));
        }
        match self.store.history(&plan.name, &node.id) {
            None => "never ran".to_string(),
            Some(previous) if previous.key() == key => {
                "committed result was removed (gc or corruption)".to_string()
            }
            Some(previous) => {
                let differences = manifest.differences(&previous);
                if differences.is_empty() {
                    "key changed".to_string()
                } else {
                    differences.join("; ")
                }
            }
        }
    }

    fn execute(&self, plan: &Plan, index: usize, results: &Results, threads: usize) -> NodeReport {
        let node = &plan.nodes[index];
        let started = Instant::now();
        let mut report = NodeReport {
            node: node.id.clone(),
            kind: node.kind.clone(),
            key: None,
            status: Status::Failed,
            reason: String::new(),
            seconds: 0.0,
            outputs: BTreeMap::new(),
            inputs: BTreeMap::new(),
            params: node.params.clone(),
            threads,
            peak_rss_kib: 0,
        };
        let upstream_failed = {
            let results = results.read().expect("results lock");
            node.inputs.values().flatten().find_map(|b| {
                let failed = results[b.node]
                    .as_ref()
                    .is_none_or(|r| matches!(r.status, Status::Failed | Status::Skipped));
                failed.then(|| plan.nodes[b.node].id.clone())
            })
        };
        if let Some(upstream) = upstream_failed {
            report.status = Status::Skipped;
            report.reason = format!("upstream `{upstream}` did not complete");
            return report;
        }
        // A root span: the node's thread is not the run's, and no node nests in another.
        let span = tracing::info_span!(parent: None, "stage", id = %node.id, kind = %node.kind);
        let _entered = span.enter();
        match self.materialise(plan, index, results, threads, &mut report) {
            Ok(()) => {}
            Err(err) => {
                report.status = Status::Failed;
                report.reason = err.to_string();
                tracing::error!(stage = %node.id, "{err}");
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        report.peak_rss_kib = peak_rss_kib();
        report
    }

    /// Makes node `index`'s outputs present in the store: a hit, or an execution.
    fn materialise(
        &self,
        plan: &Plan,
        index: usize,
        results: &Results,
        threads: usize,
        report: &mut NodeReport,
    ) -> Result<(), RunnerError> {
        let node = &plan.nodes[index];
        for _attempt in 0..3 {
            let manifest = self
                .manifest(plan, index, results)?
                .ok_or_else(|| RunnerError::Other("an input is not available".into()))?;
            let key = manifest.key();
            report.key = Some(key);
            report.inputs = manifest.inputs.clone();
            let _lock = self.store.lock(&key)?;
            if let Some(record) = self.committed(&key, node) {
                report.status = Status::Hit;
                report.outputs = record.outputs;
                self.store.record_history(&plan.name, &node.id, &manifest)?;
                tracing::debug!(stage = %node.id, key = %key.short(), "hit");
                return Ok(());
            }
            let reason = self.miss_reason(plan, node, &manifest);
            if let Some(producer) = self.corrupt_input(plan, index, results)? {
                tracing::warn!(stage = %node.id, producer = %plan.nodes[producer].id,
                    "an input blob was corrupt; recomputing its producer");
                let mut again = NodeReport { ..report.clone() };
                self.materialise(plan, producer, results, threads, &mut again)?;
                results.write().expect("results lock")[producer] = Some(again);
                continue;
            }
            self.observer.started(&node.id, &node.kind);
            tracing::info!(stage = %node.id, key = %key.short(), reason = %reason, "running");
            let outputs = self.run_stage(node, &manifest, results, threads)?;
            self.store.record_history(&plan.name, &node.id, &manifest)?;
            report.status = Status::Ran;
            report.reason = reason;
            report.outputs = outputs;
            return Ok(());
        }
        Err(RunnerError::Other("inputs kept changing while recovering corrupt blobs".into()))
    }

    /// The producer of the first input blob whose bytes do not match its digest (the blob
    /// is evicted and the producer's record removed), if any.
    fn corrupt_input(
        &self,
        plan: &Plan,
        index: usize,
        results: &Results,
    ) -> Result<Option<usize>, RunnerError> {
        let node = &plan.nodes[index];
        for binding in node.inputs.values().flatten() {
            let (digest, key) = {
                let results = results.read().expect("results lock");
                let report = results[binding.node].as_ref().expect("inputs ran first");
                (report.outputs[&binding.output].digest, report.key)
            };
            if !self.store.verify_blob(&digest)? {
                if let Some(key) = key {
                    self.store.remove_action(&key);
                }
                return Ok(Some(binding.node));
            }
        }
        Ok(None)
    }

    fn run_stage(
        &self,
        node: &Node,
        manifest: &KeyManifest,
        results: &Results,
        threads: usize,
    ) -> Result<BTreeMap<String, OutputRecord>, RunnerError> {
        let key = manifest.key();
        let stage = self.registry.get(&node.kind).expect("plan checked the kind");
        let scratch = self.store.scratch(&key)?;
        let progress = NodeProgress { node: &node.id, observer: self.observer };
        let mut ctx =
            StageContext::new(node.id.clone(), node.seed, scratch.join("work"), &progress);
        std::fs::create_dir_all(&ctx.scratch).map_err(|e| RunnerError::io(&ctx.scratch, e))?;
        ctx.device = self.options.device;
        ctx.threads = threads;
        {
            let results = results.read().expect("results lock");
            for (port, bindings) in &node.inputs {
                let paths = bindings
                    .iter()
                    .map(|b| {
                        let report = results[b.node].as_ref().expect("inputs ran first");
                        self.store.blob_path(&report.outputs[&b.output].digest)
                    })
                    .collect();
                ctx = ctx.with_input(port, paths);
            }
        }
        for (port, nodes) in &manifest.sources {
            ctx = ctx.with_sources(port, nodes.clone());
        }
        for port in &node.outputs {
            let path = scratch.join(format!("{}.{}", port.name, port.ty.format.extension()));
            ctx = ctx.with_output(port.name, path);
        }
        let before: Vec<Digest> = node
            .external
            .iter()
            .map(|p| StatCache::stat_fingerprint(p))
            .collect::<Result<_, _>>()?;

        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            stage.run(&node.params, &ctx)
        }));
        let seconds = started.elapsed().as_secs_f64();
        let fail = |message: String| {
            let _ = std::fs::remove_dir_all(&scratch);
            Err(RunnerError::Other(message))
        };
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return fail(format!("stage `{}` failed: {err}", node.id)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                return fail(format!("stage `{}` panicked: {message}", node.id));
            }
        }

        for (path, old) in node.external.iter().zip(&before) {
            if StatCache::stat_fingerprint(path)? != *old {
                return fail(format!(
                    "external input `{}` changed while stage `{}` ran; nothing was committed",
                    path.display(),
                    node.id
                ));
            }
        }
        let mut outputs = BTreeMap::new();
        for port in &node.outputs {
            let path = ctx.output(port.name).expect("declared").to_path_buf();
            if !path.exists() {
                return fail(format!(
                    "stage `{}` did not write its declared output `{}`; nothing was committed",
                    node.id, port.name
                ));
            }
            if let Err(err) = check_format(&path, port.ty.format) {
                return fail(format!("stage `{}` output `{}`: {err}", node.id, port.name));
            }
        }
        for port in &node.outputs {
            let path = ctx.output(port.name).expect("declared").to_path_buf();
            let record = self.store.put_blob(&path, port.ty.format.extension())?;
            outputs.insert(port.name.to_string(), record);
        }
        fault_point("before-commit", &node.id);
        self.store.commit_action(&ActionRecord {
            key,
            node: node.id.clone(),
            manifest: manifest.clone(),
            outputs: outputs.clone(),
            seconds,
        })?;
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(outputs)
    }

    fn export(
        &self,
        plan: &Plan,
        reports: &[NodeReport],
        dir: &std::path::Path,
    ) -> Result<(), RunnerError> {
        for (index, report) in reports.iter().enumerate() {
            if !plan.consumers(index).is_empty() || report.outputs.is_empty() {
                continue;
            }
            let folder = dir.join(&report.node);
            std::fs::create_dir_all(&folder).map_err(|e| RunnerError::io(&folder, e))?;
            for (name, output) in &report.outputs {
                let target = folder.join(format!("{name}.{}", output.extension));
                let _ = std::fs::remove_file(&target);
                let blob = self.store.blob_path(&output.digest);
                if std::fs::hard_link(&blob, &target).is_err() {
                    std::fs::copy(&blob, &target).map_err(|e| RunnerError::io(&target, e))?;
                }
            }
        }
        Ok(())
    }

    /// Re-executes node `index` into scratch with its committed inputs and returns the
    /// digests it produced, without committing anything.
    pub(crate) fn reexecute(
        &self,
        plan: &Plan,
        index: usize,
        results: &Results,
    ) -> Result<BTreeMap<String, Digest>, RunnerError> {
        let node = &plan.nodes[index];
        let manifest = self
            .manifest(plan, index, results)?
            .ok_or_else(|| RunnerError::Other(format!("inputs of `{}` are missing", node.id)))?;
        let scratch_store = Store::open(&self.store.root().join("tmp").join(format!(
            "verify-{}-{}",
            std::process::id(),
            index
        )))?;
        let scratch_runner = Runner {
            registry: self.registry,
            store: scratch_store.clone(),
            options: RunOptions { export: None, ..self.options.clone() },
            observer: self.observer,
            stat_cache: StatCache::load(&scratch_store.root().join("stat-cache.json")),
        };
        // Inputs are read from this store; outputs go to the scratch store.
        let inputs_here: Results = RwLock::new(results.read().expect("results lock").clone());
        let outputs =
            scratch_runner.run_stage_reading(node, &manifest, &inputs_here, &self.store)?;
        let _ = std::fs::remove_dir_all(scratch_store.root());
        Ok(outputs.into_iter().map(|(name, record)| (name, record.digest)).collect())
    }

    fn run_stage_reading(
        &self,
        node: &Node,
        manifest: &KeyManifest,
        results: &Results,
        source: &Store,
    ) -> Result<BTreeMap<String, OutputRecord>, RunnerError> {
        // Copy the input blobs into this (scratch) store, so run_stage finds them.
        let results_guard = results.read().expect("results lock");
        for binding in node.inputs.values().flatten() {
            let report = results_guard[binding.node].as_ref().expect("inputs ran first");
            let digest = report.outputs[&binding.output].digest;
            let target = self.store.blob_path(&digest);
            if !target.exists() {
                let dir = target.parent().expect("parent");
                std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
                let blob = source.blob_path(&digest);
                if std::fs::hard_link(&blob, &target).is_err() {
                    std::fs::copy(&blob, &target).map_err(|e| RunnerError::io(&target, e))?;
                }
            }
        }
        drop(results_guard);
        self.run_stage(node, manifest, results, self.options.threads)
    }
}

/// Groups node indices into levels: every input of a node lies in an earlier level.
/// The ids of the nodes bound to each gathering input port of `node`.
fn gathered_sources(
    plan: &Plan,
    node: &Node,
    stage: &dyn exmap_stage::DynStage,
) -> BTreeMap<String, Vec<String>> {
    stage
        .inputs(&node.params)
        .into_iter()
        .filter(|port| port.many)
        .filter_map(|port| {
            let bindings = node.inputs.get(port.name)?;
            let ids = bindings.iter().map(|b| plan.nodes[b.node].id.clone()).collect();
            Some((port.name.to_string(), ids))
        })
        .collect()
}

pub(crate) fn levels(plan: &Plan) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; plan.nodes.len()];
    for (i, node) in plan.nodes.iter().enumerate() {
        depth[i] = node.inputs.values().flatten().map(|b| depth[b.node] + 1).max().unwrap_or(0);
    }
    let mut levels: Vec<Vec<usize>> = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
    for (i, d) in depth.into_iter().enumerate() {
        levels[d].push(i);
    }
    levels
}

fn device_class(device: Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
    }
}

fn check_format(path: &std::path::Path, format: Format) -> Result<(), String> {
    match format {
        Format::Table => exmap_artefact::read_table(path).map(|_| ()).map_err(|e| e.to_string()),
        Format::Tensors => {
            exmap_artefact::TensorFile::open(path).map(|_| ()).map_err(|e| e.to_string())
        }
        Format::Json => {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map(|_| ())
                .map_err(|e| format!("not valid JSON: {e}"))
        }
        Format::Document(_) => Ok(()),
    }
}

/// Fault injection for crash tests: with `EXMAP_FAULT=<point>:<node>` the process sleeps at
/// that point for a minute, so a test can kill it there.
fn fault_point(point: &str, node: &str) {
    if let Ok(spec) = std::env::var("EXMAP_FAULT") {
        if spec == format!("{point}:{node}") {
            eprintln!("EXMAP_FAULT reached {point}:{node}");
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
