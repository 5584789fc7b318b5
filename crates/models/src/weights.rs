//! Model weights as safetensors state dicts with torchvision names.
//!
//! Loading checks the whole file against the model before copying anything, so one error
//! lists every missing, unexpected and mis-shaped tensor. torchvision's `num_batches_tracked`
//! buffers are accepted and ignored (a momentum batch norm never reads them). Saving writes
//! parameters and batch-norm running statistics as f32 in name order through our own
//! deterministic safetensors writer, plus `num_batches_tracked` (i64 scalar, always 0) so
//! that PyTorch's strict `load_state_dict` accepts the file.

use std::collections::BTreeMap;
use std::path::Path;

use exmap_artefact::{DType, TensorFile, TensorWriter};
use tch::{nn, Kind, Tensor};

use crate::ModelError;

/// Choices for [`load_weights`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Keep the freshly initialised `fc` when the file's class count differs (fine-tuning
    /// ImageNet weights on a two-class task); otherwise that is a mismatch.
    pub replace_fc_if_classes_differ: bool,
}

/// What [`load_weights`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors copied into the variable store.
    pub loaded: usize,
    /// Whether `fc.weight` and `fc.bias` were left at their initial values.
    pub replaced_fc: bool,
}

/// The suffix of batch-norm counters that we accept on load and never use.
const BATCH_COUNTER: &str = "num_batches_tracked";

/// Every variable of `vs` by name, in name order.
pub fn state_dict(vs: &nn::VarStore) -> BTreeMap<String, Tensor> {
    vs.variables().into_iter().collect()
}

/// Loads a safetensors state dict with torchvision names into `vs`.
pub fn load_weights(
    vs: &mut nn::VarStore,
    path: &Path,
    options: LoadOptions,
) -> Result<LoadReport, ModelError> {
    let file = TensorFile::open(path)?;
    let variables = state_dict(vs);

    let replaced_fc = options.replace_fc_if_classes_differ && fc_classes_differ(&file, &variables);
    if replaced_fc {
        tracing::info!(path = %path.display(), "class count differs: `fc` keeps its initial weights");
    }
    let skipped = |name: &str| replaced_fc && (name == "fc.weight" || name == "fc.bias");

    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for (name, variable) in &variables {
        if skipped(name) {
            continue;
        }
        if !file.contains(name) {
            problems.push(format!("missing `{name}`"));
            continue;
        }
        let (dtype, shape) = file.info(name)?;
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        if shape != variable.size() {
            problems.push(format!(
                "`{name}` has shape {shape:?} where the model has {:?}",
                variable.size()
            ));
            continue;
        }
        let kind = match dtype {
            DType::F32 => Kind::Float,
            DType::F64 => Kind::Double,
            other => {
                problems.push(format!("`{name}` has dtype {} where F32 is expected", other.name()));
                continue;
            }
        };
        sources.push((variable, file.bytes(name)?, shape, kind));
    }
    for name in file.names() {
        if !variables.contains_key(&name) && !name.ends_with(BATCH_COUNTER) && !skipped(&name) {
            problems.push(format!("unexpected `{name}`"));
        }
    }
    if !problems.is_empty() {
        return Err(ModelError::Mismatch { path: path.to_path_buf(), problems });
    }

    tch::no_grad(|| {
        for (variable, bytes, shape, kind) in &sources {
            let value = Tensor::from_data_size(bytes, shape, *kind);
            let mut target = variable.shallow_clone();
            target.copy_(&value.to_kind(Kind::Float).to_device(target.device()));
        }
    });
    Ok(LoadReport { loaded: sources.len(), replaced_fc })
}

/// Writes the state dict of `vs` (parameters and batch-norm running statistics, f32, name
/// order) with `metadata` to `path`. Equal weights give equal bytes.
pub fn save_weights(
    vs: &nn::VarStore,
    path: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<(), ModelError> {
    let mut writer = TensorWriter::new();
    for (name, variable) in state_dict(vs) {
        let value = variable.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float);
        let shape: Vec<usize> = value.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(&value.contiguous().view(-1))
            .map_err(|source| ModelError::Torch { path: path.to_path_buf(), source })?;
        if let Some(prefix) = name.strip_suffix(".running_mean") {
            let counter = exmap_artefact::Tensor::from_i64(vec![], &[0]);
            writer.add(format!("{prefix}.{BATCH_COUNTER}"), counter);
        }
        writer.add(name, exmap_artefact::Tensor::from_f32(shape, &values));
    }
    for (key, value) in metadata {
        writer.metadata(key.clone(), value.clone());
    }
    writer.write(path)?;
    Ok(())
}

/// Whether the file's `fc` has another number of classes over the same feature width.
fn fc_classes_differ(file: &TensorFile, variables: &BTreeMap<String, Tensor>) -> bool {
    let (Ok((_, file_shape)), Some(model_fc)) =
        (file.info("fc.weight"), variables.get("fc.weight"))
    else {
        return false;
    };
    let model_shape = model_fc.size();
    file_shape.len() == 2
        && file_shape[1] as i64 == model_shape[1]
        && file_shape[0] as i64 != model_shape[0]
}
