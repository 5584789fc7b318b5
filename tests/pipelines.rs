//! Whole pipelines through the `exmap` binary, on CI-sized data.
//!
//! One store is shared by the steps of `quickstart_sweep_rerun_and_verify`, in order: a 2 x 2
//! sweep from an empty store (ERM runs once for four cells), the plain pipeline (everything
//! upstream of the sweep's new cells is served from the cache), a re-run (every stage hits),
//! and `verify` (every stage re-executes to identical bytes).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn exmap(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_exmap"))
        .args(args)
        .current_dir(workspace())
        .env("RUST_LOG", "warn")
        .output()
        .expect("exmap runs");
    eprintln!("$ exmap {}\n{}", args.join(" "), String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// (node, status) pairs from the summary table `exmap run` prints.
fn statuses(output: &Output) -> Vec<(String, String)> {
    stdout(output)
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

#[test]
fn quickstart_sweep_rerun_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = dir.path().join("out");
    let (store, out) = (store.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--store", store, "--out", out, "--threads", "2"];

    // A 2 x 2 sweep added from the command line, from an empty store.
    let mut args = vec!["run", "pipelines/ci.yaml"];
    args.extend(["--set", "explain.method=lrp,gradcam", "--set", "cluster.k=eigengap,3"]);
    args.extend(common);
    let sweep = exmap(&args);
    assert!(sweep.status.success(), "sweep failed");
    let rows = statuses(&sweep);
    let count = |prefix: &str| rows.iter().filter(|(node, _)| node.starts_with(prefix)).count();
    assert_eq!(count("erm"), 2, "one `erm` and one `erm_eval` node: {rows:?}");
    assert!(rows.iter().any(|(n, s)| n == "erm" && s == "ran"));
    assert_eq!(count("explain@"), 2, "{rows:?}");
    assert_eq!(count("cluster@"), 4, "{rows:?}");
    assert_eq!(count("exmap_global@"), 4, "{rows:?}");
    // One report row per cell, each labelled with its cell.
    let report = std::fs::read_to_string(Path::new(out).join("report/markdown.md")).unwrap();
    let labelled: std::collections::BTreeSet<&str> =
        report.lines().filter(|l| l.starts_with("| ExMap global [")).collect();
    assert_eq!(labelled.len(), 4, "{report}");
    assert!(report.contains("| ExMap global [gradcam-3] |"), "{report}");

    // The plain pipeline shares everything upstream with the sweep's cells.
    let mut args = vec!["run", "pipelines/ci.yaml"];
    args.extend(common);
    let plain = exmap(&args);
    assert!(plain.status.success());
    let rows = statuses(&plain);
    for shared in ["data", "erm", "embed", "explain", "cluster", "george", "dfr_true"] {
        assert!(rows.contains(&(shared.to_string(), "hit".to_string())), "{shared}: {rows:?}");
    }
    let report = std::fs::read_to_string(Path::new(out).join("report/markdown.md")).unwrap();
    for label in [
        "ERM",
        "DFR (true groups)",
        "DFR (classes only)",
        "GEORGE-style",
        "ExMap local",
        "ExMap global",
    ] {
        assert!(report.contains(label), "report lacks `{label}`:\n{report}");
    }
    let table = exmap_artefact::read_table(&Path::new(out).join("report/table.parquet")).unwrap();
    assert_eq!(table.num_rows(), 6);
    assert!(table.f64("worst_group_accuracy").unwrap().iter().all(|v| (0.0..=1.0).contains(v)));

    // Nothing changed: every stage is served from the cache.
    let again = exmap(&args);
    assert!(again.status.success());
    let rows = statuses(&again);
    assert!(rows.iter().all(|(_, status)| status == "hit"), "{rows:?}");

    // Reproducibility: every stage re-executes to identical bytes.
    let mut args = vec!["verify", "pipelines/ci.yaml"];
    args.extend(["--store", store, "--threads", "2"]);
    let verify = exmap(&args);
    assert!(verify.status.success(), "verify found differences");
    assert!(stdout(&verify).contains("stages reproduce bit for bit"));

    // The store's summary, then a collection that keeps only the latest run's results: the
    // sweep's extra cells go, the plain pipeline stays fully cached.
    let status = exmap(&["status", "--store", store]);
    assert!(status.status.success());
    let text = stdout(&status);
    let records = text
        .lines()
        .find_map(|line| line.strip_prefix("run records: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert!(records.is_some_and(|n| n >= 3), "three runs were recorded: {text}");
    assert!(text.contains("latest run: 0 ran"), "{text}");
    let gc = exmap(&["gc", "--store", store, "--keep-runs", "1", "--grace-minutes", "0"]);
    assert!(gc.status.success());
    let text = stdout(&gc);
    assert!(!text.contains("removed 0 results"), "the sweep's cells were not collected: {text}");
    let after = exmap(&args_plain(store, out));
    let rows = statuses(&after);
    assert!(rows.iter().all(|(_, status)| status == "hit"), "{rows:?}");
}

fn args_plain<'a>(store: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["run", "pipelines/ci.yaml", "--store", store, "--out", out, "--threads", "2"]
}

#[test]
fn colored_mnist_runs_on_the_real_digits_at_ci_size() {
    let mnist = workspace().join("../shared/data/mnist");
    if !mnist.join("t10k-images-idx3-ubyte.gz").exists() {
        eprintln!("NOTE: {} is absent; the real Colored MNIST test is skipped", mnist.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = format!("data.root={}", mnist.display());
    let store = dir.path().join("store");
    let out = dir.path().join("out");
    let output = exmap(&[
        "run",
        "pipelines/cmnist.yaml",
        "--set",
        &root,
        "--set",
        "data.n_train=600",
        "--set",
        "data.n_val=300",
        "--set",
        "data.n_test=300",
        "--set",
        "erm.epochs=1",
        "--store",
        store.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "the Colored MNIST pipeline failed");
    let report = std::fs::read_to_string(out.join("report/markdown.md")).unwrap();
    assert!(report.contains("ExMap global"), "{report}");
}

fn run_with_env(pipeline: &str, store: &Path, env: &[(&str, Option<&Path>)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exmap"));
    command.args(["run", pipeline, "--store", store.to_str().unwrap()]).current_dir(workspace());
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.output().unwrap()
}

fn committed_results(store: &Path) -> usize {
    std::fs::read_dir(store.join("actions")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn paper_pipelines_without_their_data_stop_before_any_work_and_say_what_is_missing() {
    for (pipeline, variable) in [
        ("pipelines/waterbirds.yaml", "EXMAP_WATERBIRDS"),
        ("pipelines/celeba.yaml", "EXMAP_CELEBA"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let output = run_with_env(pipeline, &store, &[(variable, None), ("EXMAP_RESNET50", None)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{pipeline} should stop");
        assert!(
            stderr.contains("does not exist") && stderr.contains(variable),
            "{pipeline}: {stderr}"
        );
        assert_eq!(committed_results(&store), 0, "{pipeline} did work before stopping");
    }
}

#[test]
fn waterbirds_pipeline_reads_the_real_metadata_up_to_the_images() {
    let metadata = workspace().join("../shared/data/waterbirds/metadata.csv");
    if !metadata.exists() {
        eprintln!(
            "NOTE: {} is absent; the Waterbirds validation test is skipped",
            metadata.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("waterbirds");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&metadata, data.join("metadata.csv")).unwrap();
    let store = dir.path().join("store");

    // The data folder exists, the weights do not: the run stops before any work and says
    // how to get them.
    let missing = dir.path().join("missing.safetensors");
    let output = run_with_env(
        "pipelines/waterbirds.yaml",
        &store,
        &[("EXMAP_WATERBIRDS", Some(&data)), ("EXMAP_RESNET50", Some(&missing))],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cargo xtask weights resnet50"), "{stderr}");
    assert_eq!(committed_results(&store), 0);

    // With a weights file present, ingest parses all 11,788 real rows and stops at the first
    // image that is not there, naming it.
    let weights = dir.path().join("resnet50.safetensors");
    std::fs::write(&weights, b"not used").unwrap();
    let output = run_with_env(
        "pipelines/waterbirds.yaml",
        &store,
        &[("EXMAP_WATERBIRDS", Some(&data)), ("EXMAP_RESNET50", Some(&weights))],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success());
    assert!(text.contains("metadata.csv") && text.contains(".jpg"), "{text}");
    assert_eq!(committed_results(&store), 0);
}
