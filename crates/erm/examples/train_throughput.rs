//! CPU training throughput of ResNet-18 (ImageNet stem) at 64 x 64, batch 64: forward,
//! cross-entropy, backward and an SGD step on random inputs, as the `erm` stage runs them.
//!
//! Usage: `cargo run --release -p exmap-erm --example train_throughput -- [threads] [steps]`.
//! `scripts/train_throughput.py` times the same loop in PyTorch for comparison.

use std::time::Instant;

use exmap_models::{Arch, ResNet, ResNetConfig, Stem};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let steps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let (batch, side, warmup) = (64i64, 64i64, 2usize);
    tch::set_num_threads(threads);
    tch::manual_seed(0);

    let vs = nn::VarStore::new(Device::Cpu);
    let config = ResNetConfig { arch: Arch::ResNet18, stem: Stem::ImageNet, num_classes: 2 };
    let model = ResNet::new(&vs.root(), config);
    let mut optimiser = nn::Sgd { momentum: 0.9, dampening: 0.0, wd: 1e-4, nesterov: false }
        .build(&vs, 3e-3)
        .expect("optimiser");
    let xs = Tensor::randn([batch, 3, side, side], (Kind::Float, Device::Cpu));
    let ys = Tensor::randint(2, [batch], (Kind::Int64, Device::Cpu));

    let mut start = Instant::now();
    for step in 0..warmup + steps {
        if step == warmup {
            start = Instant::now();
        }
        let loss = model.forward_t(&xs, true).cross_entropy_for_logits(&ys);
        optimiser.backward_step(&loss);
        let _ = loss.double_value(&[]);
    }
    let seconds = start.elapsed().as_secs_f64();
    let images_per_second = (steps as f64 * batch as f64) / seconds;
    #[expect(clippy::print_stdout, reason = "the example reports its measurement")]
    {
        println!(
            "rust tch: resnet18 {side}x{side} batch {batch} threads {threads}: {steps} steps in \
             {seconds:.2} s = {images_per_second:.1} images/s"
        );
    }
}
