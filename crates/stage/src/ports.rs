//! Ports: the named, typed inputs and outputs of a stage.

use std::fmt;

/// How an artefact is stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// An Arrow table as Parquet.
    Table,
    /// Named tensors as safetensors.
    Tensors,
    /// A small JSON document.
    Json,
    /// A text or binary document (a Markdown or HTML report).
    Document(&'static str),
}

impl Format {
    /// The file extension of this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "parquet",
            Format::Tensors => "safetensors",
            Format::Json => "json",
            Format::Document(ext) => ext,
        }
    }
}

/// The semantic type of an artefact: what it means (`heatmaps`, `embeddings`) and how it is
/// stored. An output can feed an input only when both name the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArtefactType {
    pub name: &'static str,
    pub format: Format,
}

impl fmt::Display for ArtefactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.format.extension())
    }
}

/// A named input or output of a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: &'static str,
    pub ty: ArtefactType,
    /// An optional input may be left unconnected.
    pub optional: bool,
    /// A gathering input takes any number of artefacts of its type (the results of every
    /// cell of a sweep, say); the stage receives them in a stable order.
    pub many: bool,
}

impl Port {
    pub const fn required(name: &'static str, ty: ArtefactType) -> Self {
        Self { name, ty, optional: false, many: false }
    }

    pub const fn optional(name: &'static str, ty: ArtefactType) -> Self {
        Self { name, ty, optional: true, many: false }
    }

    /// An input that gathers zero or more artefacts of one type.
    pub const fn many(name: &'static str, ty: ArtefactType) -> Self {
        Self { name, ty, optional: true, many: true }
    }
}
