//! The `explain` stage: heatmaps of a model's predictions on one split of a dataset.
//!
//! Inputs `model`, `manifest` and `images`; output `heatmaps` with `heatmaps` f32 [N, D],
//! `rows` i64 [N] (manifest rows, in manifest order) and `pred` i64 [N] (the model's
//! prediction, whatever the explained target). Images go through the model's own evaluation
//! transform and are explained `batch_size` at a time, so memory is bounded by the batch.

use exmap_stage::{types, Port, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};

use crate::heatmap::{Channels, Normalise, PostProcess};
use crate::lrp::Composite;
use crate::rules::ConvRule;

/// The `explain` stage kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExplainStage;

/// Which explainer produces the heatmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Lrp,
    Gradcam,
    InputXGradient,
    Saliency,
    IntegratedGradients,
}

/// LRP rule sets; the linear layer always uses LRP-ε with `epsilon`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompositeName {
    /// Symmetric gamma (`gamma`) on every convolution, the first one included.
    #[default]
    Reference,
    /// LRP-ε (`epsilon`) everywhere.
    Epsilon,
    /// zennit's generalised gamma (`gamma`) on every convolution.
    Gamma,
    /// α = 2, β = 1 on every convolution.
    #[serde(rename = "alpha2beta1")]
    Alpha2Beta1,
    /// z⁺ on every convolution.
    #[serde(rename = "zplus")]
    ZPlus,
}

/// Which class each heatmap explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Predicted,
    True,
}

/// Where integrated gradients start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BaselineName {
    /// The zero input after normalisation.
    #[default]
    Zero,
    /// The mean transformed image of the explained split.
    Mean,
}

/// Parameters of the `explain` stage; the defaults are the reference's LRP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainParams {
    pub method: Method,
    pub composite: CompositeName,
    pub gamma: f64,
    pub epsilon: f64,
    /// GradCAM's layer, one of the model's `layer_names()`.
    pub layer: String,
    /// Integrated-gradients steps.
    pub steps: i64,
    pub baseline: BaselineName,
    pub target: Target,
    pub split: String,
    /// Output side `d`; 0 keeps the input size.
    pub size: i64,
    pub channels: Channels,
    pub normalise: Normalise,
    pub batch_size: i64,
}

impl Default for ExplainParams {
    fn default() -> Self {
        Self {
            method: Method::Lrp,
            composite: CompositeName::Reference,
            gamma: 4.0,
            epsilon: 1e-6,
            layer: "layer4".to_string(),
            steps: 32,
            baseline: BaselineName::Zero,
            target: Target::Predicted,
            split: "val".to_string(),
            size: 0,
            channels: Channels::Signed3,
            normalise: Normalise::MaxAbs,
            batch_size: 16,
        }
    }
}

impl ExplainParams {
    /// The LRP composite these parameters name.
    pub fn composite(&self) -> Composite {
        let conv = match self.composite {
            CompositeName::Reference => return Composite::reference(self.gamma, self.epsilon),
            CompositeName::Epsilon => ConvRule::Epsilon { epsilon: self.epsilon },
            CompositeName::Gamma => ConvRule::Gamma { gamma: self.gamma },
            CompositeName::Alpha2Beta1 => ConvRule::AlphaBeta { alpha: 2.0, beta: 1.0 },
            CompositeName::ZPlus => ConvRule::ZPlus,
        };
        Composite::uniform(conv, self.epsilon)
    }

    pub(crate) fn post_process(&self) -> PostProcess {
        PostProcess { channels: self.channels, size: self.size, normalise: self.normalise }
    }
}

impl Stage for ExplainStage {
    type Params = ExplainParams;

    fn kind(&self) -> &'static str {
        "explain"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "pixel heatmaps (LRP, GradCAM, gradients) of a model's predictions on one split"
    }

    fn inputs(&self, _params: &ExplainParams) -> Vec<Port> {
        vec![
            Port::required("model", types::MODEL),
            Port::required("manifest", types::MANIFEST),
            Port::required("images", types::IMAGES),
        ]
    }

    fn outputs(&self, _params: &ExplainParams) -> Vec<Port> {
        vec![Port::required("heatmaps", types::HEATMAPS)]
    }

    fn validate(&self, params: &ExplainParams) -> Result<(), String> {
        let checks = [
            (
                params.gamma >= 0.0 && params.gamma.is_finite(),
                "`gamma` must be a finite number >= 0",
            ),
            (
                params.epsilon > 0.0 && params.epsilon.is_finite(),
                "`epsilon` must be a finite number > 0",
            ),
            (params.steps >= 1, "`steps` must be at least 1"),
            (params.size >= 0, "`size` must be 0 (no resize) or a side length"),
            (params.batch_size >= 1, "`batch_size` must be at least 1"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }

    fn run(&self, params: &ExplainParams, ctx: &StageContext) -> Result<(), StageError> {
        if let Err(message) = self.validate(params) {
            return Err(StageError::Params(message));
        }
        if ctx.threads > 0 {
            tch::set_num_threads(ctx.threads as i32);
        }
        crate::run::explain_split(params, ctx)
    }
}
