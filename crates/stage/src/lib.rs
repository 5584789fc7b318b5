//! The stage contract: what the runner knows about a pipeline stage.
//!
//! A stage has a kind (the `uses:` name in a pipeline), typed parameters with defaults,
//! named input and output ports with artefact types, and a `run` that is a pure function of
//! its parameters, its input artefacts and the seed in its [`StageContext`]. Stage crates
//! implement [`Stage`]; the runner holds them as [`DynStage`] objects in a [`Registry`] and
//! never depends on a stage crate's internals.

mod context;
mod error;
mod params;
mod ports;
mod registry;
pub mod types;

pub use context::{Device, Progress, SilentProgress, StageContext};
pub use error::{ParamError, StageError};
pub use params::{resolve_params, DynStage, Stage};
pub use ports::{ArtefactType, Format, Port};
pub use registry::Registry;
