//! Post-processing shared by every explainer: channel handling, resizing to `d × d`, and
//! per-sample normalisation, from a raw attribution [N, C, H, W] to flat heatmaps [N, D].

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What happens to the channels of an input-space attribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// Keep the three signed channels, as the reference does.
    #[default]
    Signed3,
    /// Sum the channels into one signed map.
    Sum,
}

/// How each heatmap is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Divide by the maximum absolute value; an all-zero map stays all zero.
    #[default]
    MaxAbs,
    /// Leave the values as they are.
    None,
}

/// How raw attributions become heatmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostProcess {
    pub channels: Channels,
    /// Output side `d`; 0 keeps the attribution's own size.
    pub size: i64,
    pub normalise: Normalise,
}

impl PostProcess {
    /// [N, C, H, W] attribution -> [N, D] f32 heatmaps. Single-channel maps (GradCAM) keep
    /// their one channel whatever `channels` says.
    pub fn apply(&self, attribution: &Tensor) -> Tensor {
        let mut maps = attribution.to_kind(Kind::Float);
        if self.channels == Channels::Sum && maps.size()[1] > 1 {
            maps = maps.sum_dim_intlist(1, true, Kind::Float);
        }
        if self.size > 0 {
            maps = resize(&maps, self.size);
        }
        let flat = maps.flatten(1, -1);
        match self.normalise {
            Normalise::MaxAbs => normalise_max_abs(&flat),
            Normalise::None => flat,
        }
    }
}

/// Bilinear resize to `size × size`, half-pixel centres (`align_corners = false`), no
/// antialiasing: what `F.interpolate(x, size=d, mode="bilinear")` does.
pub fn resize(maps: &Tensor, size: i64) -> Tensor {
    let shape = maps.size();
    if shape[2] == size && shape[3] == size {
        return maps.shallow_clone();
    }
    maps.upsample_bilinear2d([size, size], false, None, None)
}

/// Divides each row of [N, D] by its maximum absolute value; all-zero rows stay zero.
pub fn normalise_max_abs(flat: &Tensor) -> Tensor {
    let max = flat.abs().amax([1i64].as_slice(), true);
    let divisor = max.where_self(&max.gt(0.0), &max.ones_like());
    flat / divisor
}
