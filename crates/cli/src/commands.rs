//! The subcommands: parse the pipeline, build the plan, hand it to the runner, print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use exmap_pipeline::{apply_overrides, build_plan, parse_pipeline, Override, Plan};
use exmap_runner::{
    gc, render_dag, store_status, DagFormat, QuietObserver, RunOptions, Runner, Status, Store,
};
use exmap_stage::{Device, Registry};

use crate::progress::TerminalProgress;
use crate::stages::registry;
use crate::{Command, DagFormatArg, PipelineArgs, RunArgs};

/// The libtorch version every key records.
const LIBTORCH_VERSION: &str = "2.13.0";

pub fn dispatch(command: Command) -> Result<ExitCode> {
    let registry = registry();
    match command {
        Command::Run(args) => run(&registry, &args),
        Command::Plan(args) => plan(&registry, &args),
        Command::Why { pipeline, stage } => why(&registry, &pipeline, &stage),
        Command::Verify(args) => verify(&registry, &args),
        Command::Gc { store, keep_runs, pins, grace_minutes } => {
            let grace = std::time::Duration::from_secs(60 * grace_minutes);
            collect(&registry, &store.store, keep_runs, &pins, grace)
        }
        Command::Dag { pipeline, format } => dag(&registry, &pipeline, format),
        Command::Status { store } => status(&store.store),
        Command::Stages => stages(&registry),
    }
}

fn load_plan(registry: &Registry, args: &PipelineArgs) -> Result<Plan> {
    let mut file = parse_pipeline(&args.pipeline)?;
    let overrides = args
        .sets
        .iter()
        .map(|text| {
            Override::parse(text).map_err(|reason| anyhow::anyhow!("bad `--set {text}`: {reason}"))
        })
        .collect::<Result<Vec<_>>>()?;
    apply_overrides(&mut file, &overrides)?;
    Ok(build_plan(&file, registry)?)
}

fn options(args: &RunArgs, plan: &Plan) -> Result<RunOptions> {
    let mut options = RunOptions::default();
    if let Some(threads) = args.threads {
        options.threads = threads.max(1);
        options.jobs = options.threads;
    }
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.max(1);
    }
    options.libtorch = LIBTORCH_VERSION.to_string();
    options.device = parse_device(&args.device)?;
    options.export = Some(args.out.clone().unwrap_or_else(|| Path::new("out").join(&plan.name)));
    Ok(options)
}

/// Options for commands that only compute keys (plan, why, gc pins).
fn planning_options() -> RunOptions {
    RunOptions { libtorch: LIBTORCH_VERSION.into(), ..RunOptions::default() }
}

fn parse_device(text: &str) -> Result<Device> {
    let device = match text {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(index) => Device::Cuda(index),
            None => bail!("unknown device `{other}`: use `cpu`, `cuda` or `cuda:N`"),
        },
    };
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count();
        if index as i64 >= count {
            bail!(
                "`--device {text}` asked for CUDA device {index}, but this libtorch sees {count} \
                 CUDA device(s); run with `--device cpu`, or point `LIBTORCH` at a CUDA build"
            );
        }
    }
    Ok(device)
}

fn run(registry: &Registry, args: &RunArgs) -> Result<ExitCode> {
    let plan = load_plan(registry, &args.pipeline)?;
    let options = options(args, &plan)?;
    let export = options.export.clone();
    let store = Store::open(&args.pipeline.store.store)?;
    let progress = TerminalProgress::new(plan.nodes.len());
    let runner = Runner::new(registry, store, options, &progress);
    let started = std::time::Instant::now();
    let reports = runner.run(&plan)?;
    progress.finish();

    println!("{:<32} {:<10} {:>9}  reason", "stage", "status", "seconds");
    for report in &reports {
        let status = format!("{:?}", report.status).to_lowercase();
        println!("{:<32} {:<10} {:>9.2}  {}", report.node, status, report.seconds, report.reason);
    }
    let ran = reports.iter().filter(|r| r.status == Status::Ran).count();
    let hits = reports.iter().filter(|r| r.status == Status::Hit).count();
    let failed =
        reports.iter().filter(|r| matches!(r.status, Status::Failed | Status::Skipped)).count();
    println!(
        "\n{} stages: {ran} ran, {hits} cached, {failed} failed or skipped, in {:.2} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = export {
        println!("results: {}", dir.display());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn plan(registry: &Registry, args: &PipelineArgs) -> Result<ExitCode> {
    let plan = load_plan(registry, args)?;
    let store = Store::open(&args.store.store)?;
    let runner = Runner::new(registry, store, planning_options(), &QuietObserver);
    println!("{:<32} {:<12} {:<8} {:<14} reason", "stage", "kind", "status", "key");
    for entry in runner.dry_run(&plan)? {
        let key = entry.key.map(|k| k.short()).unwrap_or_else(|| "-".into());
        println!(
            "{:<32} {:<12} {:<8} {:<14} {}",
            entry.node, entry.kind, entry.status, key, entry.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn why(registry: &Registry, args: &PipelineArgs, stage: &str) -> Result<ExitCode> {
    let plan = load_plan(registry, args)?;
    let store = Store::open(&args.store.store)?;
    let runner = Runner::new(registry, store, planning_options(), &QuietObserver);
    for (node, lines) in runner.why(&plan, stage)? {
        println!("{node}:");
        for line in lines {
            for part in line.split("; ") {
                println!("  - {part}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(registry: &Registry, args: &RunArgs) -> Result<ExitCode> {
    let plan = load_plan(registry, &args.pipeline)?;
    let options = RunOptions { export: None, ..options(args, &plan)? };
    let store = Store::open(&args.pipeline.store.store)?;
    let runner = Runner::new(registry, store, options, &QuietObserver);
    let entries = runner.verify(&plan)?;
    let mut bad = 0;
    for entry in &entries {
        if entry.identical {
            println!("{:<32} identical", entry.node);
            continue;
        }
        bad += 1;
        if let Some(error) = &entry.error {
            println!("{:<32} FAILED: {error}", entry.node);
        }
        for (output, committed, again) in &entry.differing {
            println!(
                "{:<32} DIFFERS: output `{output}` committed {} re-executed {}",
                entry.node,
                committed.short(),
                again.short()
            );
        }
    }
    println!("\n{} of {} stages reproduce bit for bit", entries.len() - bad, entries.len());
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn collect(
    registry: &Registry,
    store_dir: &Path,
    keep_runs: usize,
    pins: &[PathBuf],
    grace: std::time::Duration,
) -> Result<ExitCode> {
    let store = Store::open(store_dir)?;
    let mut pinned = BTreeSet::new();
    for pin in pins {
        let args = PipelineArgs {
            pipeline: pin.clone(),
            sets: Vec::new(),
            store: crate::StoreArgs { store: store_dir.to_path_buf() },
        };
        let plan = load_plan(registry, &args)
            .with_context(|| format!("pinned pipeline `{}`", pin.display()))?;
        let runner = Runner::new(registry, store.clone(), planning_options(), &QuietObserver);
        pinned.extend(
            runner.dry_run(&plan)?.into_iter().filter(|e| e.status == "hit").filter_map(|e| e.key),
        );
    }
    let summary = gc(&store, keep_runs, &pinned, grace)?;
    println!(
        "kept {} results; removed {} results, {} blobs ({:.1} MiB), {} scratch folders and {} \
         run records",
        summary.kept_actions,
        summary.removed_actions,
        summary.removed_blobs,
        summary.removed_bytes as f64 / (1 << 20) as f64,
        summary.removed_scratch,
        summary.removed_runs,
    );
    if summary.young_blobs > 0 {
        println!(
            "left {} unreferenced blobs younger than {} minutes (see --grace-minutes)",
            summary.young_blobs,
            grace.as_secs() / 60
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn dag(registry: &Registry, args: &PipelineArgs, format: DagFormatArg) -> Result<ExitCode> {
    let plan = load_plan(registry, args)?;
    let format = match format {
        DagFormatArg::Dot => DagFormat::Dot,
        DagFormatArg::Mermaid => DagFormat::Mermaid,
    };
    print!("{}", render_dag(&plan, format));
    Ok(ExitCode::SUCCESS)
}

fn status(store_dir: &Path) -> Result<ExitCode> {
    let store = Store::open(store_dir)?;
    let status = store_status(&store)?;
    println!("store: {}", store_dir.display());
    println!("committed results: {}", status.results);
    println!("blobs: {} ({:.1} MiB)", status.blobs, status.blob_bytes as f64 / (1 << 20) as f64);
    println!("scratch folders: {}", status.scratch_folders);
    println!("run records: {}", status.runs);
    if let Some(run) = &status.latest_run {
        println!(
            "latest run: {} ran, {} hit, {} failed, {} skipped, {:.1} s of stage time ({})",
            run.ran,
            run.hit,
            run.failed,
            run.skipped,
            run.seconds,
            run.record.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stages(registry: &Registry) -> Result<ExitCode> {
    for stage in registry.iter() {
        println!("{:<20} {}", stage.kind(), stage.describe());
        let defaults = stage.resolve(&serde_json::Value::Null).unwrap_or_default();
        if let serde_json::Value::Object(map) = defaults {
            for (key, value) in map {
                println!("    {key}: {value}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
