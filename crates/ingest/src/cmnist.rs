//! Colored MNIST built from MNIST IDX files, following the reference recipe.
//!
//! The digit rows are split by one seeded permutation into train, val and test. The class is
//! y = digit > 4. The colour follows the reference's convention: class 0 is green (colour 1)
//! and class 1 red (colour 0) with probability `correlation`, drawn independently per image in
//! every split; the digit's grey values are copied into that channel of an otherwise black
//! 3 x 28 x 28 image. Group = 2y + colour.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{IngestError, Record, Split};

/// Which MNIST files to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MnistFiles {
    /// `t10k-images-idx3-ubyte(.gz)` and `t10k-labels-idx1-ubyte(.gz)` (10,000 digits).
    #[default]
    T10k,
    /// `train-images-idx3-ubyte(.gz)` and `train-labels-idx1-ubyte(.gz)` (60,000 digits).
    Train,
}

impl MnistFiles {
    fn prefix(self) -> &'static str {
        match self {
            MnistFiles::T10k => "t10k",
            MnistFiles::Train => "train",
        }
    }
}

/// What to build.
#[derive(Clone, Debug, PartialEq)]
pub struct ColoredMnistSpec {
    pub seed: u64,
    pub files: MnistFiles,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    /// Probability that an image carries its class's majority colour, in every split.
    pub correlation: f64,
}

/// The built dataset: records (in no particular order) and the digits they refer to.
#[derive(Debug)]
pub struct ColoredMnist {
    pub records: Vec<Record>,
    /// Grey digits, `height * width` bytes each, in IDX file order.
    pub digits: Vec<u8>,
    pub height: usize,
    pub width: usize,
    /// Record id to the digit's index in the IDX file.
    pub source: HashMap<String, usize>,
}

impl ColoredMnist {
    /// The 3 x H x W image of record `id`: the digit in the red (colour 0) or green (colour
    /// 1) channel.
    pub fn image(&self, record: &Record) -> Vec<u8> {
        let plane = self.height * self.width;
        let index = self.source[&record.id];
        let mut out = vec![0u8; 3 * plane];
        let channel = record.spurious as usize;
        out[channel * plane..(channel + 1) * plane]
            .copy_from_slice(&self.digits[index * plane..(index + 1) * plane]);
        out
    }
}

/// Reads the IDX files in `folder` and builds Colored MNIST for `spec`.
pub fn build(folder: &Path, spec: &ColoredMnistSpec) -> Result<ColoredMnist, IngestError> {
    let images_path = find_idx(folder, &format!("{}-images-idx3-ubyte", spec.files.prefix()))?;
    let labels_path = find_idx(folder, &format!("{}-labels-idx1-ubyte", spec.files.prefix()))?;
    let (image_magic, image_dims, digits) = read_idx(&images_path)?;
    let (label_magic, label_dims, labels) = read_idx(&labels_path)?;
    if image_magic != 0x0803 || image_dims.len() != 3 {
        return Err(IngestError::file(&images_path, "is not an IDX image file (magic 2051)"));
    }
    if label_magic != 0x0801 || label_dims.len() != 1 {
        return Err(IngestError::file(&labels_path, "is not an IDX label file (magic 2049)"));
    }
    if image_dims[0] != label_dims[0] {
        return Err(IngestError::file(
            &labels_path,
            format!("has {} labels for {} images", label_dims[0], image_dims[0]),
        ));
    }
    let total = spec.n_train + spec.n_val + spec.n_test;
    if total > labels.len() {
        return Err(IngestError::file(
            &images_path,
            format!("has {} digits, fewer than the {total} asked for", labels.len()),
        ));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut records = Vec::with_capacity(total);
    let mut source = HashMap::with_capacity(total);
    let splits =
        [(Split::Train, spec.n_train), (Split::Val, spec.n_val), (Split::Test, spec.n_test)];
    let mut start = 0;
    for (split, n) in splits {
        for &index in &order[start..start + n] {
            let digit = labels[index];
            if digit > 9 {
                return Err(IngestError::file(
                    &labels_path,
                    format!("label {digit} of digit {index} is not a digit"),
                ));
            }
            let y = i64::from(digit > 4);
            let majority = 1 - y;
            let colour = if rng.random_bool(spec.correlation) { majority } else { y };
            let id = format!("{}-{index:05}", spec.files.prefix());
            source.insert(id.clone(), index);
            records.push(Record {
                id,
                path: String::new(),
                y,
                spurious: colour,
                group: 2 * y + colour,
                split,
                line: 0,
            });
        }
        start += n;
    }
    Ok(ColoredMnist { records, digits, height: image_dims[1], width: image_dims[2], source })
}

/// `folder/stem.gz` or `folder/stem`, whichever exists.
pub fn find_idx(folder: &Path, stem: &str) -> Result<PathBuf, IngestError> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| folder.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| IngestError::file(folder, format!("has no `{stem}` or `{stem}.gz`")))
}

/// Reads an unsigned-byte IDX file (gzipped when its name ends in `.gz`): magic, dimensions
/// and data.
pub fn read_idx(path: &Path) -> Result<(u32, Vec<usize>, Vec<u8>), IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut raw = Vec::new();
    if path.extension().is_some_and(|ext| ext == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut raw)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut raw)
    }
    .map_err(|e| IngestError::io(path, e))?;

    if raw.len() < 4 || raw[0] != 0 || raw[1] != 0 || raw[2] != 0x08 {
        return Err(IngestError::file(path, "is not an unsigned-byte IDX file"));
    }
    let rank = raw[3] as usize;
    let header = 4 + 4 * rank;
    if raw.len() < header {
        return Err(IngestError::file(path, "ends inside its IDX header"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected: usize = dims.iter().product();
    if raw.len() - header != expected {
        return Err(IngestError::file(
            path,
            format!(
                "has {} data bytes where its header {dims:?} says {expected}",
                raw.len() - header
            ),
        ));
    }
    let magic = u32::from_be_bytes(raw[..4].try_into().expect("4 bytes"));
    raw.drain(..header);
    Ok((magic, dims, raw))
}
