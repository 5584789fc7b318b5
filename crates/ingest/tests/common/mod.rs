//! Helpers shared by the ingest integration tests: running the stage into a temporary folder
//! and reading its outputs back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use exmap_artefact::{read_table, Table, TensorFile};
use exmap_ingest::IngestStage;
use exmap_stage::{DynStage, SilentProgress, StageContext};
use serde_json::Value;

/// The outputs of one stage run.
pub struct Run {
    pub dir: tempfile::TempDir,
    pub result: Result<(), String>,
}

impl Run {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn manifest(&self) -> Table {
        read_table(&self.path("manifest.parquet")).unwrap()
    }

    pub fn groups(&self) -> Table {
        read_table(&self.path("groups.parquet")).unwrap()
    }

    pub fn images(&self) -> TensorFile {
        TensorFile::open(&self.path("images.safetensors")).unwrap()
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// The error message of a failed run, after checking that nothing was left behind.
    pub fn error(&self) -> String {
        let message = self.result.clone().expect_err("the stage should fail");
        for name in ["manifest.parquet", "groups.parquet", "images.safetensors"] {
            assert!(!self.path(name).exists(), "`{name}` left behind after: {message}");
        }
        message
    }
}

/// Runs the ingest stage with raw parameters `params` and `seed` through the runner's
/// object-safe interface (so parameter resolution is exercised too).
pub fn run(params: Value, seed: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let progress = SilentProgress;
    let ctx = StageContext::new("ingest", seed, scratch, &progress)
        .with_output("manifest", dir.path().join("manifest.parquet"))
        .with_output("groups", dir.path().join("groups.parquet"))
        .with_output("images", dir.path().join("images.safetensors"));
    let result = IngestStage
        .resolve(&params)
        .map_err(|e| e.to_string())
        .and_then(|resolved| IngestStage.run(&resolved, &ctx).map_err(|e| e.to_string()));
    Run { dir, result }
}

/// The shared data folder (`../shared/data` from the repository root), if it exists.
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "note: `{}` is absent; this test checks nothing without the shared real data",
            path.display()
        );
        None
    }
}

/// One row of a test metadata file: id, file name, y, split code, place.
pub type Row<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Writes a Waterbirds-format folder: `metadata.csv` from `rows` (joined by `newline`) and a
/// small PNG per distinct file name whose colour encodes its id, so that tests can check
/// which image landed in which manifest row.
pub fn waterbirds_folder(rows: &[Row], newline: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("img_id,img_filename,y,split,place,place_filename");
    for (id, file, y, split, place) in rows {
        text.push_str(newline);
        text.push_str(&format!("{id},{file},{y},{split},{place},/p/{id}"));
        write_png(&dir.path().join(file), id_colour(id));
    }
    text.push_str(newline);
    std::fs::write(dir.path().join("metadata.csv"), text).unwrap();
    dir
}

/// A distinct colour per numeric id.
pub fn id_colour(id: &str) -> [u8; 3] {
    let n: u32 = id.parse().unwrap_or(0);
    [(n * 37 % 256) as u8, (n * 91 % 256) as u8, (n * 13 % 256) as u8]
}

/// Writes a 12 x 10 PNG of one colour (creating parent folders).
pub fn write_png(path: &Path, colour: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let image = image::RgbImage::from_pixel(12, 10, image::Rgb(colour));
    image.save(path).unwrap();
}

/// Rows with every group in every split.
pub fn balanced_rows() -> Vec<(String, String, String, String, String)> {
    let mut rows = Vec::new();
    let mut id = 1;
    for split in ["0", "1", "2"] {
        for (y, place) in [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")] {
            rows.push((
                id.to_string(),
                format!("birds/{id:03}.png"),
                y.to_string(),
                split.to_string(),
                place.to_string(),
            ));
            id += 1;
        }
    }
    rows
}

/// Borrowed view of owned rows.
pub fn borrow(rows: &[(String, String, String, String, String)]) -> Vec<Row<'_>> {
    rows.iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect()
}
