//! The normalised sample record every format reader produces, and the checks and tables that
//! do not depend on the format.
//!
//! Readers return records in any order; [`finish_records`] sorts them into the manifest order
//! (split, then id, numerically where ids are integers), so that the row order of a metadata
//! file never changes the artefacts, and checks what must hold of a usable dataset.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use exmap_artefact::Table;

use crate::IngestError;

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses a split code: `0`/`1`/`2` as in Waterbirds and CelebA, or a split name.
    pub fn parse(code: &str) -> Option<Split> {
        match code.trim() {
            "0" | "train" => Some(Split::Train),
            "1" | "val" | "valid" | "validation" => Some(Split::Val),
            "2" | "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// One sample: its id, its image path relative to the data folder (empty when the pixels are
/// generated), its class, spurious attribute (-1 when unknown), true group and split, and the
/// line of the metadata file it came from (0 when generated), for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub path: String,
    pub y: i64,
    pub spurious: i64,
    pub group: i64,
    pub split: Split,
    pub line: u64,
}

/// How the groups of a dataset are named in the `groups` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupNaming {
    /// The name of the spurious attribute (`place`, `Male`, `colour`).
    pub spurious: String,
}

/// Sorts records into manifest order and checks the dataset: every split has samples, and
/// every group of the training split also appears in the validation split. `source` names
/// the file the records came from in error messages.
pub fn finish_records(
    mut records: Vec<Record>,
    source: &std::path::Path,
) -> Result<Vec<Record>, IngestError> {
    records.sort_by(|a, b| a.split.cmp(&b.split).then_with(|| compare_ids(&a.id, &b.id)));

    let mut groups: BTreeMap<Split, BTreeSet<i64>> = BTreeMap::new();
    for record in &records {
        groups.entry(record.split).or_default().insert(record.group);
    }
    for split in Split::ALL {
        if !groups.contains_key(&split) {
            return Err(IngestError::file(
                source,
                format!("split `{}` has no samples", split.as_str()),
            ));
        }
    }
    let missing: Vec<String> =
        groups[&Split::Train].difference(&groups[&Split::Val]).map(i64::to_string).collect();
    if !missing.is_empty() {
        return Err(IngestError::file(
            source,
            format!(
                "group(s) {} present in split `train` but not in split `val`",
                missing.join(", ")
            ),
        ));
    }
    Ok(records)
}

/// The manifest table of `types::MANIFEST`, one row per record in the given order.
pub fn manifest_table(records: &[Record]) -> Table {
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    let splits: Vec<&str> = records.iter().map(|r| r.split.as_str()).collect();
    Table::builder()
        .i64("row", (0..records.len() as i64).collect())
        .str("id", &ids)
        .str("path", &paths)
        .i64("y", records.iter().map(|r| r.y).collect())
        .i64("spurious", records.iter().map(|r| r.spurious).collect())
        .i64("group", records.iter().map(|r| r.group).collect())
        .str("split", &splits)
        .build()
}

/// The groups table of `types::GROUPS`: one row per split and group, covering every group
/// seen in any split (a count of 0 where a split lacks it), sorted by split then group.
pub fn groups_table(records: &[Record], naming: &GroupNaming) -> Table {
    let mut labels: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut counts: BTreeMap<(Split, i64), i64> = BTreeMap::new();
    for record in records {
        labels.insert(record.group, (record.y, record.spurious));
        *counts.entry((record.split, record.group)).or_default() += 1;
    }

    let (mut split, mut group, mut y, mut spurious, mut name, mut count) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for s in Split::ALL {
        for (&g, &(label, attribute)) in &labels {
            split.push(s.as_str());
            group.push(g);
            y.push(label);
            spurious.push(attribute);
            name.push(if attribute < 0 {
                format!("y={label},group={g}")
            } else {
                format!("y={label},{}={attribute}", naming.spurious)
            });
            count.push(counts.get(&(s, g)).copied().unwrap_or(0));
        }
    }
    Table::builder()
        .str("split", &split)
        .i64("group", group)
        .i64("y", y)
        .i64("spurious", spurious)
        .str("name", &name)
        .i64("count", count)
        .build()
}

/// Integer ids compare as numbers and before any other id; other ids compare as text.
fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}
