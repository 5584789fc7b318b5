//! The LRP rules on a tiny hand-built convolution stack, checked against a term-by-term
//! evaluation through autograd (each modified copy of the layer run and differentiated on
//! its own, as zennit's hooks do) and against relevance conservation.

use exmap_explain::rules::{self, Conv, ConvRule, Linear, STABILISER};
use tch::{Device, Kind, Tensor};

/// Relative tolerance between the fast rule and the term-by-term one (f64 throughout).
const TOLERANCE: f64 = 1e-9;

fn randn(shape: &[i64], seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}

/// The relevance one modified pass sends back: `x' · ∂(conv(x', w') + b')/∂x' · s`.
fn pass(conv: &Conv, x: &Tensor, ws: &Tensor, bs: &Tensor, s: &Tensor) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    let z = x.conv2d(ws, Some(bs), [conv.stride], [conv.padding], [1], 1);
    let grad = Tensor::run_backward(&[(z * s.detach()).sum(Kind::Double)], &[&x], false, false);
    x.detach() * &grads_first(grad)
}

fn grads_first(mut grads: Vec<Tensor>) -> Tensor {
    grads.remove(0)
}

/// Term-by-term evaluation of each rule, written from the rule definitions.
fn reference(conv: &Conv, rule: ConvRule, x: &Tensor, r: &Tensor) -> Tensor {
    let (xp, xn) = (x.clamp_min(0.0), x.clamp_max(0.0));
    let (wp, wn) = (conv.ws.clamp_min(0.0), conv.ws.clamp_max(0.0));
    let (bp, bn) = (conv.bs.clamp_min(0.0), conv.bs.clamp_max(0.0));
    let zero_b = conv.bs.zeros_like();
    let out = |x: &Tensor, w: &Tensor, b: &Tensor| {
        x.conv2d(w, Some(b), [conv.stride], [conv.padding], [1], 1)
    };
    let p = out(&xp, &wp, &bp) + out(&xn, &wn, &zero_b);
    let n = out(&xp, &wn, &bn) + out(&xn, &wp, &zero_b);
    let stab = |t: &Tensor| rules::stabilise(t, STABILISER);
    let (sa, sb) = match rule {
        ConvRule::Epsilon { epsilon } => {
            let s = r / rules::stabilise(&conv.forward(x), epsilon);
            (s.shallow_clone(), s)
        }
        ConvRule::SymmetricGamma { gamma } | ConvRule::Gamma { gamma } => {
            let up = match rule {
                ConvRule::Gamma { .. } => conv.forward(x).gt(0.0),
                _ => p.ge_tensor(&n.abs()),
            };
            let down = match rule {
                ConvRule::Gamma { .. } => conv.forward(x).lt(0.0),
                _ => up.logical_not(),
            };
            let (up, down) = (up.to_kind(Kind::Double), down.to_kind(Kind::Double));
            let s_up = &up * r / stab(&(&p * (1.0 + gamma) + &n));
            let s_down = &down * r / stab(&(&p + &n * (1.0 + gamma)));
            (&s_up * (1.0 + gamma) + &s_down, s_up + s_down * (1.0 + gamma))
        }
        ConvRule::AlphaBeta { alpha, beta } => (r / stab(&p) * alpha, r / stab(&n) * (-beta)),
        ConvRule::ZPlus => (r / stab(&p), r.zeros_like()),
    };
    pass(conv, &xp, &wp, &zero_b, &sa)
        + pass(conv, &xn, &wn, &zero_b, &sa)
        + pass(conv, &xp, &wn, &zero_b, &sb)
        + pass(conv, &xn, &wp, &zero_b, &sb)
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-30);
    (a - b).abs().max().double_value(&[]) / scale
}

fn check(rule: ConvRule, stride: i64, padding: i64, kernel: i64, hw: i64) {
    let conv =
        Conv::new(randn(&[5, 4, kernel, kernel], 1), Some(randn(&[5], 2) * 0.1), stride, padding);
    let x = randn(&[2, 4, hw, hw], 3);
    let z = conv.forward(&x);
    let r = randn(&z.size(), 4);
    let fast = conv.relevance(rule, &x, &z, &r);
    let slow = reference(&conv, rule, &x, &r);
    assert_eq!(fast.size(), x.size(), "{rule:?}");
    let diff = max_rel_diff(&fast, &slow);
    assert!(diff < TOLERANCE, "{rule:?} stride {stride} padding {padding}: rel diff {diff}");
}

#[test]
fn every_conv_rule_matches_its_term_by_term_definition() {
    let rules = [
        ConvRule::Epsilon { epsilon: 1e-6 },
        ConvRule::Epsilon { epsilon: 0.25 },
        ConvRule::Gamma { gamma: 0.25 },
        ConvRule::SymmetricGamma { gamma: 4.0 },
        ConvRule::AlphaBeta { alpha: 2.0, beta: 1.0 },
        ConvRule::AlphaBeta { alpha: 1.0, beta: 0.0 },
        ConvRule::ZPlus,
    ];
    // The geometries of ResNet: 3x3 s1 p1, 3x3 s2 p1, 1x1 s2 p0 and the 7x7 s2 p3 stem,
    // on odd and even sizes so that the transposed convolution's output padding matters.
    for rule in rules {
        for (stride, padding, kernel, hw) in
            [(1, 1, 3, 6), (2, 1, 3, 7), (2, 1, 3, 8), (2, 0, 1, 7), (2, 3, 7, 9), (2, 3, 7, 10)]
        {
            check(rule, stride, padding, kernel, hw);
        }
    }
}

#[test]
fn symmetric_gamma_equals_gamma_away_from_zero_outputs() {
    let conv = Conv::new(randn(&[6, 3, 3, 3], 5), Some(randn(&[6], 6)), 1, 1);
    let x = randn(&[1, 3, 5, 5], 7);
    let z = conv.forward(&x);
    let r = randn(&z.size(), 8);
    let a = conv.relevance(ConvRule::SymmetricGamma { gamma: 4.0 }, &x, &z, &r);
    let b = conv.relevance(ConvRule::Gamma { gamma: 4.0 }, &x, &z, &r);
    assert!(max_rel_diff(&a, &b) < 1e-12);
}

/// On a bias-free conv -> ReLU -> conv -> global average pool -> linear stack, LRP-ε with a
/// tiny ε conserves relevance: the input relevance sums to the target logit's relevance (1)
/// up to the stabiliser, and z⁺ on non-negative inputs does too.
#[test]
fn epsilon_lrp_conserves_relevance_on_a_bias_free_stack() {
    let zeros = |n: i64| Tensor::zeros([n], (Kind::Double, Device::Cpu));
    let conv1 = Conv::new(randn(&[8, 3, 3, 3], 11), None, 1, 1);
    let conv2 = Conv::new(randn(&[6, 8, 3, 3], 12), None, 2, 1);
    let fc = Linear { ws: randn(&[4, 6], 13), bs: zeros(4) };
    let x = randn(&[3, 3, 9, 9], 14);

    let z1 = conv1.forward(&x);
    let a1 = z1.relu();
    let z2 = conv2.forward(&a1);
    let a2 = z2.relu();
    let pooled = a2.mean_dim([2i64, 3].as_slice(), false, Kind::Double);
    let logits = fc.forward(&pooled);
    let target = logits.argmax(1, false);
    let r_out = target.one_hot(4).to_kind(Kind::Double);

    let eps = ConvRule::Epsilon { epsilon: 1e-9 };
    let r_pooled = fc.relevance_epsilon(1e-9, &pooled, &logits, &r_out);
    let r_a2 = rules::global_avg_pool_relevance(&a2, &pooled, &r_pooled);
    let r_a1 = conv2.relevance(eps, &a1, &z2, &r_a2);
    let r_x = conv1.relevance(eps, &x, &z1, &r_a1);

    for (name, r) in [("pooled", &r_pooled), ("layer 2 input", &r_a1), ("input", &r_x)] {
        let sums =
            Vec::<f64>::try_from(r.flatten(1, -1).sum_dim_intlist(1, false, Kind::Double)).unwrap();
        for (i, sum) in sums.iter().enumerate() {
            assert!((sum - 1.0).abs() < 1e-6, "{name} of sample {i} sums to {sum}");
        }
    }
}

#[test]
fn sum_relevance_shares_in_proportion() {
    let a = Tensor::from_slice(&[1.0f64, -2.0, 0.0]);
    let b = Tensor::from_slice(&[3.0f64, 1.0, 0.0]);
    let r = Tensor::from_slice(&[8.0f64, 2.0, 5.0]);
    let parts = rules::sum_relevance(&[&a, &b], &r);
    let got: Vec<Vec<f64>> = parts.iter().map(|p| Vec::try_from(p).unwrap()).collect();
    // 8 * (1/4, 3/4); 2 * (-2/-1, 1/-1); zero sum: nothing shared.
    let expected = [[2.0, 4.0, 0.0], [6.0, -2.0, 0.0]];
    for (g, e) in got.iter().zip(expected) {
        for (g, e) in g.iter().zip(e) {
            assert!((g - e).abs() < 1e-5, "{got:?}");
        }
    }
}
