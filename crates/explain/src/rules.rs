//! LRP rules as functions on tensors: each takes a layer's input, its forward output and the
//! relevance at that output, and returns the relevance at the input.
//!
//! Relevance here is what zennit's attributors return as the "gradient": a tensor shaped like
//! the layer input whose entries sum (up to biases and stabilisers) to the relevance above.
//! Every convolution rule the engine offers shares one form. With `x⁺`/`x⁻` the positive and
//! negative parts of the input and `w⁺`/`w⁻` those of the weights, the positive contributions
//! to an output are `P = x⁺w⁺ + x⁻w⁻ + b⁺` and the negative ones
//! `N = x⁺w⁻ + x⁻w⁺ + b⁻`; a
//! rule picks two signals `sa` (sent back through the P terms) and `sb` (through the N terms)
//! and the input relevance is `x⁺(w⁺ᵀsa + w⁻ᵀsb) + x⁻(w⁻ᵀsa + w⁺ᵀsb)`.
//!
//! For the rules whose denominators are well conditioned (epsilon, gamma, symmetric gamma)
//! this is evaluated with two ordinary-sized transposed convolutions: since `P + N = z` (the
//! plain output) and `P - N = |x||w| + |b|`, the relevance is
//! `½(x·wᵀ(sa+sb) + |x|·|w|ᵀ(sa-sb))`.
//! Alpha-beta and z-plus divide by `P` or `N` alone, which may be tiny where the other part
//! dominates, so they use the exact four-term form on channel-stacked inputs instead.

use tch::Tensor;

/// The stabiliser zennit adds to every denominator: `ε` times the sign, with `+1` for zero.
pub const STABILISER: f64 = 1e-6;

/// How relevance passes through a convolution (or any linear map with weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvRule {
    /// LRP-ε: shares in proportion to the contributions, `ε` added to the denominator.
    Epsilon { epsilon: f64 },
    /// zennit's generalised gamma rule: where the output is positive, positive contributions
    /// are scaled by `1 + γ`; where it is negative, negative ones are; zero outputs get none.
    Gamma { gamma: f64 },
    /// The reference's rule: whichever of `P` and `|N|` dominates (ties go to `P`) is scaled
    /// by `1 + γ`. It equals [`ConvRule::Gamma`] except on outputs that are exactly zero.
    SymmetricGamma { gamma: f64 },
    /// LRP-αβ with `α - β = 1`: positive and negative contributions shared separately.
    AlphaBeta { alpha: f64, beta: f64 },
    /// LRP-z⁺: only positive contributions (αβ with α = 1, β = 0).
    ZPlus,
}

/// A convolution with its bias (batch norm already folded in) and geometry.
#[derive(Debug)]
pub struct Conv {
    /// Weights [C_out, C_in, k, k].
    pub ws: Tensor,
    /// Bias [C_out].
    pub bs: Tensor,
    pub stride: i64,
    pub padding: i64,
    abs_ws: Tensor,
    abs_bs: Tensor,
    stacked_ws: Tensor,
}

impl Conv {
    /// A convolution from weights [C_out, C_in, k, k], an optional bias and its geometry.
    pub fn new(ws: Tensor, bs: Option<Tensor>, stride: i64, padding: i64) -> Self {
        let c_out = ws.size()[0];
        let bs = bs.unwrap_or_else(|| Tensor::zeros([c_out], (ws.kind(), ws.device())));
        let (pos, neg) = (ws.clamp_min(0.0), ws.clamp_max(0.0));
        // Output channels [P part; N part] over input channels [x⁺; x⁻].
        let stacked_ws =
            Tensor::cat(&[Tensor::cat(&[&pos, &neg], 1), Tensor::cat(&[&neg, &pos], 1)], 0);
        Self { abs_ws: ws.abs(), abs_bs: bs.abs(), stacked_ws, ws, bs, stride, padding }
    }

    /// The plain output `z = conv(x, w) + b`: [N, C_in, H, W] -> [N, C_out, H', W'].
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(&self.ws, Some(&self.bs), [self.stride], [self.padding], [1], 1)
    }

    /// Relevance at the input `xs` given the plain output `zs` and the relevance `rs` there.
    pub fn relevance(&self, rule: ConvRule, xs: &Tensor, zs: &Tensor, rs: &Tensor) -> Tensor {
        match rule {
            ConvRule::Epsilon { epsilon } => {
                let s = rs / stabilise(zs, epsilon);
                xs * self.transpose(&s, &self.ws, xs)
            }
            ConvRule::Gamma { gamma } => {
                let (p, n) = self.parts(xs, zs);
                let one = 1.0 + gamma;
                let up = zs.gt(0.0).to_kind(rs.kind());
                let down = zs.lt(0.0).to_kind(rs.kind());
                let s_up = &up * rs / stabilise(&(&p * one + &n), STABILISER);
                let s_down = &down * rs / stabilise(&(&p + &n * one), STABILISER);
                let sa = &s_up * one + &s_down;
                let sb = s_up + s_down * one;
                self.two_sided(xs, &sa, &sb)
            }
            ConvRule::SymmetricGamma { gamma } => {
                let (p, n) = self.parts(xs, zs);
                let up = p.ge_tensor(&n.abs()).to_kind(rs.kind());
                let a = &up * gamma + 1.0;
                let b = (-&up + 1.0) * gamma + 1.0;
                let s = rs / stabilise(&(&p * &a + &n * &b), STABILISER);
                self.two_sided(xs, &(&s * a), &(s * b))
            }
            ConvRule::AlphaBeta { alpha, beta } => {
                let (p, n) = self.exact_parts(xs);
                let sa = rs / stabilise(&p, STABILISER) * alpha;
                let sb = rs / stabilise(&n, STABILISER) * (-beta);
                self.four_term(xs, &sa, &sb)
            }
            ConvRule::ZPlus => {
                let (p, _) = self.exact_parts(xs);
                let sa = rs / stabilise(&p, STABILISER);
                self.four_term(xs, &sa, &sa.zeros_like())
            }
        }
    }

    /// `P` and `N` from the plain output and one extra convolution of magnitudes.
    fn parts(&self, xs: &Tensor, zs: &Tensor) -> (Tensor, Tensor) {
        let m = xs.abs().conv2d(
            &self.abs_ws,
            Some(&self.abs_bs),
            [self.stride],
            [self.padding],
            [1],
            1,
        );
        ((zs + &m) * 0.5, (zs - m) * 0.5)
    }

    /// `P` and `N` summed term by term (no cancellation), from channel-stacked inputs.
    fn exact_parts(&self, xs: &Tensor) -> (Tensor, Tensor) {
        let c_out = self.ws.size()[0];
        let bias = Tensor::cat(&[self.bs.clamp_min(0.0), self.bs.clamp_max(0.0)], 0);
        let out = split_signs(xs).conv2d(
            &self.stacked_ws,
            Some(&bias),
            [self.stride],
            [self.padding],
            [1],
            1,
        );
        (out.narrow(1, 0, c_out), out.narrow(1, c_out, c_out))
    }

    /// `x⁺(w⁺ᵀsa + w⁻ᵀsb) + x⁻(w⁻ᵀsa + w⁺ᵀsb)` with two ordinary transposed
    /// convolutions.
    fn two_sided(&self, xs: &Tensor, sa: &Tensor, sb: &Tensor) -> Tensor {
        let u = self.transpose(&(sa + sb), &self.ws, xs);
        let v = self.transpose(&(sa - sb), &self.abs_ws, xs);
        (xs * u + xs.abs() * v) * 0.5
    }

    /// The same sum term by term, as one transposed convolution over stacked channels.
    fn four_term(&self, xs: &Tensor, sa: &Tensor, sb: &Tensor) -> Tensor {
        let c_in = self.ws.size()[1];
        let grads = self.transpose(&Tensor::cat(&[sa, sb], 1), &self.stacked_ws, xs);
        xs.clamp_min(0.0) * grads.narrow(1, 0, c_in)
            + xs.clamp_max(0.0) * grads.narrow(1, c_in, c_in)
    }

    /// The gradient of this convolution's geometry with weights `ws`, shaped like `like`.
    fn transpose(&self, signal: &Tensor, ws: &Tensor, like: &Tensor) -> Tensor {
        let (size_out, size_in) = (signal.size(), like.size());
        let k = ws.size()[2];
        let padding =
            |d: usize| size_in[d] - ((size_out[d] - 1) * self.stride - 2 * self.padding + k);
        signal.conv_transpose2d(
            ws,
            None::<Tensor>,
            [self.stride],
            [self.padding],
            [padding(2), padding(3)],
            1,
            [1],
        )
    }
}

/// A fully connected layer `z = x wᵀ + b`.
#[derive(Debug)]
pub struct Linear {
    /// Weights [C_out, C_in].
    pub ws: Tensor,
    /// Bias [C_out].
    pub bs: Tensor,
}

impl Linear {
    /// [N, C_in] -> [N, C_out].
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.ws, Some(&self.bs))
    }

    /// LRP-ε relevance at the input given the output `zs` and its relevance `rs`.
    pub fn relevance_epsilon(&self, epsilon: f64, xs: &Tensor, zs: &Tensor, rs: &Tensor) -> Tensor {
        let s = rs / stabilise(zs, epsilon);
        xs * s.matmul(&self.ws)
    }
}

/// `z + ε·sign(z)`, with the sign of zero taken as `+1`.
pub fn stabilise(zs: &Tensor, epsilon: f64) -> Tensor {
    let sign = zs.sign() + zs.eq(0.0).to_kind(zs.kind());
    zs + sign * epsilon
}

/// Relevance of the summands of `s = Σ parts`, each in proportion to its value.
pub fn sum_relevance(parts: &[&Tensor], rs: &Tensor) -> Vec<Tensor> {
    let total = parts.iter().skip(1).fold(parts[0].shallow_clone(), |acc, part| acc + *part);
    let s = rs / stabilise(&total, STABILISER);
    parts.iter().map(|part| *part * &s).collect()
}

/// Relevance at the input [N, C, H, W] of a global average pool, in proportion to the
/// values, given the pooled output [N, C] and its relevance [N, C].
pub fn global_avg_pool_relevance(xs: &Tensor, pooled: &Tensor, rs: &Tensor) -> Tensor {
    let size = xs.size();
    let area = (size[2] * size[3]) as f64;
    let s = (rs / stabilise(pooled, STABILISER) / area).view([size[0], size[1], 1, 1]);
    xs * s
}

/// `[x⁺; x⁻]` stacked along channels.
fn split_signs(xs: &Tensor) -> Tensor {
    Tensor::cat(&[xs.clamp_min(0.0), xs.clamp_max(0.0)], 1)
}
