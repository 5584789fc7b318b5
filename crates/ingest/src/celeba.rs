//! CelebA in its original dialect: an attribute file and a partition file.
//!
//! `list_attr_celeba.csv` has `image_id` and 40 attribute columns valued 1 or -1;
//! `list_eval_partition.csv` has `image_id,partition` with 0/1/2 = train/val/test. Either file
//! may sit in the data folder or inside a `.zip` archive there. The class is the target
//! attribute (default `Blond_Hair`), the spurious attribute another one (default `Male`), each
//! mapped 1 to 1 and -1 to 0; group = 2y + spurious. The six-column export of CelebA is read
//! by the Waterbirds reader instead.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::metadata::{csv_error, csv_reader, LineIndex};
use crate::{IngestError, Record, Split};

/// The attribute file name.
pub const ATTRIBUTES: &str = "list_attr_celeba.csv";
/// The partition file name.
pub const PARTITION: &str = "list_eval_partition.csv";

/// How the original dialect is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CelebaOptions {
    pub target: String,
    pub spurious: String,
    /// The folder of the images, relative to the data folder.
    pub images_dir: String,
}

/// Reads the original-dialect CelebA files under `root` into records (in attribute-file
/// order). The returned path names the attribute file, for later error messages.
pub fn read_celeba(
    root: &Path,
    options: &CelebaOptions,
) -> Result<(Vec<Record>, PathBuf), IngestError> {
    let (attributes_source, attributes) = open_listed(root, ATTRIBUTES)?;
    let (partition_source, partition) = open_listed(root, PARTITION)?;
    let splits = read_partition(&partition, &partition_source)?;

    let lines = LineIndex::new(&attributes);
    let mut csv = csv_reader(attributes.as_slice());
    let header = csv.headers().map_err(|e| csv_error(&attributes_source, &e, &lines))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            IngestError::file(&attributes_source, format!("missing column `{name}`"))
        })
    };
    let (id_column, target, spurious) =
        (column("image_id")?, column(&options.target)?, column(&options.spurious)?);

    let mut records = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for row in csv.records() {
        let row = row.map_err(|e| csv_error(&attributes_source, &e, &lines))?;
        let line = lines.line_of(row.position());
        let value = |index: usize| -> Result<i64, IngestError> {
            match row.get(index) {
                Some("1") => Ok(1),
                Some("-1") => Ok(0),
                other => Err(IngestError::row(
                    &attributes_source,
                    line,
                    format!(
                        "attribute `{}` value `{}` is neither 1 nor -1",
                        header.get(index).unwrap_or(""),
                        other.unwrap_or("")
                    ),
                )),
            }
        };
        let id = row.get(id_column).unwrap_or("").to_string();
        let (y, attribute) = (value(target)?, value(spurious)?);
        let split = *splits.get(&id).ok_or_else(|| {
            IngestError::row(
                &attributes_source,
                line,
                format!("image `{id}` has no row in `{}`", partition_source.display()),
            )
        })?;
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(IngestError::row(
                &attributes_source,
                line,
                format!("duplicate id `{id}` (first on line {first})"),
            ));
        }
        let path = format!("{}/{id}", options.images_dir.trim_end_matches('/'));
        records.push(Record {
            id,
            path,
            y,
            spurious: attribute,
            group: 2 * y + attribute,
            split,
            line,
        });
    }
    Ok((records, attributes_source))
}

/// Image id to split, from the partition file.
fn read_partition(bytes: &[u8], source: &Path) -> Result<HashMap<String, Split>, IngestError> {
    let lines = LineIndex::new(bytes);
    let mut csv = csv_reader(bytes);
    let header = csv.headers().map_err(|e| csv_error(source, &e, &lines))?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| IngestError::file(source, format!("missing column `{name}`")))
    };
    let (id_column, partition) = (column("image_id")?, column("partition")?);
    let mut splits = HashMap::new();
    for row in csv.records() {
        let row = row.map_err(|e| csv_error(source, &e, &lines))?;
        let line = lines.line_of(row.position());
        let code = row.get(partition).unwrap_or("");
        let split = Split::parse(code).ok_or_else(|| {
            IngestError::row(source, line, format!("unknown split code `{code}`"))
        })?;
        splits.insert(row.get(id_column).unwrap_or("").to_string(), split);
    }
    Ok(splits)
}

/// The bytes of `name`, from `root/name` or from an entry ending in `name` inside one of the
/// `.zip` archives in `root` (in name order); also a path that names where it came from.
pub fn open_listed(root: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), IngestError> {
    let direct = root.join(name);
    if direct.is_file() {
        let bytes = std::fs::read(&direct).map_err(|e| IngestError::io(&direct, e))?;
        return Ok((direct, bytes));
    }
    let mut archives: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| IngestError::io(root, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "zip"))
        .collect();
    archives.sort();
    for archive in archives {
        let file = std::fs::File::open(&archive).map_err(|e| IngestError::io(&archive, e))?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| IngestError::file(&archive, format!("is not a readable zip: {e}")))?;
        for index in 0..zip.len() {
            let mut entry = zip
                .by_index(index)
                .map_err(|e| IngestError::file(&archive, format!("bad zip entry: {e}")))?;
            let entry_name = entry.name().to_string();
            if entry_name == name || entry_name.ends_with(&format!("/{name}")) {
                let source = archive.join(&entry_name);
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| IngestError::io(&source, e))?;
                return Ok((source, bytes));
            }
        }
    }
    Err(IngestError::file(root, format!("has no `{name}`, directly or inside a `.zip`")))
}
