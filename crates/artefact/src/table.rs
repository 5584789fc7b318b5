//! Tables: Arrow record batches stored as Parquet.
//!
//! Stages build tables column by column with [`Table::builder`] and read columns back by
//! name with a checked type; a missing column or a wrong type names the file and column.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatchReader, StringArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int32Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::ArtefactError;

/// A table in memory, with the file it came from when it was read.
#[derive(Clone, Debug)]
pub struct Table {
    pub batch: RecordBatch,
    source: PathBuf,
}

/// Builds a [`Table`] one named column at a time.
#[derive(Default)]
pub struct TableBuilder {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl TableBuilder {
    pub fn i64(mut self, name: &str, values: Vec<i64>) -> Self {
        self.fields.push(Field::new(name, DataType::Int64, false));
        self.columns.push(Arc::new(Int64Array::from(values)));
        self
    }

    pub fn f64(mut self, name: &str, values: Vec<f64>) -> Self {
        self.fields.push(Field::new(name, DataType::Float64, false));
        self.columns.push(Arc::new(Float64Array::from(values)));
        self
    }

    pub fn str<S: AsRef<str>>(mut self, name: &str, values: &[S]) -> Self {
        self.fields.push(Field::new(name, DataType::Utf8, false));
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        self.columns.push(Arc::new(StringArray::from(values)));
        self
    }

    pub fn build(self) -> Table {
        let schema = Arc::new(Schema::new(self.fields));
        let batch = RecordBatch::try_new(schema, self.columns).expect("columns of equal length");
        Table { batch, source: PathBuf::from("<memory>") }
    }
}

impl Table {
    pub fn builder() -> TableBuilder {
        TableBuilder::default()
    }

    pub fn from_batch(batch: RecordBatch) -> Self {
        Self { batch, source: PathBuf::from("<memory>") }
    }

    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn column_names(&self) -> Vec<String> {
        self.batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.batch.schema().index_of(name).is_ok()
    }

    /// Integer column `name` (Int64 or Int32).
    pub fn i64(&self, name: &str) -> Result<Vec<i64>, ArtefactError> {
        let column = self.column(name)?;
        if column.null_count() > 0 {
            return Err(self.mismatch(name, "has missing values"));
        }
        match column.data_type() {
            DataType::Int64 => Ok(column.as_primitive::<Int64Type>().values().to_vec()),
            DataType::Int32 => {
                Ok(column.as_primitive::<Int32Type>().values().iter().map(|&v| v as i64).collect())
            }
            other => {
                Err(self.mismatch(name, &format!("has type {other} where an integer is expected")))
            }
        }
    }

    /// Numeric column `name` as f64 (Float64, Float32 or an integer type).
    pub fn f64(&self, name: &str) -> Result<Vec<f64>, ArtefactError> {
        let column = self.column(name)?;
        match column.data_type() {
            DataType::Float64 => Ok(column.as_primitive::<Float64Type>().values().to_vec()),
            DataType::Float32 => Ok(column
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| v as f64)
                .collect()),
            DataType::Int64 | DataType::Int32 => {
                Ok(self.i64(name)?.into_iter().map(|v| v as f64).collect())
            }
            other => {
                Err(self.mismatch(name, &format!("has type {other} where a number is expected")))
            }
        }
    }

    /// String column `name`.
    pub fn str(&self, name: &str) -> Result<Vec<String>, ArtefactError> {
        let column = self.column(name)?;
        match column.data_type() {
            DataType::Utf8 => {
                Ok(column.as_string::<i32>().iter().map(|v| v.unwrap_or("").to_string()).collect())
            }
            DataType::LargeUtf8 => {
                Ok(column.as_string::<i64>().iter().map(|v| v.unwrap_or("").to_string()).collect())
            }
            other => {
                Err(self.mismatch(name, &format!("has type {other} where a string is expected")))
            }
        }
    }

    fn column(&self, name: &str) -> Result<&ArrayRef, ArtefactError> {
        let index = self.batch.schema().index_of(name).map_err(|_| {
            ArtefactError::missing(&self.source, "column", name, &self.column_names())
        })?;
        Ok(self.batch.column(index))
    }

    fn mismatch(&self, name: &str, reason: &str) -> ArtefactError {
        ArtefactError::mismatch(&self.source, "column", name, reason)
    }
}

/// Writes `table` as one Parquet file with deterministic settings.
pub fn write_table(path: &Path, table: &Table) -> Result<(), ArtefactError> {
    let file = File::create(path).map_err(|e| ArtefactError::io(path, e))?;
    let props = WriterProperties::builder().set_created_by("exmap".to_string()).build();
    let bad = |e: parquet::errors::ParquetError| ArtefactError::Format {
        path: path.to_path_buf(),
        format: "Parquet",
        reason: e.to_string(),
    };
    let mut writer = ArrowWriter::try_new(file, table.batch.schema(), Some(props)).map_err(bad)?;
    writer.write(&table.batch).map_err(bad)?;
    writer.close().map_err(bad)?;
    Ok(())
}

/// Reads a whole Parquet file into one table.
pub fn read_table(path: &Path) -> Result<Table, ArtefactError> {
    let file = File::open(path).map_err(|e| ArtefactError::io(path, e))?;
    let bad = |reason: String| ArtefactError::Format {
        path: path.to_path_buf(),
        format: "Parquet",
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    let batch =
        arrow::compute::concat_batches(&schema, &batches).map_err(|e| bad(e.to_string()))?;
    Ok(Table { batch, source: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table::builder()
            .str("id", &["a", "b"])
            .i64("y", vec![0, 1])
            .f64("score", vec![0.5, 1.5])
            .build()
    }

    #[test]
    fn round_trip_keeps_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_table(&path, &sample()).unwrap();
        let table = read_table(&path).unwrap();
        assert_eq!(table.str("id").unwrap(), vec!["a", "b"]);
        assert_eq!(table.i64("y").unwrap(), vec![0, 1]);
        assert_eq!(table.f64("score").unwrap(), vec![0.5, 1.5]);
        assert_eq!(table.f64("y").unwrap(), vec![0.0, 1.0]);
    }

    #[test]
    fn writing_twice_gives_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write_table(&a, &sample()).unwrap();
        write_table(&b, &sample()).unwrap();
        assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    }

    #[test]
    fn renamed_column_is_a_different_artefact() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write_table(&a, &Table::builder().i64("y", vec![0, 1]).build()).unwrap();
        write_table(&b, &Table::builder().i64("label", vec![0, 1]).build()).unwrap();
        assert_ne!(crate::hash_file(&a).unwrap(), crate::hash_file(&b).unwrap());
    }

    #[test]
    fn missing_column_names_the_file_and_the_columns_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.parquet");
        write_table(&path, &sample()).unwrap();
        let err = read_table(&path).unwrap().i64("group").unwrap_err().to_string();
        assert!(
            err.contains("manifest.parquet")
                && err.contains("`group`")
                && err.contains("id, y, score"),
            "{err}"
        );
        let err = read_table(&path).unwrap().i64("id").unwrap_err().to_string();
        assert!(err.contains("integer"), "{err}");
    }
}
