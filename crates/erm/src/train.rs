//! The training loop: epochs of shuffled mini-batches, a validation pass after each epoch,
//! and the best-validation-accuracy checkpoint kept in memory.

use std::f64::consts::PI;

use exmap_models::{ImageSource, ModelInfo, ResNet};
use exmap_stage::{StageContext, StageError};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::augment::train_batch;
use crate::data::{Dataset, Split};
use crate::{ErmParams, Schedule};

/// Loss and accuracies of one split after one epoch.
#[derive(Clone, Debug)]
pub(crate) struct SplitMetrics {
    pub loss: f64,
    pub accuracy: f64,
    /// Per true group; NaN where the split has no member of the group.
    pub group_accuracy: Vec<f64>,
}

/// One epoch's training and validation metrics.
#[derive(Clone, Debug)]
pub(crate) struct EpochRecord {
    pub train: SplitMetrics,
    pub val: SplitMetrics,
}

/// What training produced besides the weights left in the variable store.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub epochs: Vec<EpochRecord>,
    pub best_epoch: usize,
}

/// Counts towards [`SplitMetrics`].
struct Tally {
    loss_sum: f64,
    correct: Vec<u64>,
    total: Vec<u64>,
}

impl Tally {
    fn new(num_groups: i64) -> Self {
        let n = num_groups as usize;
        Self { loss_sum: 0.0, correct: vec![0; n], total: vec![0; n] }
    }

    fn add(&mut self, mean_loss: f64, predictions: &[i64], labels: &[i64], groups: &[i64]) {
        self.loss_sum += mean_loss * labels.len() as f64;
        for ((p, y), g) in predictions.iter().zip(labels).zip(groups) {
            self.total[*g as usize] += 1;
            self.correct[*g as usize] += u64::from(p == y);
        }
    }

    fn finish(&self) -> SplitMetrics {
        let total: u64 = self.total.iter().sum();
        let correct: u64 = self.correct.iter().sum();
        let group_accuracy = self
            .correct
            .iter()
            .zip(&self.total)
            .map(|(&c, &t)| if t == 0 { f64::NAN } else { c as f64 / t as f64 })
            .collect();
        SplitMetrics {
            loss: self.loss_sum / total.max(1) as f64,
            accuracy: correct as f64 / total.max(1) as f64,
            group_accuracy,
        }
    }
}

/// Trains `model` (whose variables live in `vs`) and leaves the best checkpoint in `vs`.
pub(crate) fn train(
    params: &ErmParams,
    ctx: &StageContext,
    data: &Dataset,
    images: &ImageSource,
    vs: &nn::VarStore,
    model: &ResNet,
    info: &ModelInfo,
) -> Result<Outcome, StageError> {
    let device = vs.device();
    let mut optimiser = nn::Sgd {
        momentum: params.momentum,
        dampening: 0.0,
        wd: params.weight_decay,
        nesterov: false,
    }
    .build(vs, params.lr)
    .map_err(|e| StageError::compute(format!("failed to build the SGD optimiser: {e}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    let mut order = data.train.rows.clone();
    let batches_per_epoch = order.len().div_ceil(params.batch_size);
    let total_batches = (batches_per_epoch * params.epochs) as u64;

    let mut epochs = Vec::with_capacity(params.epochs);
    let mut best: Option<BestCheckpoint> = None;
    for epoch in 0..params.epochs {
        optimiser.set_lr(learning_rate(params, epoch));
        order.shuffle(&mut rng);

        let mut tally = Tally::new(data.num_groups);
        for (batch, rows) in order.chunks(params.batch_size).enumerate() {
            let labels: Vec<i64> = rows.iter().map(|&r| label_of(&data.train, r).0).collect();
            let groups: Vec<i64> = rows.iter().map(|&r| label_of(&data.train, r).1).collect();
            let xs = train_batch(
                &images.batch(rows),
                info,
                params.random_resized_crop.as_ref(),
                params.hflip,
                &mut rng,
            )
            .to_device(device);
            let ys = Tensor::from_slice(&labels).to_device(device);

            let logits = model.forward_t(&xs, true);
            let loss = logits.cross_entropy_for_logits(&ys);
            let loss_value = loss.double_value(&[]);
            if !loss_value.is_finite() {
                return Err(StageError::compute(format!(
                    "loss is {loss_value} at epoch {epoch} batch {batch}: training diverged, \
                     nothing is kept (try a lower `lr`)"
                )));
            }
            optimiser.backward_step(&loss);

            tally.add(loss_value, &predictions(&logits), &labels, &groups);
            ctx.progress("train", (epoch * batches_per_epoch + batch + 1) as u64, total_batches);
        }

        let record = EpochRecord {
            train: tally.finish(),
            val: evaluate(params, data, &data.val, images, model, info, device),
        };
        tracing::info!(
            epoch,
            train_loss = record.train.loss,
            train_accuracy = record.train.accuracy,
            val_loss = record.val.loss,
            val_accuracy = record.val.accuracy,
            "epoch done"
        );
        // The first epoch reaching the highest accuracy wins, as in the reference.
        if best.as_ref().is_none_or(|(_, accuracy, _)| record.val.accuracy > *accuracy) {
            best = Some((epoch, record.val.accuracy, snapshot(vs)));
        }
        epochs.push(record);
    }

    let (best_epoch, _, weights) = best.expect("at least one epoch");
    tch::no_grad(|| {
        for (target, value) in &weights {
            target.shallow_clone().copy_(value);
        }
    });
    Ok(Outcome { epochs, best_epoch })
}

/// Eval-mode loss and accuracy over `split`, batched, without gradients.
/// The best epoch so far: its index, validation accuracy and a copy of every variable.
type BestCheckpoint = (usize, f64, Vec<(Tensor, Tensor)>);

fn evaluate(
    params: &ErmParams,
    data: &Dataset,
    split: &Split,
    images: &ImageSource,
    model: &ResNet,
    info: &ModelInfo,
    device: Device,
) -> SplitMetrics {
    let mut tally = Tally::new(data.num_groups);
    tch::no_grad(|| {
        for start in (0..split.rows.len()).step_by(params.eval_batch_size) {
            let end = (start + params.eval_batch_size).min(split.rows.len());
            let xs = info.eval_transform(&images.batch(&split.rows[start..end])).to_device(device);
            let labels = &split.y[start..end];
            let logits = model.forward_t(&xs, false);
            let loss =
                logits.cross_entropy_for_logits(&Tensor::from_slice(labels).to_device(device));
            tally.add(
                loss.double_value(&[]),
                &predictions(&logits),
                labels,
                &split.group[start..end],
            );
        }
    });
    tally.finish()
}

/// The learning rate of `epoch` (0-based): PyTorch's `CosineAnnealingLR` with `T_max` =
/// epochs and no floor, stepped once per epoch.
fn learning_rate(params: &ErmParams, epoch: usize) -> f64 {
    match params.schedule {
        Schedule::Constant => params.lr,
        Schedule::Cosine => {
            params.lr * (1.0 + (PI * epoch as f64 / params.epochs as f64).cos()) / 2.0
        }
    }
}

fn predictions(logits: &Tensor) -> Vec<i64> {
    let predicted = logits.argmax(-1, false).to_device(Device::Cpu).to_kind(Kind::Int64);
    Vec::<i64>::try_from(&predicted).expect("int64 predictions")
}

/// The class and group of manifest row `row` within `split`.
fn label_of(split: &Split, row: usize) -> (i64, i64) {
    let index = split.rows.binary_search(&row).expect("row of this split");
    (split.y[index], split.group[index])
}

/// Pairs of (variable, detached copy) for every variable, batch-norm buffers included.
fn snapshot(vs: &nn::VarStore) -> Vec<(Tensor, Tensor)> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables
        .into_iter()
        .map(|(_, v)| {
            let copy = v.detach().copy();
            (v, copy)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_matches_pytorch_values() {
        // torch.optim.lr_scheduler.CosineAnnealingLR(T_max=4) from lr 0.1, per epoch:
        // 0.1, 0.085355, 0.05, 0.014645 (printed by PyTorch 2.13, rounded to 6 digits).
        let params = ErmParams { lr: 0.1, epochs: 4, ..ErmParams::default() };
        let expected = [0.1, 0.085355, 0.05, 0.014645];
        for (epoch, want) in expected.into_iter().enumerate() {
            let got = learning_rate(&params, epoch);
            assert!((got - want).abs() < 1e-6, "epoch {epoch}: {got} vs {want}");
        }
    }
}
