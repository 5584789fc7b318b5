//! What a running stage is given: seed, device, thread budget, scratch folder, the paths of
//! its inputs and outputs, and a progress sink.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::StageError;

/// Where tensor work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

/// Receives progress of long work. The runner draws it on a terminal and drops it otherwise.
pub trait Progress: Send + Sync {
    /// `done` of `total` units of the named step.
    fn update(&self, step: &str, done: u64, total: u64);
}

/// A progress sink that shows nothing.
#[derive(Debug, Default)]
pub struct SilentProgress;

impl Progress for SilentProgress {
    fn update(&self, _step: &str, _done: u64, _total: u64) {}
}

/// Everything a stage's `run` may use besides its parameters.
///
/// The seed is part of the stage key; the device, threads and scratch folder are resources
/// that stay out of it.
pub struct StageContext<'a> {
    pub stage_id: String,
    pub seed: u64,
    pub device: Device,
    pub threads: usize,
    pub scratch: PathBuf,
    pub progress: &'a dyn Progress,
    inputs: BTreeMap<String, Vec<PathBuf>>,
    sources: BTreeMap<String, Vec<String>>,
    outputs: BTreeMap<String, PathBuf>,
}

impl<'a> StageContext<'a> {
    pub fn new(
        stage_id: impl Into<String>,
        seed: u64,
        scratch: PathBuf,
        progress: &'a dyn Progress,
    ) -> Self {
        Self {
            stage_id: stage_id.into(),
            seed,
            device: Device::Cpu,
            threads: 1,
            scratch,
            progress,
            inputs: BTreeMap::new(),
            sources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Connects input port `name` to artefact files (one, or several for a gathering port).
    pub fn with_input(mut self, name: &str, paths: Vec<PathBuf>) -> Self {
        self.inputs.insert(name.to_string(), paths);
        self
    }

    /// Names the nodes that produced the artefacts of gathering input `name`, in the order of
    /// [`StageContext::inputs`]. The runner includes these names in the stage's key.
    pub fn with_sources(mut self, name: &str, nodes: Vec<String>) -> Self {
        self.sources.insert(name.to_string(), nodes);
        self
    }

    /// The ids of the nodes that produced gathering input `name` (`exmap_local@lrp-kmeans`,
    /// say), in the order of [`StageContext::inputs`]; empty when not known.
    pub fn sources(&self, name: &str) -> &[String] {
        self.sources.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Sets the file that output port `name` must be written to.
    pub fn with_output(mut self, name: &str, path: PathBuf) -> Self {
        self.outputs.insert(name.to_string(), path);
        self
    }

    /// The artefact file of required input `name`.
    pub fn input(&self, name: &str) -> Result<&Path, StageError> {
        self.optional_input(name)
            .ok_or_else(|| StageError::data(format!("input `{name}` is not connected")))
    }

    /// The artefact file of optional input `name`, if it is connected.
    pub fn optional_input(&self, name: &str) -> Option<&Path> {
        self.inputs.get(name).and_then(|paths| paths.first()).map(PathBuf::as_path)
    }

    /// Every artefact file of gathering input `name`, in a stable order.
    pub fn inputs(&self, name: &str) -> &[PathBuf] {
        self.inputs.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The file that output `name` must be written to.
    pub fn output(&self, name: &str) -> Result<&Path, StageError> {
        self.outputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| StageError::data(format!("stage has no output `{name}`")))
    }

    /// Reports progress of a named step.
    pub fn progress(&self, step: &str, done: u64, total: u64) {
        self.progress.update(step, done, total);
    }
}
