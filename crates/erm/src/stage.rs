//! The `erm` stage: ports, device and thread set-up, and the two output artefacts.

use exmap_artefact::{write_table, Table};
use exmap_models::{
    load_weights, save_weights, ImageSource, LoadOptions, ModelInfo, ResNet, ResNetConfig,
};
use exmap_stage::{types, Device, Port, Stage, StageContext, StageError};
use tch::nn;

use crate::train::{train, Outcome};
use crate::{data, ErmParams};

/// Trains a ResNet classifier on the training split (kind `erm`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Erm;

impl Stage for Erm {
    type Params = ErmParams;

    fn kind(&self) -> &'static str {
        "erm"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "train a ResNet classifier with class labels only (SGD, best validation accuracy kept)"
    }

    fn inputs(&self, _params: &ErmParams) -> Vec<Port> {
        vec![Port::required("manifest", types::MANIFEST), Port::required("images", types::IMAGES)]
    }

    fn outputs(&self, _params: &ErmParams) -> Vec<Port> {
        vec![Port::required("model", types::MODEL), Port::required("log", types::TRAINING_LOG)]
    }

    fn validate(&self, params: &ErmParams) -> Result<(), String> {
        params.check()
    }

    fn external_inputs(&self, params: &ErmParams) -> Vec<std::path::PathBuf> {
        params.pretrained.iter().cloned().collect()
    }

    fn run(&self, params: &ErmParams, ctx: &StageContext) -> Result<(), StageError> {
        params.check().map_err(StageError::Params)?;
        let device = torch_device(ctx.device)?;
        tch::set_num_threads(ctx.threads.max(1) as i32);

        let images = ImageSource::open(ctx.input("images")?).map_err(model_error)?;
        let data = data::load(ctx.input("manifest")?, &images)?;
        let (mean, std) = params.normalise.channels();
        let config =
            ResNetConfig { arch: params.arch, stem: params.stem, num_classes: data.num_classes };
        let info = ModelInfo { config, mean, std, resize: params.resize, crop: params.crop };

        let mut vs = nn::VarStore::new(device);
        let model = ResNet::new(&vs.root(), config);
        crate::init::initialise(&vs, ctx.seed);
        if let Some(path) = &params.pretrained {
            let options = LoadOptions { replace_fc_if_classes_differ: true };
            let report = load_weights(&mut vs, path, options).map_err(model_error)?;
            tracing::info!(path = %path.display(), loaded = report.loaded, replaced_fc = report.replaced_fc, "pretrained weights loaded");
        }
        tracing::info!(
            train = data.train.rows.len(),
            val = data.val.rows.len(),
            classes = data.num_classes,
            ?device,
            "erm training"
        );

        let outcome = train(params, ctx, &data, &images, &vs, &model, &info)?;

        let mut metadata = info.to_metadata();
        metadata.insert("best_epoch".into(), outcome.best_epoch.to_string());
        save_weights(&vs, ctx.output("model")?, &metadata).map_err(model_error)?;
        write_table(ctx.output("log")?, &log_table(&outcome, data.num_groups))?;
        Ok(())
    }
}

/// Maps the context's device to libtorch's, refusing CUDA where libtorch has none.
pub(crate) fn torch_device(device: Device) -> Result<tch::Device, StageError> {
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

fn model_error(error: exmap_models::ModelError) -> StageError {
    match error {
        exmap_models::ModelError::Artefact(e) => StageError::Artefact(e),
        other => StageError::data(other.to_string()),
    }
}

/// One row per epoch and split (`train`, then `val`).
fn log_table(outcome: &Outcome, num_groups: i64) -> Table {
    let mut epoch = Vec::new();
    let mut split = Vec::new();
    let mut loss = Vec::new();
    let mut accuracy = Vec::new();
    let mut groups = vec![Vec::new(); num_groups as usize];
    for (index, record) in outcome.epochs.iter().enumerate() {
        for (name, metrics) in [("train", &record.train), ("val", &record.val)] {
            epoch.push(index as i64);
            split.push(name);
            loss.push(metrics.loss);
            accuracy.push(metrics.accuracy);
            for (column, value) in groups.iter_mut().zip(&metrics.group_accuracy) {
                column.push(*value);
            }
        }
    }
    let mut builder = Table::builder()
        .i64("epoch", epoch)
        .str("split", &split)
        .f64("loss", loss)
        .f64("accuracy", accuracy);
    for (g, column) in groups.into_iter().enumerate() {
        builder = builder.f64(&format!("group_{g}_accuracy"), column);
    }
    builder.build()
}
