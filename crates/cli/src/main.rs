//! `exmap`: the command-line front end of the pipeline runner.

mod commands;
mod logging;
mod progress;
mod stages;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ExMap pipelines: explanation-based pseudo groups for group-robust classifiers.
#[derive(Debug, Parser)]
#[command(name = "exmap", version, propagate_version = true)]
struct Cli {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    /// More detail (-v debug, -vv trace); `RUST_LOG` overrides both flags.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less detail (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline, reusing every cached stage whose inputs did not change.
    Run(RunArgs),
    /// Dry run: each stage's key, hit or miss, and the reason for a miss.
    Plan(PipelineArgs),
    /// Which parts of a stage's key changed since it last ran.
    Why {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// A stage id (all its sweep cells) or a node id such as `explain@gradcam`.
        stage: String,
    },
    /// Re-execute every stage into scratch and compare output digests (reproducibility).
    Verify(RunArgs),
    /// Remove cached results that no recent run or pinned pipeline reaches.
    Gc {
        #[command(flatten)]
        store: StoreArgs,
        /// How many recent run records keep their results.
        #[arg(long, default_value_t = 10)]
        keep_runs: usize,
        /// Keep everything this pipeline currently reaches (repeatable).
        #[arg(long = "pin")]
        pins: Vec<PathBuf>,
        /// Leave unreferenced blobs younger than this many minutes (a run in progress may be
        /// about to commit them).
        #[arg(long, default_value_t = 60)]
        grace_minutes: u64,
    },
    /// Print the expanded stage graph as DOT or Mermaid.
    Dag {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long, value_enum, default_value_t = DagFormatArg::Dot)]
        format: DagFormatArg,
    },
    /// Summarise the store: results, blobs, size, recent runs.
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the stage kinds a pipeline can use, with their parameters.
    Stages,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DagFormatArg {
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
struct StoreArgs {
    /// The artefact store.
    #[arg(long, env = "EXMAP_STORE", default_value = "cache")]
    store: PathBuf,
}

#[derive(Debug, Args)]
struct PipelineArgs {
    /// The pipeline file (YAML).
    pipeline: PathBuf,
    /// Override a parameter (`stage.param=value`), sweep it (`stage.param=a,b`), or set the
    /// seed (`seed=3`). Repeatable.
    #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
    sets: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Where the final stages' outputs are copied (default `out/<pipeline name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Total threads for tensor and data work (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Most stages running at once (default: the thread count).
    #[arg(long)]
    jobs: Option<usize>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format == LogFormat::Json, cli.verbose, cli.quiet);
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
