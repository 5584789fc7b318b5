//! The `ingest` stage: one stage kind whose `format` parameter picks the reader.
//!
//! Every format ends in the same three artefacts: the manifest, the groups table and the
//! images tensor. Metadata and the presence of every image are checked before anything is
//! written; a failure while images are decoded removes what was written, so a failed stage
//! leaves no output behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use exmap_artefact::write_table;
use exmap_stage::{types, Port, Stage, StageContext, StageError};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::celeba::{read_celeba, CelebaOptions};
use crate::cmnist::{self, ColoredMnistSpec, MnistFiles};
use crate::{
    check_images_exist, finish_records, groups_table, load_image, manifest_table, read_metadata,
    resize, stream_images, synthetic, to_chw, Dialect, GroupNaming, IngestError, MetadataOptions,
    Record,
};

/// The dataset formats the stage reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    /// Built-in synthetic scenes generated from the seed (needs no data).
    #[default]
    Synthetic,
    /// `metadata.csv` in the Waterbirds dialect.
    Waterbirds,
    /// CelebA: the six-column `metadata.csv` or the original attribute and partition files.
    Celeba,
    /// `metadata.csv` with `img_filename`, `y`, `split` and `place`/`spurious`/`group`.
    Generic,
    /// Colored MNIST from MNIST IDX files.
    Cmnist,
}

/// Which CelebA files are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CelebaDialect {
    /// The six-column `metadata.csv` when the folder has one, the original files otherwise.
    #[default]
    Auto,
    /// `metadata.csv` in the Waterbirds dialect (y = target, place = spurious attribute).
    SixColumn,
    /// `list_attr_celeba.csv` and `list_eval_partition.csv`, directly or inside a `.zip`.
    Original,
}

/// Per-channel normalisation recorded in the images' metadata for consumers to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// ImageNet mean and standard deviation.
    Imagenet,
    /// Pixels divided by 255 only.
    None,
}

/// Parameters of the `ingest` stage. A format ignores the parameters of other formats; an
/// unset optional parameter takes the format's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestParams {
    pub format: DatasetFormat,
    /// The data folder: with `metadata.csv`, the CelebA files, or the MNIST IDX files.
    /// Unused by `synthetic`.
    pub root: Option<PathBuf>,
    /// Side of the stored square images; every image is resized to it (bilinear).
    /// Default 64, or 28 for `cmnist`.
    pub image_size: Option<u32>,
    /// The number of classes; labels must lie in `0..classes`.
    pub classes: i64,
    /// Default `imagenet`, or `none` for `cmnist`.
    pub normalisation: Option<Normalisation>,
    /// Synthetic and cmnist: samples per split (defaults 2000/600/600 for synthetic,
    /// 6000/2000/2000 for cmnist).
    pub n_train: Option<usize>,
    pub n_val: Option<usize>,
    pub n_test: Option<usize>,
    /// Synthetic: share of training images whose background agrees with their class.
    pub train_agreement: f64,
    /// Synthetic: share of validation and test images whose background agrees with the class.
    pub eval_agreement: f64,
    /// Synthetic: the validation split's share instead, when set (a validation split that
    /// keeps part of the training correlation, as CelebA's does).
    pub val_agreement: Option<f64>,
    /// Synthetic: probability that the object's colour comes from its class's palette.
    pub colour_cue: f64,
    /// Synthetic: also write the generated folder (metadata.csv and PNGs) here.
    pub export_dir: Option<PathBuf>,
    /// CelebA: which files to read.
    pub celeba_dialect: CelebaDialect,
    /// CelebA: the class attribute.
    pub target_attribute: String,
    /// CelebA: the spurious attribute.
    pub spurious_attribute: String,
    /// CelebA, original dialect: the image folder relative to `root`.
    pub images_dir: String,
    /// Cmnist: which IDX pair to read.
    pub files: MnistFiles,
    /// Cmnist: probability that an image carries its class's majority colour.
    pub correlation: f64,
}

impl Default for IngestParams {
    fn default() -> Self {
        let spec = synthetic::SyntheticSpec::default();
        Self {
            format: DatasetFormat::Synthetic,
            root: None,
            image_size: None,
            classes: 2,
            normalisation: None,
            n_train: None,
            n_val: None,
            n_test: None,
            train_agreement: spec.train_agreement,
            eval_agreement: spec.test_agreement,
            val_agreement: None,
            colour_cue: spec.colour_cue,
            export_dir: None,
            celeba_dialect: CelebaDialect::Auto,
            target_attribute: "Blond_Hair".into(),
            spurious_attribute: "Male".into(),
            images_dir: "img_align_celeba".into(),
            files: MnistFiles::T10k,
            correlation: 0.99,
        }
    }
}

impl IngestParams {
    /// The stored image side.
    pub fn size(&self) -> u32 {
        let native = if self.format == DatasetFormat::Cmnist { 28 } else { 64 };
        self.image_size.unwrap_or(native)
    }

    /// Samples per split for the generated formats.
    pub fn split_sizes(&self) -> [usize; 3] {
        let native = if self.format == DatasetFormat::Cmnist {
            [6000, 2000, 2000]
        } else {
            let spec = synthetic::SyntheticSpec::default();
            [spec.n_train, spec.n_val, spec.n_test]
        };
        [
            self.n_train.unwrap_or(native[0]),
            self.n_val.unwrap_or(native[1]),
            self.n_test.unwrap_or(native[2]),
        ]
    }

    fn normalisation(&self) -> Normalisation {
        let native = if self.format == DatasetFormat::Cmnist {
            Normalisation::None
        } else {
            Normalisation::Imagenet
        };
        self.normalisation.unwrap_or(native)
    }
}

/// The `ingest` stage.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestStage;

impl Stage for IngestStage {
    type Params = IngestParams;

    fn kind(&self) -> &'static str {
        "ingest"
    }

    fn code_fingerprint(&self) -> &'static str {
        env!("EXMAP_CODE_FINGERPRINT")
    }

    fn describe(&self) -> &'static str {
        "read a dataset (synthetic, waterbirds, celeba, generic, cmnist) into manifest, groups, images"
    }

    fn inputs(&self, _params: &IngestParams) -> Vec<Port> {
        Vec::new()
    }

    fn outputs(&self, _params: &IngestParams) -> Vec<Port> {
        vec![
            Port::required("manifest", types::MANIFEST),
            Port::required("groups", types::GROUPS),
            Port::required("images", types::IMAGES),
        ]
    }

    fn validate(&self, params: &IngestParams) -> Result<(), String> {
        if params.format != DatasetFormat::Synthetic && params.root.is_none() {
            return Err("parameter `root` is required for this format".into());
        }
        if let Some(root) = params.root.as_deref().filter(|r| !r.exists()) {
            if params.format != DatasetFormat::Synthetic {
                return Err(missing_dataset(params.format, root));
            }
        }
        if !(4..=2048).contains(&params.size()) {
            return Err(format!("`image_size` {} is outside 4..=2048", params.size()));
        }
        if params.classes < 2 {
            return Err(format!("`classes` {} is below 2", params.classes));
        }
        let binary = matches!(
            params.format,
            DatasetFormat::Synthetic | DatasetFormat::Celeba | DatasetFormat::Cmnist
        );
        if binary && params.classes != 2 {
            return Err(format!("`classes` must be 2 for this format, not {}", params.classes));
        }
        for (name, value) in [
            ("train_agreement", params.train_agreement),
            ("eval_agreement", params.eval_agreement),
            ("val_agreement", params.val_agreement.unwrap_or(params.eval_agreement)),
            ("colour_cue", params.colour_cue),
            ("correlation", params.correlation),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("`{name}` {value} is outside [0, 1]"));
            }
        }
        let generated = matches!(params.format, DatasetFormat::Synthetic | DatasetFormat::Cmnist);
        if generated && params.split_sizes().contains(&0) {
            return Err("`n_train`, `n_val` and `n_test` must be positive".into());
        }
        Ok(())
    }

    fn external_inputs(&self, params: &IngestParams) -> Vec<PathBuf> {
        match params.format {
            DatasetFormat::Synthetic => Vec::new(),
            _ => params.root.iter().cloned().collect(),
        }
    }

    fn run(&self, params: &IngestParams, ctx: &StageContext) -> Result<(), StageError> {
        self.validate(params).map_err(StageError::Params)?;
        let outputs = Outputs::of(ctx)?;
        let result = ingest(params, ctx, &outputs);
        if result.is_err() {
            outputs.remove();
        }
        result.map_err(StageError::from)
    }
}

/// The files the stage writes.
struct Outputs {
    manifest: PathBuf,
    groups: PathBuf,
    images: PathBuf,
}

impl Outputs {
    fn of(ctx: &StageContext) -> Result<Self, StageError> {
        Ok(Self {
            manifest: ctx.output("manifest")?.to_path_buf(),
            groups: ctx.output("groups")?.to_path_buf(),
            images: ctx.output("images")?.to_path_buf(),
        })
    }

    fn remove(&self) {
        for path in [&self.manifest, &self.groups, &self.images] {
            // A file that was never created is the expected case here.
            let _ = std::fs::remove_file(path);
        }
    }
}

fn ingest(params: &IngestParams, ctx: &StageContext, outputs: &Outputs) -> Result<(), IngestError> {
    let size = params.size();
    let root = match params.format {
        DatasetFormat::Synthetic => generate_synthetic(params, ctx)?,
        _ => params.root.clone().unwrap_or_default(),
    };
    if params.format == DatasetFormat::Cmnist {
        return ingest_cmnist(params, ctx, outputs, &root);
    }

    let original_celeba = params.format == DatasetFormat::Celeba
        && match params.celeba_dialect {
            CelebaDialect::Auto => !root.join("metadata.csv").is_file(),
            CelebaDialect::SixColumn => false,
            CelebaDialect::Original => true,
        };
    let (records, source) = if original_celeba {
        let options = CelebaOptions {
            target: params.target_attribute.clone(),
            spurious: params.spurious_attribute.clone(),
            images_dir: params.images_dir.clone(),
        };
        read_celeba(&root, &options)?
    } else {
        let dialect = match params.format {
            DatasetFormat::Generic => Dialect::Generic,
            _ => Dialect::Waterbirds,
        };
        let options = MetadataOptions { dialect, classes: params.classes, spurious_values: 2 };
        let metadata = root.join("metadata.csv");
        (read_metadata(&metadata, &options)?, metadata)
    };
    let records = finish_records(records, &source)?;
    check_images_exist(&root, &source, &records)?;

    let spurious = match params.format {
        DatasetFormat::Celeba => params.spurious_attribute.clone(),
        _ => "place".into(),
    };
    let naming = GroupNaming { spurious };
    write_outputs(params, ctx, outputs, &records, &naming, |index| {
        load_image(&root, &records[index], size)
    })
}

fn ingest_cmnist(
    params: &IngestParams,
    ctx: &StageContext,
    outputs: &Outputs,
    root: &Path,
) -> Result<(), IngestError> {
    let [n_train, n_val, n_test] = params.split_sizes();
    let spec = ColoredMnistSpec {
        seed: ctx.seed,
        files: params.files,
        n_train,
        n_val,
        n_test,
        correlation: params.correlation,
    };
    let data = cmnist::build(root, &spec)?;
    let records = finish_records(data.records.clone(), root)?;
    let naming = GroupNaming { spurious: "colour".into() };
    let size = params.size();
    write_outputs(params, ctx, outputs, &records, &naming, |index| {
        let pixels = data.image(&records[index]);
        if (data.height, data.width) == (size as usize, size as usize) {
            return Ok(pixels);
        }
        let plane = data.height * data.width;
        let interleaved: Vec<u8> = (0..plane)
            .flat_map(|i| [pixels[i], pixels[plane + i], pixels[2 * plane + i]])
            .collect();
        let image = RgbImage::from_raw(data.width as u32, data.height as u32, interleaved)
            .expect("three bytes per pixel");
        Ok(to_chw(&resize(image, size)))
    })
}

/// Generates the synthetic folder in the scratch folder (and the export folder, if asked).
fn generate_synthetic(params: &IngestParams, ctx: &StageContext) -> Result<PathBuf, IngestError> {
    let spec = synthetic::SyntheticSpec {
        seed: ctx.seed,
        size: params.size(),
        n_train: params.split_sizes()[0],
        n_val: params.split_sizes()[1],
        n_test: params.split_sizes()[2],
        train_agreement: params.train_agreement,
        val_agreement: params.val_agreement.unwrap_or(params.eval_agreement),
        test_agreement: params.eval_agreement,
        colour_cue: params.colour_cue,
    };
    let folder = ctx.scratch.join("synthetic");
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(|e| IngestError::io(&folder, e))?;
    }
    let count = synthetic::generate(&spec, &folder, &|done, total| {
        ctx.progress("generate", done, total);
    })?;
    tracing::info!(images = count, folder = %folder.display(), "generated synthetic scenes");
    if let Some(export) = &params.export_dir {
        copy_folder(&folder, export)?;
        tracing::info!(folder = %export.display(), "exported synthetic scenes");
    }
    Ok(folder)
}

/// Writes the three outputs from sorted, checked records; `produce(i)` gives the pixels of
/// record `i` at the stored size, channel-major.
fn write_outputs<F>(
    params: &IngestParams,
    ctx: &StageContext,
    outputs: &Outputs,
    records: &[Record],
    naming: &GroupNaming,
    produce: F,
) -> Result<(), IngestError>
where
    F: Fn(usize) -> Result<Vec<u8>, IngestError> + Sync,
{
    let mut metadata = BTreeMap::new();
    metadata.insert("classes".to_string(), params.classes.to_string());
    if params.normalisation() == Normalisation::Imagenet {
        metadata.insert("mean".to_string(), "0.485,0.456,0.406".to_string());
        metadata.insert("std".to_string(), "0.229,0.224,0.225".to_string());
    }
    stream_images(
        &outputs.images,
        records.len(),
        params.size(),
        &metadata,
        &|done, total| ctx.progress("images", done, total),
        produce,
    )?;
    write_table(&outputs.manifest, &manifest_table(records))?;
    write_table(&outputs.groups, &groups_table(records, naming))?;
    tracing::info!(rows = records.len(), size = params.size(), "ingested dataset");
    Ok(())
}

/// Copies the files of `from` (recursively) into `to`.
fn copy_folder(from: &Path, to: &Path) -> Result<(), IngestError> {
    std::fs::create_dir_all(to).map_err(|e| IngestError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| IngestError::io(from, e))? {
        let entry = entry.map_err(|e| IngestError::io(from, e))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| IngestError::io(&target, e))?;
        }
    }
    Ok(())
}

/// What to do when a dataset folder is missing: what it must hold and where it comes from.
fn missing_dataset(format: DatasetFormat, root: &std::path::Path) -> String {
    let (variable, holds) = match format {
        DatasetFormat::Waterbirds => (
            "EXMAP_WATERBIRDS",
            "the `waterbird_complete95_forest2water2` folder (metadata.csv and the bird images), \
             released by the group DRO authors (github.com/kohpangwei/group_DRO) from \
             CUB-200-2011 birds on Places backgrounds",
        ),
        DatasetFormat::Celeba => (
            "EXMAP_CELEBA",
            "CelebA: img_align_celeba/ with list_attr_celeba.csv (or .zip) and \
             list_eval_partition.csv, or a six-column metadata.csv; from the CelebA project \
             page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html)",
        ),
        DatasetFormat::Cmnist => (
            "EXMAP_MNIST",
            "the MNIST IDX files t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) \
             (or the train files), as torchvision's MNIST download writes them",
        ),
        _ => ("", "metadata.csv and the images it lists"),
    };
    let how = if variable.is_empty() {
        "set `root`".to_string()
    } else {
        format!("set `{variable}` (which the shipped pipeline reads) or `--set <stage>.root=DIR`")
    };
    format!("dataset folder `{}` does not exist: {how} to a folder holding {holds}", root.display())
}
