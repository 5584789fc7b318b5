//! Parameters of the `erm` stage and their reference defaults.

use std::path::PathBuf;

use exmap_models::{Arch, Stem, IMAGENET_MEAN, IMAGENET_STD};
use serde::{Deserialize, Serialize};

/// Learning-rate schedule over epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine annealing to zero over `epochs` (PyTorch's `CosineAnnealingLR`, stepped per
    /// epoch).
    Cosine,
    Constant,
}

/// Input normalisation after scaling to [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalise {
    /// torchvision's ImageNet channel mean and standard deviation.
    ImageNet,
    None,
}

impl Normalise {
    pub fn channels(self) -> (Option<[f64; 3]>, Option<[f64; 3]>) {
        match self {
            Normalise::ImageNet => (Some(IMAGENET_MEAN), Some(IMAGENET_STD)),
            Normalise::None => (None, None),
        }
    }
}

/// torchvision's `RandomResizedCrop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomResizedCrop {
    /// Output side.
    pub size: i64,
    /// Range of the crop's share of the image area.
    pub scale: [f64; 2],
    /// Range of the crop's aspect ratio (width / height).
    pub ratio: [f64; 2],
}

impl Default for RandomResizedCrop {
    fn default() -> Self {
        Self { size: 224, scale: [0.7, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0] }
    }
}

/// Parameters of the `erm` stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErmParams {
    pub arch: Arch,
    pub stem: Stem,
    /// A safetensors state dict with torchvision names to start from (its `fc` is replaced
    /// when the class count differs), or random initialisation when absent.
    pub pretrained: Option<PathBuf>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Training crop; when absent, training images get the evaluation resize and crop.
    pub random_resized_crop: Option<RandomResizedCrop>,
    pub hflip: bool,
    /// Evaluation resize side (0: none), recorded in the model artefact.
    pub resize: i64,
    /// Evaluation centre-crop side (0: none), recorded in the model artefact.
    pub crop: i64,
    pub normalise: Normalise,
    /// Batch size of the per-epoch validation pass.
    pub eval_batch_size: usize,
}

impl Default for ErmParams {
    fn default() -> Self {
        Self {
            arch: Arch::ResNet18,
            stem: Stem::ImageNet,
            pretrained: None,
            epochs: 10,
            batch_size: 128,
            lr: 3e-3,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: Schedule::Cosine,
            random_resized_crop: None,
            hflip: true,
            resize: 0,
            crop: 0,
            normalise: Normalise::ImageNet,
            eval_batch_size: 256,
        }
    }
}

impl ErmParams {
    /// Checks serde cannot express; the message names the parameter.
    pub fn check(&self) -> Result<(), String> {
        if let Some(path) = self.pretrained.as_deref().filter(|p| !p.exists()) {
            let arch = self.arch.name();
            return Err(format!(
                "pretrained weights `{}` do not exist: run `cargo xtask weights {arch}` on a \
                 machine with internet (it converts torchvision's ImageNet weights into \
                 `weights/{arch}.safetensors`), or point `pretrained` (the shipped pipelines \
                 read `EXMAP_{}`) at such a file",
                path.display(),
                arch.to_uppercase()
            ));
        }
        if self.epochs == 0 {
            return Err("`epochs` must be at least 1".into());
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err("`batch_size` and `eval_batch_size` must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("`lr` must be positive, not {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) || self.weight_decay < 0.0 {
            return Err("`momentum` must be in [0, 1) and `weight_decay` non-negative".into());
        }
        if self.resize < 0 || self.crop < 0 {
            return Err("`resize` and `crop` must be 0 (none) or positive".into());
        }
        if let Some(rrc) = &self.random_resized_crop {
            let [s0, s1] = rrc.scale;
            let [r0, r1] = rrc.ratio;
            if rrc.size < 1 || !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) || !(0.0 < r0 && r0 <= r1) {
                return Err(format!(
                    "`random_resized_crop` needs size >= 1, 0 < scale[0] <= scale[1] <= 1 and \
                     0 < ratio[0] <= ratio[1], not {rrc:?}"
                ));
            }
        }
        Ok(())
    }
}
