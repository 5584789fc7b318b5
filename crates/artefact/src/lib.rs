//! The artefacts that flow between ExMap stages, and their on-disk forms.
//!
//! Three formats cover every stage: tables (Arrow record batches stored as Parquet), tensors
//! (named, typed, shaped arrays stored as safetensors) and small JSON documents. Every
//! artefact is identified by its [`Digest`], blake3 of its bytes, so equal bytes mean an equal
//! artefact and any change of content, shape, dtype or column name changes the digest.
//!
//! Readers check what a consuming stage expects (a column and its type, a tensor's dtype and
//! rank) and return errors that name the file and the column or tensor.

mod digest;
mod error;
mod json;
mod table;
mod tensors;

pub use digest::{hash_bytes, hash_file, Digest};
pub use error::ArtefactError;
pub use json::{read_json, write_json};
pub use table::{read_table, write_table, Table};
pub use tensors::{DType, Tensor, TensorFile, TensorStreamWriter, TensorWriter};

/// Re-exported so that stage crates build tables with the same Arrow version.
pub use arrow;
