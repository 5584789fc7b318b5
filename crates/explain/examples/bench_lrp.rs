//! Times reference-composite LRP heatmaps per second on random weights and images.
//!
//! ```text
//! cargo run --release -p exmap-explain --example bench_lrp -- \
//!     --arch resnet18 --side 64 --n 64 --batch 32 --threads 2 [--images-out X.safetensors]
//! ```
//! `--images-out` writes the u8 images so that the peer's `lrp` subcommand can time zennit
//! on the same batch (`peer.py lrp --weights random --arch resnet18 --images X.safetensors`).

use std::io::Write;
use std::time::Instant;

use exmap_artefact::{Tensor as ArtefactTensor, TensorWriter};
use exmap_explain::heatmap::{Channels, Normalise, PostProcess};
use exmap_explain::{Composite, LrpResNet};
use exmap_models::{normalise, Arch, ResNet, ResNetConfig, Stem, IMAGENET_MEAN, IMAGENET_STD};
use tch::{nn, Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let arch =
        Arch::parse(&value("--arch", "resnet18")).ok_or_else(|| anyhow::anyhow!("bad --arch"))?;
    let side: i64 = value("--side", "64").parse()?;
    let n: i64 = value("--n", "64").parse()?;
    let batch: i64 = value("--batch", "32").parse()?;
    let threads: i32 = value("--threads", "2").parse()?;
    tch::set_num_threads(threads);

    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model =
        ResNet::new(&vs.root(), ResNetConfig { arch, stem: Stem::ImageNet, num_classes: 2 });
    let images = Tensor::randint(256, [n, 3, side, side], (Kind::Uint8, Device::Cpu));
    let images_out = value("--images-out", "");
    if !images_out.is_empty() {
        let bytes = Vec::<u8>::try_from(&images.flatten(0, -1))?;
        let shape = vec![n as usize, 3, side as usize, side as usize];
        TensorWriter::new()
            .add("images", ArtefactTensor::from_u8(shape, bytes))
            .write(images_out.as_ref())?;
    }
    let xs =
        normalise(&(images.to_kind(Kind::Float) / 255.0), Some(IMAGENET_MEAN), Some(IMAGENET_STD));

    let start = Instant::now();
    let lrp = LrpResNet::new(&model);
    let composite = Composite::reference(4.0, 1e-6);
    let post = PostProcess { channels: Channels::Signed3, size: 0, normalise: Normalise::MaxAbs };
    let mut checksum = 0.0;
    for i in (0..n).step_by(batch as usize) {
        let xb = xs.narrow(0, i, batch.min(n - i));
        let maps = post.apply(&lrp.relevance(&composite, &xb, None).input);
        checksum += maps.abs().sum(Kind::Double).double_value(&[]);
    }
    let seconds = start.elapsed().as_secs_f64();
    writeln!(
        std::io::stdout(),
        "lrp {arch:?} {side}x{side} n={n} batch={batch} threads={threads}: {seconds:.3} s, \
         {:.2} heatmaps/s, {:.4} s/image (checksum {checksum:.3})",
        n as f64 / seconds,
        seconds / n as f64
    )?;
    Ok(())
}
