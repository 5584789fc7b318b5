//! Metadata files in the Waterbirds dialect and the generic dialect.
//!
//! Waterbirds (and the six-column CelebA export) has `img_id, img_filename, y, split, place,
//! place_filename`; the generic dialect needs `img_filename`, `y`, `split` and one of `place`,
//! `spurious` or `group` (an `img_id` column is used when present, the file name otherwise).
//! Parsing needs no images, so that a metadata file can be checked on its own. CRLF and LF
//! line endings, a UTF-8 byte-order mark and quoted fields are all accepted.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::{IngestError, Record, Split};

/// Which columns a metadata file must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `img_id, img_filename, y, split, place` (`place_filename` and others are ignored).
    Waterbirds,
    /// `img_filename, y, split` and one of `place`, `spurious`, `group`.
    Generic,
}

/// How the values of a metadata file are checked and combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataOptions {
    pub dialect: Dialect,
    /// Labels must lie in `0..classes`.
    pub classes: i64,
    /// Spurious values must lie in `0..spurious_values`; group = `spurious_values * y +
    /// spurious`.
    pub spurious_values: i64,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        Self { dialect: Dialect::Waterbirds, classes: 2, spurious_values: 2 }
    }
}

/// Reads the metadata file at `path` into records, in file order.
pub fn read_metadata(path: &Path, options: &MetadataOptions) -> Result<Vec<Record>, IngestError> {
    let file = std::fs::File::open(path).map_err(|e| IngestError::io(path, e))?;
    parse_metadata(file, path, options)
}

/// Parses metadata from `reader`; `source` names it in error messages.
pub fn parse_metadata(
    reader: impl Read,
    source: &Path,
    options: &MetadataOptions,
) -> Result<Vec<Record>, IngestError> {
    let mut bytes = Vec::new();
    let mut reader = reader;
    reader.read_to_end(&mut bytes).map_err(|e| IngestError::io(source, e))?;
    let lines = LineIndex::new(&bytes);
    let mut csv = csv_reader(bytes.as_slice());
    let header = csv.headers().map_err(|e| csv_error(source, &e, &lines))?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let require = |name: &str| {
        column(name).ok_or_else(|| {
            let found: Vec<&str> = header.iter().collect();
            IngestError::file(
                source,
                format!("missing column `{name}` (found: {})", found.join(", ")),
            )
        })
    };

    let filename = require("img_filename")?;
    let label = require("y")?;
    let split = require("split")?;
    let (id, attribute) = match options.dialect {
        Dialect::Waterbirds => (Some(require("img_id")?), Attribute::Spurious(require("place")?)),
        Dialect::Generic => {
            let attribute = match (column("place"), column("spurious"), column("group")) {
                (Some(c), _, _) | (None, Some(c), _) => Attribute::Spurious(c),
                (None, None, Some(c)) => Attribute::Group(c),
                (None, None, None) => {
                    return Err(IngestError::file(
                        source,
                        "missing column: one of `place`, `spurious` or `group` is needed",
                    ))
                }
            };
            (column("img_id"), attribute)
        }
    };

    let mut records = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in csv.records() {
        let row = row.map_err(|e| csv_error(source, &e, &lines))?;
        let line = lines.line_of(row.position());
        let field = |index: usize, name: &str| {
            row.get(index)
                .ok_or_else(|| IngestError::row(source, line, format!("no `{name}` value")))
        };
        let integer = |index: usize, name: &str| {
            let text = field(index, name)?;
            text.parse::<i64>().map_err(|_| {
                IngestError::row(source, line, format!("`{name}` value `{text}` is not an integer"))
            })
        };

        let path = field(filename, "img_filename")?.to_string();
        if path.is_empty() {
            return Err(IngestError::row(source, line, "empty `img_filename`"));
        }
        let id = match id {
            Some(index) => field(index, "img_id")?.to_string(),
            None => path.clone(),
        };
        let y = integer(label, "y")?;
        if !(0..options.classes).contains(&y) {
            return Err(IngestError::row(
                source,
                line,
                format!("label `y` = {y} is outside the declared classes 0..{}", options.classes),
            ));
        }
        let code = field(split, "split")?;
        let split = Split::parse(code).ok_or_else(|| {
            IngestError::row(
                source,
                line,
                format!("unknown split code `{code}` (expected 0/1/2 or train/val/test)"),
            )
        })?;
        let (spurious, group) = match attribute {
            Attribute::Spurious(index) => {
                let value = integer(index, header.get(index).unwrap_or("place"))?;
                if !(0..options.spurious_values).contains(&value) {
                    return Err(IngestError::row(
                        source,
                        line,
                        format!(
                            "spurious attribute `{}` = {value} is outside 0..{}",
                            header.get(index).unwrap_or("place"),
                            options.spurious_values
                        ),
                    ));
                }
                (value, options.spurious_values * y + value)
            }
            Attribute::Group(index) => {
                let group = integer(index, "group")?;
                if group < 0 {
                    return Err(IngestError::row(
                        source,
                        line,
                        format!("negative `group` {group}"),
                    ));
                }
                (-1, group)
            }
        };
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(IngestError::row(
                source,
                line,
                format!("duplicate id `{id}` (first on line {first})"),
            ));
        }
        records.push(Record { id, path, y, spurious, group, split, line });
    }
    Ok(records)
}

/// A CSV reader that trims fields and accepts any line ending.
pub(crate) fn csv_reader<R: Read>(reader: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader)
}

/// A CSV parse error, with the line it happened on where the parser knows it.
pub(crate) fn csv_error(source: &Path, error: &csv::Error, lines: &LineIndex) -> IngestError {
    match error.position() {
        Some(position) => {
            IngestError::row(source, lines.line_of(Some(position)), error.to_string())
        }
        None => IngestError::file(source, error.to_string()),
    }
}

/// Line numbers of CSV records, counted from the bytes.
///
/// The parser's own line counter is off by one after CRLF line endings, so lines are counted
/// here from the record's byte offset. That offset may point at the `\n` that ends the
/// previous line (after `\r\n`) or at the record's first byte; counting the line feeds up to
/// and including it gives the record's line in both cases.
pub(crate) struct LineIndex {
    feeds: Vec<u64>,
}

impl LineIndex {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let feeds =
            bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i as u64).collect();
        Self { feeds }
    }

    /// The 1-based line of a record that starts at `position` (0 when unknown).
    pub(crate) fn line_of(&self, position: Option<&csv::Position>) -> u64 {
        position.map_or(0, |p| 1 + self.feeds.partition_point(|&f| f <= p.byte()) as u64)
    }
}

#[derive(Clone, Copy)]
enum Attribute {
    Spurious(usize),
    Group(usize),
}
