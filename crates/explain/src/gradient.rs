//! Explainers built on the model's ordinary gradient: GradCAM at a named layer, input ×
//! gradient, saliency (absolute gradient) and integrated gradients.
//!
//! Each returns a raw attribution [N, C, H, W] (C = 3 for the input-space methods, 1 for
//! GradCAM upsampled to the input size) for the given target classes; [`crate::heatmap`]
//! turns it into heatmaps.

use exmap_models::ResNet;
use tch::{Kind, Tensor};

/// Where integrated gradients start.
#[derive(Debug)]
pub enum Baseline {
    /// The all-zero input (after normalisation).
    Zero,
    /// A fixed image [3, H, W] (the mean input of the split).
    Image(Tensor),
}

/// Logits [N, C] and the gradient of the target logits' sum with respect to `xs`.
pub fn input_gradient(model: &ResNet, xs: &Tensor, targets: &Tensor) -> (Tensor, Tensor) {
    let xs = xs.detach().set_requires_grad(true);
    let logits = model.forward_t(&xs, false);
    let score = target_score(&logits, targets);
    let grad = Tensor::run_backward(&[score], &[&xs], false, false).remove(0);
    (logits.detach(), grad)
}

/// Input × gradient: [N, 3, H, W].
pub fn input_x_gradient(model: &ResNet, xs: &Tensor, targets: &Tensor) -> Tensor {
    let (_, grad) = input_gradient(model, xs, targets);
    xs * grad
}

/// Saliency, the absolute input gradient: [N, 3, H, W].
pub fn saliency(model: &ResNet, xs: &Tensor, targets: &Tensor) -> Tensor {
    input_gradient(model, xs, targets).1.abs()
}

/// Integrated gradients with `steps` midpoint Riemann steps from `baseline` to `xs`:
/// `(x - x₀) · mean_k ∇f(x₀ + (k - ½)/steps · (x - x₀))`.
/// Summed over pixels it approaches
/// `f(x) - f(x₀)` for the target logit as `steps` grows.
pub fn integrated_gradients(
    model: &ResNet,
    xs: &Tensor,
    targets: &Tensor,
    baseline: &Baseline,
    steps: i64,
) -> Tensor {
    let start = match baseline {
        Baseline::Zero => xs.zeros_like(),
        Baseline::Image(image) => image.unsqueeze(0).expand_as(xs),
    };
    let delta = xs - &start;
    let mut total = xs.zeros_like();
    for k in 0..steps {
        let alpha = (k as f64 + 0.5) / steps as f64;
        let point = &start + &delta * alpha;
        total += input_gradient(model, &point, targets).1;
    }
    delta * total / steps as f64
}

/// GradCAM at activation `layer` (one of [`ResNet::layer_names`]): ReLU of the channels
/// weighted by their spatially averaged gradients, upsampled bilinearly to the input size.
/// Returns `None` when the model has no such layer.
pub fn gradcam(model: &ResNet, xs: &Tensor, targets: &Tensor, layer: &str) -> Option<Tensor> {
    // The parameters are frozen, so the input must ask for gradients for the activations to.
    let xs = xs.detach().set_requires_grad(true);
    let (logits, activations) = model.forward_with_activations(&xs, false);
    let (_, activation) = activations.into_iter().find(|(name, _)| name == layer)?;
    let score = target_score(&logits, targets);
    let grad = Tensor::run_backward(&[score], &[&activation], false, false).remove(0);
    let weights = grad.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let cam = (weights * activation.detach()).sum_dim_intlist(1, true, Kind::Float).relu();
    let size = xs.size();
    Some(cam.upsample_bilinear2d([size[2], size[3]], false, None, None))
}

/// The sum over the batch of each sample's target logit.
fn target_score(logits: &Tensor, targets: &Tensor) -> Tensor {
    logits.gather(1, &targets.view([-1, 1]), false).sum(Kind::Float)
}
