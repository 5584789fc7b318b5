//! Pipeline files, from YAML text to a validated plan the runner executes.
//!
//! [`yaml`] is the only module that knows YAML: it parses a file into a [`PipelineFile`]
//! and locates keys for error messages. [`overrides`] applies `--set stage.param=value`.
//! [`plan`] checks the whole pipeline against the stage registry (kinds, parameters, ports,
//! artefact types, cycles) before anything runs, and expands sweeps (`matrix:`) into cells
//! with stable ids such as `explain@gradcam`.

mod error;
mod overrides;
mod plan;
mod yaml;

pub use error::{PipelineError, PipelineErrorKind};
pub use overrides::{apply_overrides, Override};
pub use plan::{build_plan, Binding, Node, Plan};
pub use yaml::{
    parse_pipeline, parse_pipeline_text as yaml_text, InputRef, PipelineFile, StageSpec,
};
