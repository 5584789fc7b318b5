//! The registry: `uses:` names to stage implementations.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::DynStage;

/// Maps stage kinds to their implementations.
#[derive(Default, Clone)]
pub struct Registry {
    stages: BTreeMap<&'static str, Arc<dyn DynStage>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a stage kind; a second stage with the same kind replaces the first.
    pub fn register(&mut self, stage: impl DynStage + 'static) -> &mut Self {
        self.stages.insert(stage.kind(), Arc::new(stage));
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn DynStage>> {
        self.stages.get(kind)
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.stages.keys().copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn DynStage>> {
        self.stages.values()
    }
}
