//! LRP for the ResNet family, the way the reference composite treats a torchvision ResNet.
//!
//! [`LrpResNet`] copies a model's weights once with every batch norm folded into the
//! convolution before it (`w·γ/√(σ²+ε)`, `(b-μ)·γ/√(σ²+ε)+β`, as zennit's
//! canonizer does).
//! [`LrpResNet::relevance`] runs the folded network forward without autograd, keeping each
//! convolution's input and output, then sweeps back once: LRP-ε at the final linear layer,
//! the global average pool and every residual sum share relevance in proportion to their
//! inputs, ReLUs pass it through, the stem's max pool hands it to the maximum (its gradient),
//! and each convolution applies the composite's rule. Memory is bounded by the batch.

use exmap_models::{Block, ResNet, Stem};
use tch::{nn, Kind, Tensor};

use crate::rules::{self, Conv, ConvRule, Linear};

/// BN epsilon of torchvision's ResNet (and of `exmap-models`, which follows it).
const BATCH_NORM_EPS: f64 = 1e-5;

/// Which rule each layer kind gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Composite {
    /// The first convolution (the stem).
    pub first: ConvRule,
    /// Every other convolution, shortcut projections included.
    pub conv: ConvRule,
    /// ε of the LRP-ε rule on the final linear layer.
    pub linear_epsilon: f64,
}

impl Composite {
    /// The reference's composite: symmetric gamma on every convolution (the first one too)
    /// and LRP-ε on the linear layer.
    pub fn reference(gamma: f64, epsilon: f64) -> Self {
        let conv = ConvRule::SymmetricGamma { gamma };
        Self { first: conv, conv, linear_epsilon: epsilon }
    }

    /// The same rule everywhere.
    pub fn uniform(conv: ConvRule, epsilon: f64) -> Self {
        Self { first: conv, conv, linear_epsilon: epsilon }
    }
}

/// A ResNet with batch norms folded, ready for LRP.
#[derive(Debug)]
pub struct LrpResNet {
    stem: Conv,
    max_pool: bool,
    blocks: Vec<LrpBlock>,
    fc: Linear,
}

#[derive(Debug)]
struct LrpBlock {
    /// conv1, conv2 (and conv3 for a bottleneck), each followed by a ReLU but the last.
    convs: Vec<Conv>,
    downsample: Option<Conv>,
}

/// What the backward sweep needs of one block: its input and every convolution's output.
struct BlockTape {
    input: Tensor,
    outputs: Vec<Tensor>,
    shortcut: Option<Tensor>,
}

/// The result of one LRP pass over a batch.
#[derive(Debug)]
pub struct Relevance {
    /// Logits of the folded network [N, C].
    pub logits: Tensor,
    /// Relevance at the input [N, 3, H, W].
    pub input: Tensor,
}

impl LrpResNet {
    /// Copies `model`'s weights with batch norms folded into the convolutions.
    pub fn new(model: &ResNet) -> Self {
        tch::no_grad(|| {
            let (stem_stride, stem_padding) = match model.config.stem {
                Stem::ImageNet => (2, 3),
                Stem::Small => (1, 1),
            };
            let stem = fold(&model.conv1, &model.bn1, stem_stride, stem_padding);
            let blocks = model.layers.iter().flatten().map(LrpBlock::new).collect();
            let fc = Linear {
                ws: model.fc.ws.detach().copy(),
                bs: match &model.fc.bs {
                    Some(bs) => bs.detach().copy(),
                    None => {
                        Tensor::zeros([model.fc.ws.size()[0]], (Kind::Float, model.fc.ws.device()))
                    }
                },
            };
            Self { stem, max_pool: model.config.stem == Stem::ImageNet, blocks, fc }
        })
    }

    /// LRP of `targets` ([N] class indices, or the argmax when `None`) for normalised
    /// images `xs` [N, 3, H, W]; the output relevance is the one-hot of the target.
    pub fn relevance(
        &self,
        composite: &Composite,
        xs: &Tensor,
        targets: Option<&Tensor>,
    ) -> Relevance {
        tch::no_grad(|| {
            let z0 = self.stem.forward(xs);
            let a0 = z0.relu();
            let (mut ys, indices) = if self.max_pool {
                let (ys, indices) =
                    a0.max_pool2d_with_indices([3, 3], [2, 2], [1, 1], [1, 1], false);
                (ys, Some(indices))
            } else {
                (a0.shallow_clone(), None)
            };
            let mut tapes = Vec::with_capacity(self.blocks.len());
            for block in &self.blocks {
                let tape = block.forward(&ys);
                ys = block.output(&tape);
                tapes.push(tape);
            }
            let pooled = ys.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
            let logits = self.fc.forward(&pooled);

            let targets = match targets {
                Some(targets) => targets.shallow_clone(),
                None => logits.argmax(1, false),
            };
            let r_logits = targets.one_hot(logits.size()[1]).to_kind(logits.kind());
            let r_pooled =
                self.fc.relevance_epsilon(composite.linear_epsilon, &pooled, &logits, &r_logits);
            let mut rs = rules::global_avg_pool_relevance(&ys, &pooled, &r_pooled);
            for (block, tape) in self.blocks.iter().zip(&tapes).rev() {
                rs = block.relevance(composite.conv, tape, &rs);
            }
            if let Some(indices) = indices {
                rs = a0.max_pool2d_with_indices_backward(
                    &rs,
                    [3, 3],
                    [2, 2],
                    [1, 1],
                    [1, 1],
                    false,
                    &indices,
                );
            }
            let input = self.stem.relevance(composite.first, xs, &z0, &rs);
            Relevance { logits, input }
        })
    }

    /// Moves every folded weight to `device`.
    pub fn to_device(mut self, device: tch::Device) -> Self {
        fn move_conv(conv: Conv, device: tch::Device) -> Conv {
            Conv::new(conv.ws.to(device), Some(conv.bs.to(device)), conv.stride, conv.padding)
        }
        self.stem = move_conv(self.stem, device);
        self.blocks = self
            .blocks
            .into_iter()
            .map(|block| LrpBlock {
                convs: block.convs.into_iter().map(|c| move_conv(c, device)).collect(),
                downsample: block.downsample.map(|c| move_conv(c, device)),
            })
            .collect();
        self.fc = Linear { ws: self.fc.ws.to(device), bs: self.fc.bs.to(device) };
        self
    }
}

impl LrpBlock {
    fn new(block: &Block) -> Self {
        match block {
            Block::Basic(b) => Self {
                convs: vec![fold(&b.conv1, &b.bn1, b.stride, 1), fold(&b.conv2, &b.bn2, 1, 1)],
                downsample: b.downsample.as_ref().map(|d| fold(&d.conv, &d.bn, b.stride, 0)),
            },
            Block::Bottleneck(b) => Self {
                convs: vec![
                    fold(&b.conv1, &b.bn1, 1, 0),
                    fold(&b.conv2, &b.bn2, b.stride, 1),
                    fold(&b.conv3, &b.bn3, 1, 0),
                ],
                downsample: b.downsample.as_ref().map(|d| fold(&d.conv, &d.bn, b.stride, 0)),
            },
        }
    }

    fn forward(&self, xs: &Tensor) -> BlockTape {
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.convs.len());
        for conv in &self.convs {
            let input = outputs.last().map_or_else(|| xs.shallow_clone(), Tensor::relu);
            outputs.push(conv.forward(&input));
        }
        let shortcut = self.downsample.as_ref().map(|conv| conv.forward(xs));
        BlockTape { input: xs.shallow_clone(), outputs, shortcut }
    }

    /// ReLU of the residual sum.
    fn output(&self, tape: &BlockTape) -> Tensor {
        (identity(tape) + tape.outputs.last().expect("a block has convolutions")).relu()
    }

    fn relevance(&self, rule: ConvRule, tape: &BlockTape, rs: &Tensor) -> Tensor {
        let last = tape.outputs.last().expect("a block has convolutions");
        let shares = rules::sum_relevance(&[&identity(tape), last], rs);
        let (r_identity, mut r) = (&shares[0], shares[1].shallow_clone());
        for (i, conv) in self.convs.iter().enumerate().rev() {
            let input =
                if i == 0 { tape.input.shallow_clone() } else { tape.outputs[i - 1].relu() };
            r = conv.relevance(rule, &input, &tape.outputs[i], &r);
        }
        match (&self.downsample, &tape.shortcut) {
            (Some(conv), Some(zs)) => r + conv.relevance(rule, &tape.input, zs, r_identity),
            _ => r + r_identity,
        }
    }
}

fn identity(tape: &BlockTape) -> Tensor {
    tape.shortcut.as_ref().unwrap_or(&tape.input).shallow_clone()
}

/// A convolution with the batch norm after it folded in (eval-mode statistics).
fn fold(conv: &nn::Conv2D, bn: &nn::BatchNorm, stride: i64, padding: i64) -> Conv {
    let scale = match &bn.ws {
        Some(gamma) => gamma / (&bn.running_var + BATCH_NORM_EPS).sqrt(),
        None => (&bn.running_var + BATCH_NORM_EPS).sqrt().reciprocal(),
    };
    let ws = &conv.ws * scale.view([-1, 1, 1, 1]);
    let bias = conv.bs.as_ref().map_or_else(|| bn.running_mean.zeros_like(), Tensor::shallow_clone);
    let mut bs = (bias - &bn.running_mean) * &scale;
    if let Some(beta) = &bn.bs {
        bs += beta;
    }
    Conv::new(ws.detach(), Some(bs.detach()), stride, padding)
}
