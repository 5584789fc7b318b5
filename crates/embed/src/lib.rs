//! The `embed` stage: penultimate features and logits of a trained model on chosen splits.
//!
//! Each split's images stream from the memory-mapped `images` artefact in batches, go
//! through the evaluation transform recorded in the model artefact, and through the network
//! in eval mode without gradients. Rows keep manifest order; each split also records its
//! manifest rows so that nothing downstream joins by position alone.

use exmap_artefact::{read_table, Tensor as Stored, TensorWriter};
use exmap_models::{load_model_artefact, ImageSource, ModelError};
use exmap_stage::{types, Device, Port, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Parameters of the `embed` stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedParams {
    /// Manifest splits to embed, each written as `<split>.features`, `.logits`, `.rows`.
    pub splits: Vec<String>,
    pub batch_size: usize,
}

impl Default for EmbedParams {
    fn default() -> Self {
        Self { splits: vec!["val".into(), "test".into()], batch_size: 256 }
    }
}

/// Computes penultimate features and logits (kind `embed`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Embed;

impl Stage for Embed {
    type Params = EmbedParams;

    fn kind(&self) -> &'static str {
        "embed"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "penultimate features and logits of a trained model on chosen splits"
    }

    fn inputs(&self, _params: &EmbedParams) -> Vec<Port> {
        vec![
            Port::required("model", types::MODEL),
            Port::required("manifest", types::MANIFEST),
            Port::required("images", types::IMAGES),
        ]
    }

    fn outputs(&self, _params: &EmbedParams) -> Vec<Port> {
        vec![Port::required("embeddings", types::EMBEDDINGS)]
    }

    fn validate(&self, params: &EmbedParams) -> Result<(), String> {
        if params.batch_size == 0 {
            return Err("`batch_size` must be at least 1".into());
        }
        if params.splits.is_empty() {
            return Err("`splits` must name at least one split".into());
        }
        for (i, split) in params.splits.iter().enumerate() {
            if !["train", "val", "test"].contains(&split.as_str()) {
                return Err(format!("`splits` entry `{split}` is not train, val or test"));
            }
            if params.splits[..i].contains(split) {
                return Err(format!("`splits` names `{split}` twice"));
            }
        }
        Ok(())
    }

    fn run(&self, params: &EmbedParams, ctx: &StageContext) -> Result<(), StageError> {
        self.validate(params).map_err(StageError::Params)?;
        let device = torch_device(ctx.device)?;
        tch::set_num_threads(ctx.threads.max(1) as i32);

        let model_path = ctx.input("model")?;
        let (_vs, model, info) = load_model_artefact(model_path, device).map_err(model_error)?;
        let images = ImageSource::open(ctx.input("images")?).map_err(model_error)?;
        let manifest = ctx.input("manifest")?;
        let splits = read_table(manifest)?.str("split")?;
        if splits.len() != images.len() {
            return Err(StageError::data(format!(
                "`{}` has {} rows but `{}` holds {} images",
                manifest.display(),
                splits.len(),
                images.path().display(),
                images.len()
            )));
        }

        let mut writer = TensorWriter::new();
        for split in &params.splits {
            let rows: Vec<usize> = (0..splits.len()).filter(|&i| splits[i] == *split).collect();
            if rows.is_empty() {
                tracing::warn!(split, "split has no rows: writing empty embeddings");
            }
            let (features, logits) = tch::no_grad(|| {
                let mut features = Vec::new();
                let mut logits = Vec::new();
                for (done, chunk) in rows.chunks(params.batch_size).enumerate() {
                    let xs = info.eval_transform(&images.batch(chunk)).to_device(device);
                    let f = model.features_t(&xs, false);
                    logits.push(f.apply(&model.fc).to_device(tch::Device::Cpu));
                    features.push(f.to_device(tch::Device::Cpu));
                    let done = ((done + 1) * params.batch_size).min(rows.len());
                    ctx.progress(split, done as u64, rows.len() as u64);
                }
                (features, logits)
            });
            let dim = model.feature_dim() as usize;
            let classes = info.config.num_classes as usize;
            writer.add(format!("{split}.features"), stored(&features, rows.len(), dim)?);
            writer.add(format!("{split}.logits"), stored(&logits, rows.len(), classes)?);
            let row_ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            writer.add(format!("{split}.rows"), Stored::from_i64(vec![rows.len()], &row_ids));
            tracing::info!(split, rows = rows.len(), dim, "embedded");
        }
        writer.write(ctx.output("embeddings")?)?;
        Ok(())
    }
}

/// Concatenates f32 batches into one stored [n, width] tensor.
fn stored(batches: &[Tensor], n: usize, width: usize) -> Result<Stored, StageError> {
    let values: Vec<f32> = if batches.is_empty() {
        Vec::new()
    } else {
        Vec::<f32>::try_from(&Tensor::cat(batches, 0).contiguous().view(-1))
            .map_err(|e| StageError::compute(format!("failed to read back embeddings: {e}")))?
    };
    Ok(Stored::from_f32(vec![n, width], &values))
}

fn torch_device(device: Device) -> Result<tch::Device, StageError> {
    match device {
        Device::Cpu => Ok(tch::Device::Cpu),
        Device::Cuda(index) => {
            let available = if tch::Cuda::is_available() { tch::Cuda::device_count() } else { 0 };
            if (index as i64) < available {
                Ok(tch::Device::Cuda(index))
            } else {
                Err(StageError::Params(format!(
                    "device `cuda:{index}` was asked for but libtorch sees {available} CUDA \
                     device(s); use the CPU or a CUDA build of libtorch"
                )))
            }
        }
    }
}

fn model_error(error: ModelError) -> StageError {
    match error {
        ModelError::Artefact(e) => StageError::Artefact(e),
        other => StageError::data(format!("{other}")),
    }
}
