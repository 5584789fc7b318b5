//! Batches of u8 images read straight from a memory-mapped `images` artefact.
//!
//! An `images` artefact (`exmap_stage::types::IMAGES`) holds one u8 tensor [N, 3, H, W].
//! Stages never turn the whole dataset into floats: they gather the rows of one batch into
//! a u8 tensor and transform that batch only.

use std::path::Path;

use exmap_artefact::{ArtefactError, DType, TensorFile};
use tch::{Kind, Tensor};

use crate::ModelError;

/// A memory-mapped `images` artefact.
pub struct ImageSource {
    file: TensorFile,
    shape: [usize; 4],
}

impl ImageSource {
    /// Opens `path` and checks that its `images` tensor is u8 [N, 3, H, W].
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let file = TensorFile::open(path)?;
        let shape = file.expect("images", DType::U8, Some(4))?;
        if shape[1] != 3 {
            return Err(ModelError::Artefact(ArtefactError::Mismatch {
                path: path.to_path_buf(),
                what: "tensor",
                name: "images".into(),
                reason: format!("has shape {shape:?} where [N, 3, H, W] is expected"),
            }));
        }
        let shape = [shape[0], shape[1], shape[2], shape[3]];
        Ok(Self { file, shape })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Height and width.
    pub fn size(&self) -> (usize, usize) {
        (self.shape[2], self.shape[3])
    }

    /// A metadata entry of the artefact (`classes`, `mean`, `std`).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.file.metadata(key)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The images at `rows`, in that order, as a u8 tensor [rows.len(), 3, H, W] on the CPU.
    /// Panics on a row out of range; callers check rows against [`ImageSource::len`].
    pub fn batch(&self, rows: &[usize]) -> Tensor {
        let bytes = self.file.bytes("images").expect("checked at open");
        let image = self.shape[1] * self.shape[2] * self.shape[3];
        let mut data = Vec::with_capacity(rows.len() * image);
        for &row in rows {
            data.extend_from_slice(&bytes[row * image..(row + 1) * image]);
        }
        let shape = [rows.len() as i64, 3, self.shape[2] as i64, self.shape[3] as i64];
        Tensor::from_data_size(&data, &shape, Kind::Uint8)
    }
}
