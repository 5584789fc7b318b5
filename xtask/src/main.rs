//! The developer and user entry point: `cargo xtask <command>`.
//!
//! xtask has no libtorch dependency, so it builds in seconds and can prepare libtorch for the
//! rest of the workspace: it installs the torch wheel on first use (see [`libtorch`]) and runs
//! every cargo build, test and `exmap` call with the environment libtorch needs.

mod libtorch;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use libtorch::Libtorch;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  run PIPELINE [ARGS...]   build `exmap` (release) and run a pipeline, e.g.
                           `cargo xtask run pipelines/quickstart.yaml --set erm.epochs=2`
  exmap ARGS...            build `exmap` (release) and run any of its subcommands
  test [ARGS...]           the whole test suite (release profile); extra args go to cargo test
  ci                       format check, clippy -D warnings, tests, reproducibility check
  weights ARCH [--out DIR] fetch torchvision ImageNet weights (resnet18/34/50) as safetensors
                           into `weights/` (where pipelines look for them by default)
  setup                    prepare libtorch only (installs the torch wheel on first use)
  env                      print the environment variables that builds and runs use

environment:
  LIBTORCH          use this libtorch instead of installing the torch wheel
  EXMAP_TORCH_VENV  folder of the torch virtual environment (default ~/.cache/exmap/torch-2.13.0)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    match command.as_str() {
        "run" => run_pipeline(rest),
        "exmap" => exmap(rest),
        "test" => test(rest),
        "ci" => ci(),
        "weights" => weights(rest),
        "setup" => Libtorch::prepare().map(|_| ExitCode::SUCCESS),
        "env" => print_env(),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").into()
}

fn cargo(libtorch: &Libtorch) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    libtorch.apply(&mut command);
    command
}

fn status(mut command: Command) -> Result<bool> {
    let status = command.status().with_context(|| format!("could not start {command:?}"))?;
    Ok(status.success())
}

fn build_exmap(libtorch: &Libtorch) -> Result<PathBuf> {
    let mut command = cargo(libtorch);
    command.args(["build", "--release", "--quiet", "--package", "exmap-cli", "--bin", "exmap"]);
    if !status(command)? {
        bail!("building `exmap` failed (cargo's messages are above)");
    }
    Ok(workspace_root().join("target").join("release").join("exmap"))
}

fn exmap_command(libtorch: &Libtorch, binary: &Path, args: &[String]) -> Command {
    let mut command = Command::new(binary);
    libtorch.apply(&mut command);
    command.args(args);
    command
}

fn run_pipeline(args: &[String]) -> Result<ExitCode> {
    let Some(pipeline) = args.first() else {
        bail!("`cargo xtask run` needs a pipeline file, e.g. `pipelines/quickstart.yaml`");
    };
    let path = Path::new(pipeline);
    if let Err(err) = std::fs::File::open(path) {
        bail!("cannot read pipeline `{}`: {err}", path.display());
    }
    let libtorch = Libtorch::prepare()?;
    let binary = build_exmap(&libtorch)?;
    let mut full = vec!["run".to_string()];
    full.extend(args.iter().cloned());
    Ok(exit_code(exmap_command(&libtorch, &binary, &full).status()?.code()))
}

fn exmap(args: &[String]) -> Result<ExitCode> {
    let libtorch = Libtorch::prepare()?;
    let binary = build_exmap(&libtorch)?;
    Ok(exit_code(exmap_command(&libtorch, &binary, args).status()?.code()))
}

fn test(args: &[String]) -> Result<ExitCode> {
    let libtorch = Libtorch::prepare()?;
    let mut command = cargo(&libtorch);
    command.args(["test", "--workspace", "--release"]).args(args);
    Ok(if status(command)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn ci() -> Result<ExitCode> {
    let libtorch = Libtorch::prepare()?;
    let mut fmt = cargo(&libtorch);
    fmt.args(["fmt", "--all", "--", "--check"]);
    if !status(fmt)? {
        bail!("`cargo fmt --check` found unformatted code: run `cargo fmt --all`");
    }
    let mut clippy = cargo(&libtorch);
    clippy.args(["clippy", "--workspace", "--all-targets", "--release", "--", "-D", "warnings"]);
    if !status(clippy)? {
        bail!("clippy found warnings");
    }
    if test(&[])? != ExitCode::SUCCESS {
        bail!("tests failed");
    }
    let binary = build_exmap(&libtorch)?;
    let store = std::env::temp_dir().join(format!("exmap-ci-verify-{}", std::process::id()));
    let args: Vec<String> = ["verify", "pipelines/ci.yaml", "--store"]
        .iter()
        .map(|s| s.to_string())
        .chain([store.display().to_string()])
        .collect();
    let ok = exmap_command(&libtorch, &binary, &args).current_dir(workspace_root()).status()?;
    let _ = std::fs::remove_dir_all(&store);
    if !ok.success() {
        bail!("`exmap verify pipelines/ci.yaml` found stages that do not reproduce");
    }
    Ok(ExitCode::SUCCESS)
}

fn weights(args: &[String]) -> Result<ExitCode> {
    let Some(arch) = args.first() else {
        bail!("`cargo xtask weights` needs an architecture: resnet18, resnet34 or resnet50");
    };
    if !["resnet18", "resnet34", "resnet50"].contains(&arch.as_str()) {
        bail!("unknown architecture `{arch}`: expected resnet18, resnet34 or resnet50");
    }
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => PathBuf::from(args.get(i + 1).context("`--out` needs a folder")?),
        None => workspace_root().join("weights"),
    };
    let libtorch = Libtorch::prepare()?;
    let python = libtorch.python().context(
        "`cargo xtask weights` converts torchvision's weights with Python; unset `LIBTORCH` so \
         that xtask manages its own torch environment",
    )?;
    let mut pip = Command::new(python.with_file_name("pip"));
    pip.args(["install", "--quiet", "torchvision==0.28.0", "safetensors"]);
    if !status(pip)? {
        bail!("`pip install torchvision==0.28.0 safetensors` failed (pip's message is above)");
    }
    let script = workspace_root().join("crates/models/scripts/torchvision_weights.py");
    let mut command = Command::new(python);
    command.arg(script).arg(arch).arg(&out);
    Ok(exit_code(command.status()?.code()))
}

fn print_env() -> Result<ExitCode> {
    let libtorch = Libtorch::prepare()?;
    println!("export LD_LIBRARY_PATH={}:$LD_LIBRARY_PATH", libtorch.lib_dir.display());
    if let Some(venv) = &libtorch.venv {
        println!("export LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV={}", venv.display());
        println!("export PATH={}:$PATH", venv.join("bin").display());
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_code(code: Option<i32>) -> ExitCode {
    match code {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    }
}
