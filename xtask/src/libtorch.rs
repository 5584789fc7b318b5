//! Preparing libtorch for every build, test and run.
//!
//! tch binds the libtorch shipped inside the `torch` Python wheel (`LIBTORCH_USE_PYTORCH=1`).
//! On first use we create a virtual environment in a per-user cache folder, so that every
//! clone and CI run on the machine shares one multi-gigabyte install, pip-install the pinned
//! torch version into it, check the version, and write a marker file last. A folder without
//! the marker is a half-made environment (an interrupted download, say): it is removed and
//! rebuilt, never trusted. A user with their own libtorch sets `LIBTORCH` and we install
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The torch version tch 0.26 is built against.
pub const TORCH_VERSION: &str = "2.13.0";

const MARKER: &str = ".exmap-ready";

/// Where libtorch comes from, and the environment every cargo and binary call needs.
#[derive(Debug, Clone)]
pub struct Libtorch {
    pub lib_dir: PathBuf,
    /// The virtual environment, when libtorch comes from the torch wheel.
    pub venv: Option<PathBuf>,
}

impl Libtorch {
    /// Finds or prepares libtorch.
    pub fn prepare() -> Result<Self> {
        if let Some(root) = std::env::var_os("LIBTORCH") {
            let root = PathBuf::from(root);
            let lib_dir = root.join("lib");
            if !lib_dir.is_dir() {
                bail!(
                    "`LIBTORCH` is set to `{}`, but it has no `lib` folder\n\
                     Point `LIBTORCH` at an unpacked libtorch {TORCH_VERSION} (the folder \
                     holding `lib/` and `include/`), or unset it to let xtask install the \
                     torch wheel into a virtual environment.",
                    root.display()
                );
            }
            return Ok(Self { lib_dir, venv: None });
        }
        let venv = venv_dir()?;
        let marker = venv.join(MARKER);
        if let Ok(text) = std::fs::read_to_string(&marker) {
            let lib_dir = PathBuf::from(text.trim());
            if lib_dir.is_dir() {
                return Ok(Self { lib_dir, venv: Some(venv) });
            }
        }
        let python = std::env::var("EXMAP_PYTHON_BOOTSTRAP").unwrap_or_else(|_| "python3".into());
        install(&venv, &python)?;
        let lib_dir = PathBuf::from(std::fs::read_to_string(&marker)?.trim());
        Ok(Self { lib_dir, venv: Some(venv) })
    }

    /// Applies the environment for building against and running with this libtorch.
    pub fn apply(&self, command: &mut Command) {
        let mut library_path = self.lib_dir.as_os_str().to_owned();
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
            library_path.push(":");
            library_path.push(old);
        }
        command.env("LD_LIBRARY_PATH", library_path);
        if let Some(venv) = &self.venv {
            let mut path = venv.join("bin").into_os_string();
            if let Some(old) = std::env::var_os("PATH") {
                path.push(":");
                path.push(old);
            }
            command.env("PATH", path).env("VIRTUAL_ENV", venv).env("LIBTORCH_USE_PYTORCH", "1");
            command.env("EXMAP_PYTHON", venv.join("bin").join("python"));
        }
    }

    pub fn python(&self) -> Option<PathBuf> {
        self.venv.as_ref().map(|venv| venv.join("bin").join("python"))
    }
}

/// The virtual environment folder: `EXMAP_TORCH_VENV`, or the per-user cache folder.
pub fn venv_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EXMAP_TORCH_VENV") {
        return Ok(PathBuf::from(dir));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context(
                "neither `HOME` nor `XDG_CACHE_HOME` is set, so there is no per-user cache \
                 folder; set `EXMAP_TORCH_VENV` to the folder for the torch environment",
            )?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(cache.join("exmap").join(format!("torch-{TORCH_VERSION}")))
}

fn install(venv: &Path, python: &str) -> Result<()> {
    if venv.exists() {
        eprintln!("xtask: `{}` is an unfinished torch environment; rebuilding it", venv.display());
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("failed to remove `{}`", venv.display()))?;
    }
    eprintln!(
        "xtask: first use: installing torch=={TORCH_VERSION} (about 3 GB with its CUDA \
         libraries, 1-5 minutes) into `{}`; later calls reuse it",
        venv.display()
    );
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    let status = Command::new(python).args(["-m", "venv"]).arg(venv).status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => bail!(
            "`{python} -m venv {}` failed ({status})\n\
             Install Python 3 with the venv module (Debian: `apt-get install python3-venv`), \
             or point `EXMAP_PYTHON_BOOTSTRAP` at a Python 3 that has it.",
            venv.display()
        ),
        Err(err) => bail!(
            "could not start `{python}`: {err}\n\
             xtask needs Python 3 to install the torch wheel that provides libtorch. Install \
             Python 3 (Debian: `apt-get install python3 python3-venv`), set \
             `EXMAP_PYTHON_BOOTSTRAP` to its path, or set `LIBTORCH` to an existing libtorch \
             {TORCH_VERSION}."
        ),
    }

    let pip = venv.join("bin").join("pip");
    let status = Command::new(&pip)
        .args(["install", "--progress-bar", "on", &format!("torch=={TORCH_VERSION}")])
        .status()
        .with_context(|| format!("could not start `{}`", pip.display()))?;
    if !status.success() {
        bail!(
            "`pip install torch=={TORCH_VERSION}` failed ({status})\n\
             Check that this machine reaches the Python package index (pip's own message is \
             above), then run the command again: the unfinished environment at `{}` will be \
             rebuilt. Alternatively set `LIBTORCH` to an unpacked libtorch {TORCH_VERSION}.",
            venv.display()
        );
    }

    let python = venv.join("bin").join("python");
    let output = Command::new(&python)
        .args(["-c", "import torch, os; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()
        .with_context(|| format!("could not start `{}`", python.display()))?;
    if !output.status.success() {
        bail!(
            "torch was installed into `{}` but does not import:\n{}",
            venv.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let version = lines.next().unwrap_or_default().trim().to_string();
    let lib_dir = lines.next().unwrap_or_default().trim().to_string();
    let base_version = version.split('+').next().unwrap_or_default();
    if base_version != TORCH_VERSION {
        bail!(
            "the torch environment at `{}` has torch {version}, but tch expects \
             {TORCH_VERSION}; delete the folder and run again",
            venv.display()
        );
    }
    std::fs::write(venv.join(MARKER), format!("{lib_dir}\n"))
        .with_context(|| format!("failed to write `{}`", venv.join(MARKER).display()))?;
    eprintln!("xtask: torch {version} ready at `{lib_dir}`");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_made_environment_is_removed_and_a_missing_python_is_explained() {
        let dir = std::env::temp_dir().join(format!("exmap-xtask-venv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("left-over"), "from an interrupted install").unwrap();

        let err = install(&dir, "/nonexistent/python3").unwrap_err().to_string();
        assert!(!dir.join("left-over").exists(), "the unfinished environment was trusted");
        assert!(err.contains("could not start `/nonexistent/python3`"), "{err}");
        assert!(err.contains("EXMAP_PYTHON_BOOTSTRAP") && err.contains("LIBTORCH"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
