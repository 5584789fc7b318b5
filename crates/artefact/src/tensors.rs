//! Tensors in the safetensors format: an 8-byte little-endian header length, a JSON header
//! naming each tensor's dtype, shape and byte range, then the raw little-endian data.
//!
//! The writer is ours so that the bytes are deterministic: tensors are laid out in name
//! order and the optional metadata map is written with sorted keys. Files written by the
//! Python `safetensors` package (torchvision weights, peer outputs) read the same way.
//! Reading memory-maps the file, so a large image tensor is streamed by the batch, not held.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::ArtefactError;

/// Element types the pipeline stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    U8,
    I32,
    I64,
    F32,
    F64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "U8",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::F32 => "F32",
            DType::F64 => "F64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "U8" => DType::U8,
            "I32" => DType::I32,
            "I64" => DType::I64,
            "F32" => DType::F32,
            "F64" => DType::F64,
            _ => return None,
        })
    }
}

/// An owned tensor: dtype, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor {
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and length disagree");
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self { dtype: DType::F32, shape, data }
    }

    pub fn from_f64(shape: Vec<usize>, values: &[f64]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and length disagree");
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self { dtype: DType::F64, shape, data }
    }

    pub fn from_i64(shape: Vec<usize>, values: &[i64]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and length disagree");
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self { dtype: DType::I64, shape, data }
    }

    pub fn from_u8(shape: Vec<usize>, values: Vec<u8>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "shape and length disagree");
        Self { dtype: DType::U8, shape, data: values }
    }
}

/// Collects named tensors and writes them as one safetensors file.
#[derive(Default)]
pub struct TensorWriter {
    tensors: BTreeMap<String, Tensor>,
    metadata: BTreeMap<String, String>,
}

impl TensorWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, tensor: Tensor) -> &mut Self {
        self.tensors.insert(name.into(), tensor);
        self
    }

    /// A free-form string entry of the header's `__metadata__` map.
    pub fn metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    pub fn write(&self, path: &Path) -> Result<(), ArtefactError> {
        let mut header = Map::new();
        if !self.metadata.is_empty() {
            let entries: Map<String, Value> =
                self.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            header.insert("__metadata__".into(), Value::Object(entries));
        }
        let mut offset = 0usize;
        for (name, tensor) in &self.tensors {
            let end = offset + tensor.data.len();
            header.insert(
                name.clone(),
                json!({"dtype": tensor.dtype.name(), "shape": tensor.shape, "data_offsets": [offset, end]}),
            );
            offset = end;
        }
        let mut header_bytes = serde_json::to_vec(&Value::Object(header)).expect("json header");
        while !header_bytes.len().is_multiple_of(8) {
            header_bytes.push(b' ');
        }

        let mut file = File::create(path).map_err(|e| ArtefactError::io(path, e))?;
        let mut write =
            |bytes: &[u8]| file.write_all(bytes).map_err(|e| ArtefactError::io(path, e));
        write(&(header_bytes.len() as u64).to_le_bytes())?;
        write(&header_bytes)?;
        for tensor in self.tensors.values() {
            write(&tensor.data)?;
        }
        Ok(())
    }
}

/// Writes large tensors to a safetensors file chunk by chunk, so that a dataset's images (or a
/// split's heatmaps) never need to be in memory at once. The header is written first from the
/// declared dtypes and shapes; the tensors' bytes then follow one another in the declared
/// order, and [`TensorStreamWriter::finish`] checks that exactly the declared number of bytes
/// arrived.
pub struct TensorStreamWriter {
    path: PathBuf,
    file: std::io::BufWriter<File>,
    expected: usize,
    written: usize,
}

impl TensorStreamWriter {
    /// A file holding the single tensor `name`.
    pub fn create(
        path: &Path,
        name: &str,
        dtype: DType,
        shape: &[usize],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, ArtefactError> {
        Self::create_many(path, &[(name, dtype, shape)], metadata)
    }

    /// A file holding `tensors`, whose bytes are written in the order listed.
    pub fn create_many(
        path: &Path,
        tensors: &[(&str, DType, &[usize])],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, ArtefactError> {
        let mut header = Map::new();
        if !metadata.is_empty() {
            let entries: Map<String, Value> =
                metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            header.insert("__metadata__".into(), Value::Object(entries));
        }
        let mut expected = 0;
        for &(name, dtype, shape) in tensors {
            let bytes = shape.iter().product::<usize>() * dtype.size();
            header.insert(
                name.to_string(),
                json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [expected, expected + bytes]}),
            );
            expected += bytes;
        }
        let mut header_bytes = serde_json::to_vec(&Value::Object(header)).expect("json header");
        while !header_bytes.len().is_multiple_of(8) {
            header_bytes.push(b' ');
        }
        let file = File::create(path).map_err(|e| ArtefactError::io(path, e))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        file.write_all(&(header_bytes.len() as u64).to_le_bytes())
            .and_then(|()| file.write_all(&header_bytes))
            .map_err(|e| ArtefactError::io(path, e))?;
        Ok(Self { path: path.to_path_buf(), file, expected, written: 0 })
    }

    /// Appends the next bytes, in row-major order, the tensors one after another.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> Result<(), ArtefactError> {
        if self.written + bytes.len() > self.expected {
            return Err(ArtefactError::Format {
                path: self.path.clone(),
                format: "safetensors",
                reason: format!("more than the declared {} bytes written", self.expected),
            });
        }
        self.file.write_all(bytes).map_err(|e| ArtefactError::io(&self.path, e))?;
        self.written += bytes.len();
        Ok(())
    }

    pub fn finish(mut self) -> Result<(), ArtefactError> {
        if self.written != self.expected {
            return Err(ArtefactError::Format {
                path: self.path.clone(),
                format: "safetensors",
                reason: format!("{} of the declared {} bytes written", self.written, self.expected),
            });
        }
        self.file.flush().map_err(|e| ArtefactError::io(&self.path, e))
    }
}

#[derive(Clone, Debug)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Range<usize>,
}

/// A memory-mapped safetensors file.
pub struct TensorFile {
    path: PathBuf,
    map: memmap2::Mmap,
    data_start: usize,
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

impl TensorFile {
    pub fn open(path: &Path) -> Result<Self, ArtefactError> {
        let file = File::open(path).map_err(|e| ArtefactError::io(path, e))?;
        // SAFETY: artefacts are written once and never modified in place; the store renames
        // finished files into place, so the mapped bytes do not change under us.
        #[expect(unsafe_code, reason = "memory-mapping write-once artefacts")]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ArtefactError::io(path, e))?;
        let bad = |reason: String| ArtefactError::Format {
            path: path.to_path_buf(),
            format: "safetensors",
            reason,
        };
        if map.len() < 8 {
            return Err(bad("shorter than its 8-byte header length".into()));
        }
        let header_len = u64::from_le_bytes(map[..8].try_into().expect("8 bytes")) as usize;
        if header_len > map.len() - 8 {
            return Err(bad(format!("header length {header_len} runs past the end")));
        }
        let data_start = 8 + header_len;
        let header: Map<String, Value> = serde_json::from_slice(&map[8..data_start])
            .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
        let data_len = map.len() - data_start;

        let mut entries = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                if let Value::Object(items) = value {
                    for (k, v) in items {
                        metadata.insert(k, v.as_str().unwrap_or_default().to_string());
                    }
                }
                continue;
            }
            let entry = parse_entry(&value)
                .ok_or_else(|| bad(format!("tensor `{name}` has a malformed header entry")))?;
            let elements: usize = entry.shape.iter().product();
            if entry.bytes.end > data_len || entry.bytes.len() != elements * entry.dtype.size() {
                return Err(bad(format!("tensor `{name}` has inconsistent byte range")));
            }
            entries.insert(name, entry);
        }
        Ok(Self { path: path.to_path_buf(), map, data_start, entries, metadata })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The dtype and shape of tensor `name`.
    pub fn info(&self, name: &str) -> Result<(DType, &[usize]), ArtefactError> {
        let entry = self.entry(name)?;
        Ok((entry.dtype, &entry.shape))
    }

    /// The raw bytes of tensor `name`, borrowed from the map.
    pub fn bytes(&self, name: &str) -> Result<&[u8], ArtefactError> {
        let entry = self.entry(name)?;
        Ok(&self.map[self.data_start + entry.bytes.start..self.data_start + entry.bytes.end])
    }

    /// Tensor `name` checked to have `dtype` and `rank` dimensions (any rank when `None`).
    pub fn expect(
        &self,
        name: &str,
        dtype: DType,
        rank: Option<usize>,
    ) -> Result<&[usize], ArtefactError> {
        let entry = self.entry(name)?;
        if entry.dtype != dtype {
            return Err(ArtefactError::mismatch(
                &self.path,
                "tensor",
                name,
                format!("has dtype {} where {} is expected", entry.dtype.name(), dtype.name()),
            ));
        }
        if let Some(rank) = rank {
            if entry.shape.len() != rank {
                return Err(ArtefactError::mismatch(
                    &self.path,
                    "tensor",
                    name,
                    format!("has shape {:?} where rank {rank} is expected", entry.shape),
                ));
            }
        }
        Ok(&entry.shape)
    }

    /// An owned copy of tensor `name`.
    pub fn tensor(&self, name: &str) -> Result<Tensor, ArtefactError> {
        let entry = self.entry(name)?;
        Ok(Tensor {
            dtype: entry.dtype,
            shape: entry.shape.clone(),
            data: self.bytes(name)?.to_vec(),
        })
    }

    /// Tensor `name` as `f32` values, checked for dtype and rank; returns shape and values.
    pub fn f32(
        &self,
        name: &str,
        rank: Option<usize>,
    ) -> Result<(Vec<usize>, Vec<f32>), ArtefactError> {
        let shape = self.expect(name, DType::F32, rank)?.to_vec();
        let values = self
            .bytes(name)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok((shape, values))
    }

    /// Tensor `name` as `i64` values, checked for dtype and rank; returns shape and values.
    pub fn i64(
        &self,
        name: &str,
        rank: Option<usize>,
    ) -> Result<(Vec<usize>, Vec<i64>), ArtefactError> {
        let shape = self.expect(name, DType::I64, rank)?.to_vec();
        let values = self
            .bytes(name)?
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok((shape, values))
    }

    fn entry(&self, name: &str) -> Result<&Entry, ArtefactError> {
        self.entries
            .get(name)
            .ok_or_else(|| ArtefactError::missing(&self.path, "tensor", name, &self.names()))
    }
}

fn parse_entry(value: &Value) -> Option<Entry> {
    let dtype = DType::parse(value.get("dtype")?.as_str()?)?;
    let shape = value
        .get("shape")?
        .as_array()?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<Vec<_>>>()?;
    let offsets = value.get("data_offsets")?.as_array()?;
    let start = offsets.first()?.as_u64()? as usize;
    let end = offsets.get(1)?.as_u64()? as usize;
    (start <= end).then_some(Entry { dtype, shape, bytes: start..end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_dtype_shape_values_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let mut writer = TensorWriter::new();
        writer
            .add("b", Tensor::from_f32(vec![2, 3], &[1.0, -2.0, 3.5, 0.0, 5.0, 6.0]))
            .add("a", Tensor::from_i64(vec![3], &[7, -8, 9]))
            .add("img", Tensor::from_u8(vec![1, 3], vec![1, 2, 3]))
            .metadata("size", "28");
        writer.write(&path).unwrap();

        let file = TensorFile::open(&path).unwrap();
        assert_eq!(file.names(), vec!["a", "b", "img"]);
        assert_eq!(
            file.f32("b", Some(2)).unwrap(),
            (vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.0])
        );
        assert_eq!(file.i64("a", Some(1)).unwrap().1, vec![7, -8, 9]);
        assert_eq!(file.bytes("img").unwrap(), &[1, 2, 3]);
        assert_eq!(file.metadata("size"), Some("28"));
    }

    #[test]
    fn streamed_tensor_equals_the_one_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let bytes: Vec<u8> = (0..24u8).collect();
        let mut metadata = BTreeMap::new();
        metadata.insert("classes".to_string(), "2".to_string());
        let mut stream =
            TensorStreamWriter::create(&a, "images", DType::U8, &[2, 3, 2, 2], &metadata).unwrap();
        stream.write_chunk(&bytes[..12]).unwrap();
        stream.write_chunk(&bytes[12..]).unwrap();
        stream.finish().unwrap();
        TensorWriter::new()
            .add("images", Tensor::from_u8(vec![2, 3, 2, 2], bytes))
            .metadata("classes", "2")
            .write(&b)
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn several_streamed_tensors_in_name_order_equal_those_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let maps: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        let (pred, rows) = (vec![1i64, 0, 1], vec![4i64, 7, 9]);
        let tensors = [
            ("heatmaps", DType::F32, &[3usize, 2][..]),
            ("pred", DType::I64, &[3][..]),
            ("rows", DType::I64, &[3][..]),
        ];
        let mut stream = TensorStreamWriter::create_many(&a, &tensors, &BTreeMap::new()).unwrap();
        for chunk in maps.chunks(2) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            stream.write_chunk(&bytes).unwrap();
        }
        for values in [&pred, &rows] {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            stream.write_chunk(&bytes).unwrap();
        }
        stream.finish().unwrap();
        TensorWriter::new()
            .add("heatmaps", Tensor::from_f32(vec![3, 2], &maps))
            .add("pred", Tensor::from_i64(vec![3], &pred))
            .add("rows", Tensor::from_i64(vec![3], &rows))
            .write(&b)
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn short_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let mut stream =
            TensorStreamWriter::create(&path, "x", DType::U8, &[4], &BTreeMap::new()).unwrap();
        stream.write_chunk(&[1, 2]).unwrap();
        assert!(stream.finish().unwrap_err().to_string().contains("2 of the declared 4"));
    }

    #[test]
    fn equal_bytes_with_other_shape_or_dtype_give_other_digests() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, tensor: Tensor| {
            let path = dir.path().join(name);
            TensorWriter::new().add("x", tensor).write(&path).unwrap();
            crate::hash_file(&path).unwrap()
        };
        let values = [1.0f32, 2.0, 3.0, 4.0];
        let flat = write("flat", Tensor::from_f32(vec![4], &values));
        let square = write("square", Tensor::from_f32(vec![2, 2], &values));
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let as_u8 = write("u8", Tensor::from_u8(vec![16], bytes));
        assert_ne!(flat, square);
        assert_ne!(flat, as_u8);
    }

    #[test]
    fn wrong_dtype_or_rank_is_an_error_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        TensorWriter::new()
            .add("heatmaps", Tensor::from_i64(vec![2], &[1, 2]))
            .write(&path)
            .unwrap();
        let file = TensorFile::open(&path).unwrap();
        let err = file.f32("heatmaps", Some(2)).unwrap_err().to_string();
        assert!(err.contains("`heatmaps`") && err.contains("I64"), "{err}");
        let err = file.f32("missing", None).unwrap_err().to_string();
        assert!(err.contains("`missing`") && err.contains("heatmaps"), "{err}");
    }
}
