//! The body of the `explain` stage: read the split, explain it batch by batch, write the
//! heatmaps artefact.

use std::collections::BTreeMap;
use std::path::Path;

use exmap_artefact::{read_table, DType, TensorFile, TensorStreamWriter};
use exmap_models::{load_model_artefact, ModelInfo, ResNet};
use exmap_stage::{Device, StageContext, StageError};
use tch::{Kind, Tensor};
use tracing::info;

use crate::gradient::{self, Baseline};
use crate::lrp::LrpResNet;
use crate::stage::{BaselineName, ExplainParams, Method, Target};

/// The samples of one split, in manifest order.
struct Split {
    rows: Vec<i64>,
    ids: Vec<String>,
    labels: Vec<i64>,
}

/// The u8 image tensor of an `images` artefact, read batch by batch.
struct Images {
    file: TensorFile,
    /// [N, 3, H, W].
    shape: Vec<i64>,
}

/// Everything one batch needs to become heatmaps.
struct Explainer<'a> {
    params: &'a ExplainParams,
    model: &'a ResNet,
    info: &'a ModelInfo,
    lrp: Option<LrpResNet>,
    baseline: Baseline,
}

pub(crate) fn explain_split(params: &ExplainParams, ctx: &StageContext) -> Result<(), StageError> {
    let device = match ctx.device {
        Device::Cpu => tch::Device::Cpu,
        Device::Cuda(index) => tch::Device::Cuda(index),
    };
    let model_path = ctx.input("model")?;
    let (_vs, model, info) = load_model_artefact(model_path, device)
        .map_err(|e| StageError::data(format!("failed to load model: {e}")))?;
    if params.method == Method::Gradcam && !model.layer_names().contains(&params.layer) {
        return Err(StageError::Params(format!(
            "unknown GradCAM layer `{}`; the model has: {}",
            params.layer,
            model.layer_names().join(", ")
        )));
    }
    let split = read_split(ctx.input("manifest")?, &params.split)?;
    let images = Images::open(ctx.input("images")?)?;
    images.check_rows(&split)?;
    info!(stage = %ctx.stage_id, method = ?params.method, samples = split.rows.len(), "explaining");

    let baseline = match (params.method, params.baseline) {
        (Method::IntegratedGradients, BaselineName::Mean) => {
            Baseline::Image(mean_image(&images, &split, &info, params.batch_size, device)?)
        }
        _ => Baseline::Zero,
    };
    let lrp = (params.method == Method::Lrp).then(|| LrpResNet::new(&model));
    let explainer = Explainer { params, model: &model, info: &info, lrp, baseline };

    let total = split.rows.len();
    let side = if params.size > 0 { params.size } else { images.shape[2] };
    let channels = match (params.method, params.channels) {
        (Method::Gradcam, _) => "single",
        (_, crate::heatmap::Channels::Signed3) => "signed3",
        (_, crate::heatmap::Channels::Sum) => "sum",
    };
    let metadata: BTreeMap<String, String> = [
        ("method", method_name(params.method).to_string()),
        ("channels", channels.to_string()),
        ("size", side.to_string()),
        ("split", params.split.clone()),
        ("target", format!("{:?}", params.target).to_lowercase()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // Each batch's heatmaps go to the file as soon as they are checked, so memory holds one
    // batch, not the split; a failure removes the partial file.
    let out = ctx.output("heatmaps")?;
    let written = (|| -> Result<(), StageError> {
        let mut writer: Option<TensorStreamWriter> = None;
        let mut preds = Vec::with_capacity(total);
        for start in (0..total).step_by(params.batch_size as usize) {
            let end = (start + params.batch_size as usize).min(total);
            let xs = images.batch(&split.rows[start..end])?.to(device);
            let labels = Tensor::from_slice(&split.labels[start..end]).to(device);
            let (maps, pred) = explainer.explain(&xs, &labels);
            let maps = maps.to(tch::Device::Cpu).contiguous();
            check_finite(&maps, &split.ids[start..end])?;
            let writer = match &mut writer {
                Some(writer) => writer,
                None => {
                    let dim = maps.size()[1] as usize;
                    let tensors = [
                        ("heatmaps", DType::F32, &[total, dim][..]),
                        ("pred", DType::I64, &[total][..]),
                        ("rows", DType::I64, &[total][..]),
                    ];
                    writer.insert(TensorStreamWriter::create_many(out, &tensors, &metadata)?)
                }
            };
            let values = Vec::<f32>::try_from(&maps.flatten(0, -1)).map_err(compute)?;
            writer.write_chunk(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())?;
            preds.extend(Vec::<i64>::try_from(&pred.to(tch::Device::Cpu)).map_err(compute)?);
            ctx.progress("explain", end as u64, total as u64);
        }
        let mut writer = writer
            .ok_or_else(|| StageError::data(format!("split `{}` has no samples", params.split)))?;
        for values in [&preds, &split.rows] {
            writer.write_chunk(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>())?;
        }
        writer.finish()?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(out);
    }
    written
}

impl Explainer<'_> {
    /// Heatmaps [B, D] and predictions [B] for u8 images [B, 3, H, W].
    fn explain(&self, images: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        let xs = self.info.eval_transform(images);
        let post = self.params.post_process();
        if let Some(lrp) = &self.lrp {
            let targets = (self.params.target == Target::True).then_some(labels);
            let relevance = lrp.relevance(&self.params.composite(), &xs, targets);
            return (post.apply(&relevance.input), relevance.logits.argmax(1, false));
        }
        let pred = tch::no_grad(|| self.model.forward_t(&xs, false)).argmax(1, false);
        let targets = match self.params.target {
            Target::Predicted => &pred,
            Target::True => labels,
        };
        let attribution = match self.params.method {
            Method::Gradcam => gradient::gradcam(self.model, &xs, targets, &self.params.layer)
                .expect("the layer was checked against the model"),
            Method::InputXGradient => gradient::input_x_gradient(self.model, &xs, targets),
            Method::Saliency => gradient::saliency(self.model, &xs, targets),
            Method::IntegratedGradients => gradient::integrated_gradients(
                self.model,
                &xs,
                targets,
                &self.baseline,
                self.params.steps,
            ),
            Method::Lrp => unreachable!("LRP is handled above"),
        };
        (tch::no_grad(|| post.apply(&attribution)), pred)
    }
}

impl Images {
    fn open(path: &Path) -> Result<Self, StageError> {
        let file = TensorFile::open(path)?;
        let shape = file.expect("images", DType::U8, Some(4))?;
        if shape[1] != 3 {
            return Err(StageError::data(format!(
                "`{}`: tensor `images` has shape {shape:?} where [N, 3, H, W] is expected",
                path.display()
            )));
        }
        let shape = shape.iter().map(|&d| d as i64).collect();
        Ok(Self { file, shape })
    }

    fn check_rows(&self, split: &Split) -> Result<(), StageError> {
        match split.rows.iter().zip(&split.ids).find(|(row, _)| **row < 0 || **row >= self.shape[0])
        {
            Some((row, id)) => Err(StageError::data(format!(
                "`{}`: sample `{id}` (manifest row {row}) has no image among {}",
                self.file.path().display(),
                self.shape[0]
            ))),
            None => Ok(()),
        }
    }

    /// The u8 images of manifest `rows`: [B, 3, H, W].
    fn batch(&self, rows: &[i64]) -> Result<Tensor, StageError> {
        let bytes = self.file.bytes("images")?;
        let per_image = (self.shape[1] * self.shape[2] * self.shape[3]) as usize;
        let mut batch = Vec::with_capacity(rows.len() * per_image);
        for &row in rows {
            let start = row as usize * per_image;
            batch.extend_from_slice(&bytes[start..start + per_image]);
        }
        let shape = [rows.len() as i64, self.shape[1], self.shape[2], self.shape[3]];
        Ok(Tensor::from_slice(&batch).view(shape))
    }
}

fn read_split(path: &Path, split_name: &str) -> Result<Split, StageError> {
    let table = read_table(path)?;
    let (rows, ids) = (table.i64("row")?, table.str("id")?);
    let (labels, splits) = (table.i64("y")?, table.str("split")?);
    let mut split = Split { rows: Vec::new(), ids: Vec::new(), labels: Vec::new() };
    for i in 0..rows.len() {
        if splits[i] == split_name {
            split.rows.push(rows[i]);
            split.ids.push(ids[i].clone());
            split.labels.push(labels[i]);
        }
    }
    if split.rows.is_empty() {
        return Err(StageError::data(format!(
            "`{}`: no sample has split `{split_name}`",
            path.display()
        )));
    }
    Ok(split)
}

/// The mean transformed image of the split [3, H', W'].
fn mean_image(
    images: &Images,
    split: &Split,
    info: &ModelInfo,
    batch_size: i64,
    device: tch::Device,
) -> Result<Tensor, StageError> {
    let mut sum: Option<Tensor> = None;
    for rows in split.rows.chunks(batch_size as usize) {
        let xs = info.eval_transform(&images.batch(rows)?.to(device));
        let part = xs.to_kind(Kind::Double).sum_dim_intlist(0, false, Kind::Double);
        sum = Some(match sum {
            Some(sum) => sum + part,
            None => part,
        });
    }
    let sum = sum.expect("the split is not empty");
    Ok((sum / split.rows.len() as f64).to_kind(Kind::Float))
}

fn check_finite(maps: &Tensor, ids: &[String]) -> Result<(), StageError> {
    let finite = Vec::<bool>::try_from(&maps.isfinite().all_dim(1, false)).map_err(compute)?;
    match finite.iter().position(|ok| !ok) {
        Some(index) => Err(StageError::compute(format!(
            "heatmap of sample `{}` has NaN or infinite values",
            ids[index]
        ))),
        None => Ok(()),
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Lrp => "lrp",
        Method::Gradcam => "gradcam",
        Method::InputXGradient => "input_x_gradient",
        Method::Saliency => "saliency",
        Method::IntegratedGradients => "integrated_gradients",
    }
}

fn compute(e: tch::TchError) -> StageError {
    StageError::compute(format!("libtorch: {e}"))
}
