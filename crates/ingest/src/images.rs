//! Decoding, resizing and streaming images into the `images` tensor.
//!
//! Images are produced in chunks: the samples of a chunk are decoded and resized in parallel
//! (rayon), then appended in manifest order to a [`TensorStreamWriter`], so memory holds one
//! chunk and never the dataset, and the bytes do not depend on the number of threads.

use std::collections::BTreeMap;
use std::path::Path;

use exmap_artefact::{DType, TensorStreamWriter};
use image::imageops::FilterType;
use image::RgbImage;
use rayon::prelude::*;

use crate::{IngestError, Record};

/// Samples decoded per parallel chunk.
const CHUNK: usize = 128;

/// Writes `images` u8 [count, 3, size, size] to `path`, sample `i` produced by `produce(i)`
/// as `3 * size * size` bytes in channel-major order. `progress(done, total)` follows chunks.
pub fn stream_images<F>(
    path: &Path,
    count: usize,
    size: u32,
    metadata: &BTreeMap<String, String>,
    progress: &dyn Fn(u64, u64),
    produce: F,
) -> Result<(), IngestError>
where
    F: Fn(usize) -> Result<Vec<u8>, IngestError> + Sync,
{
    let side = size as usize;
    let mut writer =
        TensorStreamWriter::create(path, "images", DType::U8, &[count, 3, side, side], metadata)?;
    let mut start = 0;
    while start < count {
        let end = (start + CHUNK).min(count);
        let chunk: Vec<Vec<u8>> =
            (start..end).into_par_iter().map(&produce).collect::<Result<_, _>>()?;
        for (offset, pixels) in chunk.iter().enumerate() {
            if pixels.len() != 3 * side * side {
                return Err(IngestError::Dataset(format!(
                    "sample {} produced {} bytes where {} are expected",
                    start + offset,
                    pixels.len(),
                    3 * side * side
                )));
            }
            writer.write_chunk(pixels)?;
        }
        progress(end as u64, count as u64);
        start = end;
    }
    writer.finish()?;
    Ok(())
}

/// Checks that every record's image file exists under `root`, before anything is written.
pub fn check_images_exist(
    root: &Path,
    metadata: &Path,
    records: &[Record],
) -> Result<(), IngestError> {
    let missing = records.par_iter().find_first(|record| !root.join(&record.path).is_file());
    match missing {
        Some(record) => Err(IngestError::row(
            metadata,
            record.line,
            format!(
                "image `{}` of id `{}` is listed but missing",
                root.join(&record.path).display(),
                record.id
            ),
        )),
        None => Ok(()),
    }
}

/// Decodes the image of `record` under `root` and resizes it (bilinear) to `size` x `size`.
pub fn load_image(root: &Path, record: &Record, size: u32) -> Result<Vec<u8>, IngestError> {
    let path = root.join(&record.path);
    let bad = |message: String| {
        IngestError::file(
            &path,
            format!("image of id `{}` (line {}) {message}", record.id, record.line),
        )
    };
    let decoded = image::ImageReader::open(&path)
        .map_err(|e| IngestError::io(&path, e))?
        .with_guessed_format()
        .map_err(|e| IngestError::io(&path, e))?
        .decode()
        .map_err(|e| bad(format!("does not decode: {e}")))?;
    Ok(to_chw(&resize(decoded.to_rgb8(), size)))
}

/// Resizes an RGB image to `size` x `size` with a bilinear (triangle) filter, which widens
/// with the scale when shrinking, so that downsampling averages rather than aliases.
pub fn resize(image: RgbImage, size: u32) -> RgbImage {
    if image.dimensions() == (size, size) {
        return image;
    }
    image::imageops::resize(&image, size, size, FilterType::Triangle)
}

/// Interleaved RGB pixels to channel-major bytes.
pub fn to_chw(image: &RgbImage) -> Vec<u8> {
    let plane = (image.width() * image.height()) as usize;
    let mut out = vec![0u8; 3 * plane];
    for (index, pixel) in image.pixels().enumerate() {
        out[index] = pixel[0];
        out[plane + index] = pixel[1];
        out[2 * plane + index] = pixel[2];
    }
    out
}
