//! Explainers: pixel heatmaps of a ResNet's predictions, and the `explain` stage that writes
//! them for one split of a dataset.
//!
//! [`rules`] holds the LRP rules as plain functions on tensors. [`lrp`] applies them to the
//! ResNet family the way the reference composite does (batch norm folded into convolutions,
//! residual sums and average pooling shared in proportion, max pooling by its gradient), with
//! one explicit backward sweep over stored activations. [`gradient`] holds the autograd
//! explainers (GradCAM, input × gradient, saliency, integrated gradients), [`heatmap`] the
//! shared post-processing (channels, resizing, normalisation), and [`stage`] the stage.

pub mod gradient;
pub mod heatmap;
pub mod lrp;
pub mod rules;
mod run;
mod stage;

pub use lrp::{Composite, LrpResNet, Relevance};
pub use rules::ConvRule;
pub use stage::{BaselineName, CompositeName, ExplainParams, ExplainStage, Method, Target};
