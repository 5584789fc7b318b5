//! The ResNet family (He et al. 2016) laid out exactly like torchvision's `resnet18`,
//! `resnet34` and `resnet50`: the same modules, the same parameter names, the same v1.5
//! bottleneck (stride on the 3x3 convolution), and the same initialisation scheme.
//!
//! The `small` stem replaces the 7x7 stride-2 convolution and the max-pool with one 3x3
//! stride-1 convolution, the usual variant for 28x28 and 32x32 images (Colored MNIST).

use serde::{Deserialize, Serialize};
use tch::nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use tch::nn::{self, ConvConfig, Init};
use tch::Tensor;

/// The network depth and block type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    ResNet18,
    ResNet34,
    ResNet50,
}

impl Arch {
    /// The `arch` metadata string (`resnet18` ...).
    pub fn name(self) -> &'static str {
        match self {
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::ResNet50 => "resnet50",
        }
    }

    /// Parses an `arch` metadata string.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "resnet18" => Arch::ResNet18,
            "resnet34" => Arch::ResNet34,
            "resnet50" => Arch::ResNet50,
            _ => return None,
        })
    }

    /// Blocks per stage.
    fn depths(self) -> [usize; 4] {
        match self {
            Arch::ResNet18 => [2, 2, 2, 2],
            Arch::ResNet34 | Arch::ResNet50 => [3, 4, 6, 3],
        }
    }

    /// Output channels of a block relative to its width.
    fn expansion(self) -> i64 {
        match self {
            Arch::ResNet18 | Arch::ResNet34 => 1,
            Arch::ResNet50 => 4,
        }
    }
}

/// The first layers of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 7x7 stride-2 convolution then 3x3 stride-2 max-pool (torchvision's).
    ImageNet,
    /// 3x3 stride-1 convolution and no max-pool.
    Small,
}

impl Stem {
    /// The `stem` metadata string.
    pub fn name(self) -> &'static str {
        match self {
            Stem::ImageNet => "imagenet",
            Stem::Small => "small",
        }
    }

    /// Parses a `stem` metadata string.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "imagenet" => Stem::ImageNet,
            "small" => Stem::Small,
            _ => return None,
        })
    }
}

/// Everything that decides the shape of a ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub arch: Arch,
    pub stem: Stem,
    pub num_classes: i64,
}

/// The 1x1 convolution and batch norm on a block's shortcut (`downsample.0`, `downsample.1`).
#[derive(Debug)]
pub struct Downsample {
    pub conv: nn::Conv2D,
    pub bn: nn::BatchNorm,
}

/// Two 3x3 convolutions with a shortcut (ResNet-18/34).
#[derive(Debug)]
pub struct BasicBlock {
    pub conv1: nn::Conv2D,
    pub bn1: nn::BatchNorm,
    pub conv2: nn::Conv2D,
    pub bn2: nn::BatchNorm,
    pub downsample: Option<Downsample>,
    pub stride: i64,
}

/// 1x1, 3x3 (strided), 1x1 convolutions with a shortcut (ResNet-50).
#[derive(Debug)]
pub struct Bottleneck {
    pub conv1: nn::Conv2D,
    pub bn1: nn::BatchNorm,
    pub conv2: nn::Conv2D,
    pub bn2: nn::BatchNorm,
    pub conv3: nn::Conv2D,
    pub bn3: nn::BatchNorm,
    pub downsample: Option<Downsample>,
    pub stride: i64,
}

/// One residual block.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a network holds a few dozen blocks; boxing them buys nothing"
)]
pub enum Block {
    Basic(BasicBlock),
    Bottleneck(Bottleneck),
}

/// A torchvision-compatible ResNet.
#[derive(Debug)]
pub struct ResNet {
    pub config: ResNetConfig,
    pub conv1: nn::Conv2D,
    pub bn1: nn::BatchNorm,
    /// `layer1` .. `layer4`, each a list of blocks named `layer{i}.{j}`.
    pub layers: Vec<Vec<Block>>,
    pub fc: nn::Linear,
}

impl ResNet {
    /// Creates the model's variables under `vs` with torchvision's names and initialisation
    /// (Kaiming-normal fan-out convolutions, unit/zero batch norms, PyTorch's default linear).
    pub fn new(vs: &nn::Path, config: ResNetConfig) -> Self {
        let conv1 = match config.stem {
            Stem::ImageNet => conv(vs / "conv1", 3, 64, 7, 2, 3),
            Stem::Small => conv(vs / "conv1", 3, 64, 3, 1, 1),
        };
        let bn1 = batch_norm(vs / "bn1", 64);

        let expansion = config.arch.expansion();
        let mut in_channels = 64;
        let mut layers = Vec::with_capacity(4);
        for (stage, depth) in config.arch.depths().into_iter().enumerate() {
            let width = 64 << stage;
            let layer_path = vs / format!("layer{}", stage + 1);
            let mut blocks = Vec::with_capacity(depth);
            for index in 0..depth {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                let path = &layer_path / index;
                let block = match config.arch {
                    Arch::ResNet18 | Arch::ResNet34 => {
                        Block::Basic(BasicBlock::new(&path, in_channels, width, stride))
                    }
                    Arch::ResNet50 => Block::Bottleneck(Bottleneck::new(
                        &path,
                        in_channels,
                        width,
                        stride,
                        expansion,
                    )),
                };
                blocks.push(block);
                in_channels = width * expansion;
            }
            layers.push(blocks);
        }

        let bound = 1.0 / (in_channels as f64).sqrt();
        let uniform = Init::Uniform { lo: -bound, up: bound };
        let fc_config = nn::LinearConfig { ws_init: uniform, bs_init: Some(uniform), bias: true };
        let fc = nn::linear(vs / "fc", in_channels, config.num_classes, fc_config);
        Self { config, conv1, bn1, layers, fc }
    }

    /// Convolution, batch norm, ReLU and (ImageNet stem) max-pool: [N, 3, H, W] ->
    /// [N, 64, H', W'].
    pub fn stem_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        match self.config.stem {
            Stem::ImageNet => ys.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false),
            Stem::Small => ys,
        }
    }

    /// Penultimate features: [N, 3, H, W] -> [N, D] after global average pooling.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = self.stem_t(xs, train);
        for block in self.layers.iter().flatten() {
            ys = block.forward_t(&ys, train);
        }
        pool(&ys)
    }

    /// Logits: [N, 3, H, W] -> [N, C].
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_t(xs, train).apply(&self.fc)
    }

    /// Logits and the named intermediate activations, in forward order: `conv1` (the stem
    /// output), then every block `layer{i}.{j}`, each stage's last block followed by the
    /// same tensor again under the stage name `layer{i}`.
    pub fn forward_with_activations(
        &self,
        xs: &Tensor,
        train: bool,
    ) -> (Tensor, Vec<(String, Tensor)>) {
        let mut activations = Vec::new();
        let mut ys = self.stem_t(xs, train);
        activations.push(("conv1".to_string(), ys.shallow_clone()));
        for (stage, blocks) in self.layers.iter().enumerate() {
            for (index, block) in blocks.iter().enumerate() {
                ys = block.forward_t(&ys, train);
                activations.push((format!("layer{}.{index}", stage + 1), ys.shallow_clone()));
            }
            activations.push((format!("layer{}", stage + 1), ys.shallow_clone()));
        }
        let logits = pool(&ys).apply(&self.fc);
        (logits, activations)
    }

    /// Every name [`ResNet::forward_with_activations`] yields, in the same order.
    pub fn layer_names(&self) -> Vec<String> {
        let mut names = vec!["conv1".to_string()];
        for (stage, blocks) in self.layers.iter().enumerate() {
            names.extend((0..blocks.len()).map(|index| format!("layer{}.{index}", stage + 1)));
            names.push(format!("layer{}", stage + 1));
        }
        names
    }

    /// The width of the penultimate features (512 for ResNet-18/34, 2048 for ResNet-50).
    pub fn feature_dim(&self) -> i64 {
        512 * self.config.arch.expansion()
    }
}

impl nn::ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        ResNet::forward_t(self, xs, train)
    }
}

impl Block {
    /// One residual block: [N, C_in, H, W] -> [N, C_out, H / stride, W / stride].
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Block::Basic(block) => {
                let ys = xs.apply(&block.conv1).apply_t(&block.bn1, train).relu();
                let ys = ys.apply(&block.conv2).apply_t(&block.bn2, train);
                (ys + shortcut(block.downsample.as_ref(), xs, train)).relu()
            }
            Block::Bottleneck(block) => {
                let ys = xs.apply(&block.conv1).apply_t(&block.bn1, train).relu();
                let ys = ys.apply(&block.conv2).apply_t(&block.bn2, train).relu();
                let ys = ys.apply(&block.conv3).apply_t(&block.bn3, train);
                (ys + shortcut(block.downsample.as_ref(), xs, train)).relu()
            }
        }
    }
}

impl BasicBlock {
    fn new(vs: &nn::Path, in_channels: i64, width: i64, stride: i64) -> Self {
        Self {
            conv1: conv(vs / "conv1", in_channels, width, 3, stride, 1),
            bn1: batch_norm(vs / "bn1", width),
            conv2: conv(vs / "conv2", width, width, 3, 1, 1),
            bn2: batch_norm(vs / "bn2", width),
            downsample: Downsample::new_if_needed(vs, in_channels, width, stride),
            stride,
        }
    }
}

impl Bottleneck {
    fn new(vs: &nn::Path, in_channels: i64, width: i64, stride: i64, expansion: i64) -> Self {
        let out_channels = width * expansion;
        Self {
            conv1: conv(vs / "conv1", in_channels, width, 1, 1, 0),
            bn1: batch_norm(vs / "bn1", width),
            conv2: conv(vs / "conv2", width, width, 3, stride, 1),
            bn2: batch_norm(vs / "bn2", width),
            conv3: conv(vs / "conv3", width, out_channels, 1, 1, 0),
            bn3: batch_norm(vs / "bn3", out_channels),
            downsample: Downsample::new_if_needed(vs, in_channels, out_channels, stride),
            stride,
        }
    }
}

impl Downsample {
    fn new_if_needed(
        vs: &nn::Path,
        in_channels: i64,
        out_channels: i64,
        stride: i64,
    ) -> Option<Self> {
        (stride != 1 || in_channels != out_channels).then(|| {
            let path = vs / "downsample";
            Self {
                conv: conv(&path / 0, in_channels, out_channels, 1, stride, 0),
                bn: batch_norm(&path / 1, out_channels),
            }
        })
    }
}

fn shortcut(downsample: Option<&Downsample>, xs: &Tensor, train: bool) -> Tensor {
    match downsample {
        Some(d) => xs.apply(&d.conv).apply_t(&d.bn, train),
        None => xs.shallow_clone(),
    }
}

/// Global average pooling and flattening: [N, D, H, W] -> [N, D].
fn pool(xs: &Tensor) -> Tensor {
    xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
}

fn conv(vs: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let config = ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: Init::Kaiming {
            dist: NormalOrUniform::Normal,
            fan: FanInOut::FanOut,
            non_linearity: NonLinearity::ReLU,
        },
        ..Default::default()
    };
    nn::conv2d(vs, c_in, c_out, kernel, config)
}

fn batch_norm(vs: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: Init::Const(1.0),
        bs_init: Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(vs, channels, config)
}
