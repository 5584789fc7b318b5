//! Dataset ingest: every dataset enters the pipeline through the `ingest` stage.
//!
//! A format reader turns a dataset (Waterbirds, CelebA or generic metadata with images,
//! Colored MNIST from IDX files, or the built-in synthetic scenes) into [`Record`]s; the
//! records are sorted into manifest order and checked, then written as the three artefacts
//! every later stage reads: the manifest table, the groups table and the `images` tensor
//! (u8 [N, 3, S, S], streamed chunk by chunk).
//! Rows are joined to images by file name, never by position.

pub mod celeba;
pub mod cmnist;
mod error;
mod images;
mod metadata;
mod record;
mod stage;
pub mod synthetic;

pub use error::IngestError;
pub use images::{check_images_exist, load_image, resize, stream_images, to_chw};
pub use metadata::{parse_metadata, read_metadata, Dialect, MetadataOptions};
pub use record::{finish_records, groups_table, manifest_table, GroupNaming, Record, Split};
pub use stage::{CelebaDialect, DatasetFormat, IngestParams, IngestStage, Normalisation};
