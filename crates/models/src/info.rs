//! The `model` artefact's metadata and the evaluation transform it prescribes.
//!
//! A model artefact (`exmap_stage::types::MODEL`) is a state dict plus string metadata:
//! `arch`, `stem`, `classes`, `mean` and `std` (comma-separated per channel, empty for none),
//! `resize` and `crop` (square sides, 0 for none). Every consumer of a model (embeddings,
//! explainers) applies the same transform from that metadata, so it lives here once.

use std::collections::BTreeMap;
use std::path::Path;

use exmap_artefact::TensorFile;
use tch::{nn, Device, Kind, Tensor};

use crate::{load_weights, Arch, LoadOptions, ModelError, ResNet, ResNetConfig, Stem};

/// torchvision's ImageNet channel means.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet channel standard deviations.
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// What a model artefact says about its network and its input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelInfo {
    pub config: ResNetConfig,
    pub mean: Option<[f64; 3]>,
    pub std: Option<[f64; 3]>,
    /// Square side images are resized to before cropping; 0 for none.
    pub resize: i64,
    /// Centre-crop side; 0 for none.
    pub crop: i64,
}

impl ModelInfo {
    /// Parses the metadata of a model artefact; a missing or malformed key names the file.
    pub fn from_metadata(file: &TensorFile) -> Result<Self, ModelError> {
        let path = file.path();
        let get = |key: &str| {
            file.metadata(key).ok_or_else(|| ModelError::metadata(path, key, "is missing"))
        };
        let arch = get("arch")?;
        let arch = Arch::parse(arch).ok_or_else(|| {
            ModelError::metadata(
                path,
                "arch",
                format!("`{arch}` is not resnet18, resnet34 or resnet50"),
            )
        })?;
        let stem = get("stem")?;
        let stem = Stem::parse(stem).ok_or_else(|| {
            ModelError::metadata(path, "stem", format!("`{stem}` is not imagenet or small"))
        })?;
        let num_classes = parse_count(path, "classes", get("classes")?)?;
        if num_classes < 1 {
            return Err(ModelError::metadata(path, "classes", "must be at least 1"));
        }
        let mean = parse_channels(path, "mean", file.metadata("mean").unwrap_or_default())?;
        let std = parse_channels(path, "std", file.metadata("std").unwrap_or_default())?;
        if mean.is_some() != std.is_some() {
            return Err(ModelError::metadata(path, "std", "must be given exactly when `mean` is"));
        }
        let resize = parse_count(path, "resize", file.metadata("resize").unwrap_or("0"))?;
        let crop = parse_count(path, "crop", file.metadata("crop").unwrap_or("0"))?;
        let config = ResNetConfig { arch, stem, num_classes };
        Ok(Self { config, mean, std, resize, crop })
    }

    /// The metadata entries that [`ModelInfo::from_metadata`] reads back.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let channels = |values: Option<[f64; 3]>| {
            values.map(|v| v.map(|x| x.to_string()).join(",")).unwrap_or_default()
        };
        BTreeMap::from([
            ("arch".to_string(), self.config.arch.name().to_string()),
            ("stem".to_string(), self.config.stem.name().to_string()),
            ("classes".to_string(), self.config.num_classes.to_string()),
            ("mean".to_string(), channels(self.mean)),
            ("std".to_string(), channels(self.std)),
            ("resize".to_string(), self.resize.to_string()),
            ("crop".to_string(), self.crop.to_string()),
        ])
    }

    /// The evaluation transform: u8 [N, 3, H, W] -> normalised f32 [N, 3, S, S].
    ///
    /// Like torchvision's `Resize` (bilinear, no antialias) on a u8 tensor, the resized
    /// image is rounded back to whole intensities; then a centre crop (zero padding where
    /// the crop is larger, as torchvision does), division by 255 and normalisation.
    pub fn eval_transform(&self, images_u8: &Tensor) -> Tensor {
        let mut xs = images_u8.to_kind(Kind::Float);
        let size = xs.size();
        if self.resize > 0 && (size[2] != self.resize || size[3] != self.resize) {
            xs = xs
                .upsample_bilinear2d([self.resize, self.resize], false, None::<f64>, None::<f64>)
                .round()
                .clamp(0.0, 255.0);
        }
        if self.crop > 0 {
            xs = centre_crop(&xs, self.crop);
        }
        // Out of place: `xs` may share storage with the caller's tensor.
        let xs = &xs / 255.0;
        normalise(&xs, self.mean, self.std)
    }
}

/// Normalises f32 images [N, 3, H, W] in [0, 1] with per-channel `mean` and `std` (no-op
/// when absent).
pub fn normalise(xs: &Tensor, mean: Option<[f64; 3]>, std: Option<[f64; 3]>) -> Tensor {
    match (mean, std) {
        (Some(mean), Some(std)) => {
            let device = xs.device();
            let mean = Tensor::from_slice(&mean.map(|v| v as f32)).view([1, 3, 1, 1]).to(device);
            let std = Tensor::from_slice(&std.map(|v| v as f32)).view([1, 3, 1, 1]).to(device);
            (xs - mean) / std
        }
        _ => xs.shallow_clone(),
    }
}

/// Builds the model stored in a `model` artefact on `device`, in eval mode with its
/// parameters frozen (gradients still flow to the input).
pub fn load_model_artefact(
    path: &Path,
    device: Device,
) -> Result<(nn::VarStore, ResNet, ModelInfo), ModelError> {
    let file = TensorFile::open(path)?;
    let info = ModelInfo::from_metadata(&file)?;
    drop(file);
    let mut vs = nn::VarStore::new(device);
    let model = ResNet::new(&vs.root(), info.config);
    load_weights(&mut vs, path, LoadOptions::default())?;
    vs.freeze();
    Ok((vs, model, info))
}

/// torchvision's `CenterCrop` on [N, C, H, W]: zero-pads a side smaller than `crop`, then
/// takes the central window with the offset rounded half to even.
fn centre_crop(xs: &Tensor, crop: i64) -> Tensor {
    let size = xs.size();
    let (h, w) = (size[2], size[3]);
    let mut xs = xs.shallow_clone();
    if crop > h || crop > w {
        let pad_w = (crop - w).max(0);
        let pad_h = (crop - h).max(0);
        xs = xs.constant_pad_nd([pad_w / 2, (pad_w + 1) / 2, pad_h / 2, (pad_h + 1) / 2]);
    }
    let size = xs.size();
    let (h, w) = (size[2], size[3]);
    let top = ((h - crop) as f64 / 2.0).round_ties_even() as i64;
    let left = ((w - crop) as f64 / 2.0).round_ties_even() as i64;
    xs.narrow(2, top, crop).narrow(3, left, crop)
}

fn parse_count(path: &Path, key: &str, value: &str) -> Result<i64, ModelError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| ModelError::metadata(path, key, format!("`{value}` is not a count")))
}

fn parse_channels(path: &Path, key: &str, value: &str) -> Result<Option<[f64; 3]>, ModelError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let bad = || ModelError::metadata(path, key, format!("`{value}` is not three numbers"));
    let values: Vec<f64> = value
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let values: [f64; 3] = values.try_into().map_err(|_| bad())?;
    Ok(Some(values))
}
