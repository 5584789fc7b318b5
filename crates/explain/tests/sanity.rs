//! Properties of the ResNet LRP engine that need no reference: conservation, sensitivity to
//! the weights, independence of the batch.

mod common;

use exmap_explain::{Composite, ConvRule, LrpResNet};
use exmap_models::{Arch, ResNet, ResNetConfig, Stem};
use tch::{nn, Device, Kind, Tensor};

use common::agreement;

/// A ResNet with seeded random weights and batch norm statistics. `bias_free` zeroes every
/// batch-norm mean and shift and the linear bias, so that the folded network has no bias.
fn model(arch: Arch, stem: Stem, seed: i64, bias_free: bool) -> (nn::VarStore, ResNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = ResNet::new(&vs.root(), ResNetConfig { arch, stem, num_classes: 3 });
    tch::no_grad(|| {
        for (name, mut tensor) in vs.variables() {
            let n = tensor.size()[0];
            let fresh = if name.ends_with("running_var") {
                Tensor::rand([n], (Kind::Float, Device::Cpu)) + 0.5
            } else if name.ends_with("running_mean")
                || (name.contains("bn") || name.contains("downsample.1")) && name.ends_with("bias")
            {
                Tensor::randn([n], (Kind::Float, Device::Cpu)) * if bias_free { 0.0 } else { 0.2 }
            } else if name == "fc.bias" {
                Tensor::zeros([n], (Kind::Float, Device::Cpu))
            } else {
                continue;
            };
            tensor.copy_(&fresh);
        }
    });
    (vs, model)
}

fn images(n: i64, side: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([n, 3, side, side], (Kind::Float, Device::Cpu))
}

#[test]
fn epsilon_lrp_conserves_relevance_on_a_bias_free_resnet() {
    // Every rule here (ε, proportional sums and pooling, max-pool gradient) conserves
    // relevance when there is no bias; f32 arithmetic over ~20 layers allows 1e-3.
    for (arch, stem) in [
        (Arch::ResNet18, Stem::ImageNet),
        (Arch::ResNet18, Stem::Small),
        (Arch::ResNet50, Stem::ImageNet),
    ] {
        let (_vs, model) = model(arch, stem, 1, true);
        let lrp = LrpResNet::new(&model);
        let xs = images(2, 32, 2);
        let composite = Composite::uniform(ConvRule::Epsilon { epsilon: 1e-9 }, 1e-9);
        let relevance = lrp.relevance(&composite, &xs, None);
        let sums = Vec::<f64>::try_from(relevance.input.flatten(1, -1).sum_dim_intlist(
            1,
            false,
            Kind::Double,
        ))
        .unwrap();
        for (i, sum) in sums.iter().enumerate() {
            assert!(
                (sum - 1.0).abs() < 1e-3,
                "{arch:?} {stem:?} image {i}: relevance sums to {sum}"
            );
        }
    }
}

#[test]
fn folded_network_predicts_like_the_model() {
    let (_vs, model) = model(Arch::ResNet18, Stem::ImageNet, 3, false);
    let xs = images(4, 32, 4);
    let logits = tch::no_grad(|| model.forward_t(&xs, false));
    let relevance = LrpResNet::new(&model).relevance(&Composite::reference(4.0, 1e-6), &xs, None);
    let rel = (&relevance.logits - &logits).abs().max().double_value(&[])
        / logits.abs().max().double_value(&[]);
    assert!(rel < 1e-4, "folded logits differ by {rel}");
}

#[test]
fn heatmaps_change_when_the_weights_are_randomised() {
    // The model-randomisation check: the same images explained by a network with freshly
    // drawn weights must give different maps. Gamma-LRP maps of untrained networks on noise
    // images follow the input pattern closely (re-drawing only the top two stages measured
    // correlation 0.998, re-drawing everything 0.93), so the bounds are correlation below
    // 0.97 and a relative difference above 0.2; a map that ignored the weights gives 1 and 0.
    let xs = images(3, 32, 6);
    let composite = Composite::reference(4.0, 1e-6);
    let (_vs, first) = model(Arch::ResNet18, Stem::ImageNet, 5, false);
    let (_vs2, second) = model(Arch::ResNet18, Stem::ImageNet, 6, false);
    let before = LrpResNet::new(&first).relevance(&composite, &xs, None).input;
    let after = LrpResNet::new(&second).relevance(&composite, &xs, None).input;
    for (i, (corr, rel)) in agreement(&before, &after).into_iter().enumerate() {
        assert!(corr < 0.97 && rel > 0.2, "image {i}: correlation {corr}, difference {rel}");
    }
}

/// oneDNN picks convolution kernels by batch size, so a sample explained alone and in a
/// batch agree to float rounding, amplified by the rules' denominators (not bit for bit):
/// relative 1e-3 of the map's max |value| (measured up to 5e-5).
#[test]
fn batched_and_single_image_results_agree() {
    let (_vs, model) = model(Arch::ResNet18, Stem::Small, 8, false);
    let lrp = LrpResNet::new(&model);
    let xs = images(4, 16, 9);
    let composite = Composite::reference(4.0, 1e-6);
    let batched = lrp.relevance(&composite, &xs, None).input;
    for i in 0..4 {
        let single = lrp.relevance(&composite, &xs.narrow(0, i, 1), None).input;
        let scale = single.abs().max().double_value(&[]);
        let diff = (&single - batched.narrow(0, i, 1)).abs().max().double_value(&[]) / scale;
        assert!(diff < 1e-3, "image {i} differs by {diff} (relative) between batch and single");
    }
}
