//! Helpers shared by the integration tests: golden files written by
//! `tests/goldens/make_goldens.py`, and agreement measures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use exmap_artefact::TensorFile;
use tch::{Kind, Tensor};

/// The folder the golden script wrote into, or `None` (with a note on stderr) when the
/// Python environment with zennit and torchvision is not available.
pub fn goldens() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(make_goldens).as_ref().map(tempfile::TempDir::path)
}

fn make_goldens() -> Option<tempfile::TempDir> {
    let python = std::env::var_os("EXMAP_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join(".cache/exmap/torch-2.13.0/bin/python")
    });
    if !python.exists() {
        eprintln!(
            "note: skipping golden parity: no Python at `{}` (set EXMAP_PYTHON)",
            python.display()
        );
        return None;
    }
    let probe =
        Command::new(&python).args(["-c", "import zennit, torchvision, safetensors"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!(
            "note: skipping golden parity: `{}` lacks zennit/torchvision/safetensors \
             (pip install torchvision==0.28.0 zennit safetensors numpy)",
            python.display()
        );
        return None;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/make_goldens.py");
    let out = Command::new(&python).arg(&script).arg(dir.path()).output().expect("run python");
    assert!(
        out.status.success(),
        "make_goldens.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

/// Golden tensor `name` of `file` as an f32 (or i64) tch tensor.
pub fn golden(file: &Path, name: &str) -> Tensor {
    let file = TensorFile::open(file).expect("golden file");
    let (dtype, shape) = file.info(name).expect("golden tensor");
    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    match dtype {
        exmap_artefact::DType::F32 => {
            Tensor::from_slice(&file.f32(name, None).unwrap().1).view(shape.as_slice())
        }
        exmap_artefact::DType::I64 => {
            Tensor::from_slice(&file.i64(name, None).unwrap().1).view(shape.as_slice())
        }
        other => panic!("unexpected golden dtype {other:?}"),
    }
}

/// Per-sample Pearson correlation and relative L2 error ‖a - b‖ / ‖b‖ of [N, ...] tensors.
pub fn agreement(a: &Tensor, b: &Tensor) -> Vec<(f64, f64)> {
    let (a, b) = (a.flatten(1, -1).to_kind(Kind::Double), b.flatten(1, -1).to_kind(Kind::Double));
    (0..a.size()[0])
        .map(|i| {
            let (x, y) = (a.get(i), b.get(i));
            let (xc, yc) = (&x - x.mean(Kind::Double), &y - y.mean(Kind::Double));
            let corr = (&xc * &yc).sum(Kind::Double).double_value(&[])
                / (xc.norm().double_value(&[]) * yc.norm().double_value(&[])).max(1e-300);
            let rel = (&x - &y).norm().double_value(&[]) / y.norm().double_value(&[]).max(1e-300);
            (corr, rel)
        })
        .collect()
}
