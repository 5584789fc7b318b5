//! Behaviour of the runner on toy pipelines of tiny JSON artefacts.

mod toy;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use exmap_pipeline::{apply_overrides, build_plan, parse_pipeline, Override, Plan};
use exmap_runner::{NodeReport, QuietObserver, RunOptions, Runner, Status, Store};
use exmap_stage::Registry;

/// Tests share the `EXMAP_TOY_LOG` variable, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Project {
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("executions.log");
        std::env::set_var("EXMAP_TOY_LOG", &log);
        Self { dir, log }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn plan(&self, registry: &Registry, pipeline: &str, sets: &[&str]) -> Plan {
        let path = self.write("pipeline.yaml", pipeline);
        let mut file = parse_pipeline(&path).unwrap();
        let overrides: Vec<Override> = sets.iter().map(|s| Override::parse(s).unwrap()).collect();
        apply_overrides(&mut file, &overrides).unwrap();
        build_plan(&file, registry).unwrap()
    }

    fn run_with(&self, registry: &Registry, plan: &Plan, threads: usize) -> Vec<NodeReport> {
        let store = Store::open(&self.path("store")).unwrap();
        let options =
            RunOptions { threads, jobs: threads, libtorch: "test".into(), ..Default::default() };
        Runner::new(registry, store, options, &QuietObserver).run(plan).unwrap()
    }

    fn run(&self, pipeline: &str, sets: &[&str]) -> Vec<NodeReport> {
        let registry = toy::registry(false);
        let plan = self.plan(&registry, pipeline, sets);
        self.run_with(&registry, &plan, 2)
    }

    /// Node ids executed since the last call, sorted.
    fn executed(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        let mut ids: Vec<String> = text.lines().map(str::to_string).collect();
        ids.sort();
        ids
    }
}

fn statuses(reports: &[NodeReport]) -> Vec<(String, Status)> {
    reports.iter().map(|r| (r.node.clone(), r.status)).collect()
}

const CHAIN: &str = "name: chain
stages:
  - id: a
    uses: source
    params: { value: 3 }
  - id: b
    uses: scale
    inputs: { number: a }
  - id: c
    uses: scale
    inputs: { number: b.number }
    params: { factor: 10 }
  - id: side
    uses: source
    params: { value: 7 }
";

#[test]
fn first_run_executes_everything_and_second_run_hits_everything() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let first = project.run(CHAIN, &[]);
    assert!(first.iter().all(|r| r.status == Status::Ran), "{:?}", statuses(&first));
    assert_eq!(project.executed(), vec!["a", "b", "c", "side"]);
    let second = project.run(CHAIN, &[]);
    assert!(second.iter().all(|r| r.status == Status::Hit), "{:?}", statuses(&second));
    assert!(project.executed().is_empty());
}

#[test]
fn changing_a_parameter_reruns_the_stage_and_its_dependants_only() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.run(CHAIN, &[]);
    project.executed();
    project.run(CHAIN, &["b.factor=3"]);
    assert_eq!(project.executed(), vec!["b", "c"]);
}

#[test]
fn writing_out_a_default_or_reformatting_the_yaml_changes_no_key() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.run(CHAIN, &[]);
    project.executed();
    let reformatted = "stages:
- uses: source
  id: a
  params:
    value: 3
- {id: b, uses: scale, inputs: {number: a.number}, params: {factor: 2.0, round: false}}
- id: c
  params: {factor: 10}
  inputs:
    number: b
  uses: scale
- id: side
  uses: source
  params: {value: 7.0}
name: chain
seed: 1
";
    let reports = project.run(reformatted, &[]);
    assert!(reports.iter().all(|r| r.status == Status::Hit), "{:?}", statuses(&reports));
    assert!(project.executed().is_empty());
}

#[test]
fn keys_do_not_depend_on_thread_counts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let registry = toy::registry(false);
    let plan = project.plan(&registry, CHAIN, &[]);
    let one = project.run_with(&registry, &plan, 1);
    let other = Project::new();
    let four = other.run_with(&registry, &plan, 4);
    let keys = |reports: &[NodeReport]| reports.iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(keys(&one), keys(&four));
}

#[test]
fn a_code_edit_reruns_only_the_stages_built_from_the_edited_crate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.run(CHAIN, &[]);
    project.executed();
    let edited = toy::registry(true);
    let plan = project.plan(&edited, CHAIN, &[]);
    project.run_with(&edited, &plan, 2);
    // b re-runs because its code changed; c is also a `scale` stage.
    assert_eq!(project.executed(), vec!["b", "c"]);
}

#[test]
fn identical_bytes_from_a_rerun_stop_invalidation_downstream() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let pipeline = "name: cutoff
stages:
  - { id: a, uses: source, params: { value: 1.2 } }
  - { id: r, uses: scale, inputs: { number: a }, params: { factor: 1, round: true } }
  - { id: d, uses: scale, inputs: { number: r } }
";
    project.run(pipeline, &[]);
    project.executed();
    let reports = project.run(pipeline, &["a.value=1.4"]);
    assert_eq!(project.executed(), vec!["a", "r"]);
    assert_eq!(reports[2].status, Status::Hit);
}

#[test]
fn a_stage_that_skips_a_declared_output_fails_and_commits_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let pipeline =
        "name: skip\nstages:\n  - id: a\n    uses: source\n    params: { skip_output: true }\n  \
                    - id: b\n    uses: scale\n    inputs: { number: a }\n";
    let reports = project.run(pipeline, &[]);
    assert_eq!(reports[0].status, Status::Failed);
    assert!(
        reports[0].reason.contains("did not write its declared output `number`"),
        "{}",
        reports[0].reason
    );
    assert_eq!(reports[1].status, Status::Skipped);
    let store = Store::open(&project.path("store")).unwrap();
    assert!(store.actions().is_empty());
}

#[test]
fn an_external_input_changed_while_its_stage_runs_is_detected() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let data = project.write("value.txt", "5\n");
    let pipeline = format!(
        "name: ext\nstages:\n  - id: a\n    uses: source\n    params: {{ from: \"{}\", sleep_ms: 600 }}\n",
        data.display()
    );
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(250));
            std::fs::write(&data, "6\n").unwrap();
        })
    };
    let reports = project.run(&pipeline, &[]);
    writer.join().unwrap();
    assert_eq!(reports[0].status, Status::Failed);
    assert!(reports[0].reason.contains("changed while stage `a` ran"), "{}", reports[0].reason);
    assert!(Store::open(&project.path("store")).unwrap().actions().is_empty());

    // Unchanged, it commits; changed afterwards, it re-runs.
    assert_eq!(project.run(&pipeline, &[])[0].status, Status::Ran);
    std::fs::write(&data, "7\n").unwrap();
    assert_eq!(project.run(&pipeline, &[])[0].status, Status::Ran);
    assert_eq!(project.run(&pipeline, &[])[0].status, Status::Hit);
}

#[test]
fn a_flipped_byte_in_a_blob_is_evicted_and_recomputed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let first = project.run(CHAIN, &[]);
    project.executed();
    let store = Store::open(&project.path("store")).unwrap();
    let blob = store.blob_path(&first[0].outputs["number"].digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[2] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    // `b` must run (new factor), reads `a`'s blob, finds it corrupt and recomputes `a`.
    let reports = project.run(CHAIN, &["b.factor=5"]);
    assert!(reports.iter().all(|r| r.status != Status::Failed), "{:?}", statuses(&reports));
    assert_eq!(project.executed(), vec!["a", "b", "c"]);
    assert_eq!(exmap_artefact::hash_file(&blob).unwrap(), first[0].outputs["number"].digest);
}

#[test]
fn deciding_a_hit_reads_no_artefact_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let first = project.run(CHAIN, &[]);
    // Overwrite every blob with garbage of the same size: a run that read or hashed any
    // blob would notice; a run that decides by records and stats alone does not.
    let store = Store::open(&project.path("store")).unwrap();
    for report in &first {
        for output in report.outputs.values() {
            let path = store.blob_path(&output.digest);
            let size = std::fs::metadata(&path).unwrap().len() as usize;
            std::fs::write(&path, vec![b'x'; size]).unwrap();
        }
    }
    let second = project.run(CHAIN, &[]);
    assert!(second.iter().all(|r| r.status == Status::Hit), "{:?}", statuses(&second));
}

#[test]
fn a_three_by_two_sweep_runs_the_shared_upstream_once_and_six_cells() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let pipeline = "name: sweep
stages:
  - { id: up, uses: source }
  - { id: explain, uses: scale, inputs: { number: up }, matrix: { factor: [2, 3, 4] } }
  - { id: cluster, uses: scale, inputs: { number: explain }, matrix: { round: [true, false] } }
  - { id: report, uses: sum, inputs: { numbers: [cluster] } }
";
    let reports = project.run(pipeline, &[]);
    let ids: Vec<&str> = reports.iter().map(|r| r.node.as_str()).collect();
    assert!(ids.contains(&"explain@3") && ids.contains(&"cluster@3-false"), "{ids:?}");
    let executed = project.executed();
    assert_eq!(executed.iter().filter(|id| *id == "up").count(), 1);
    assert_eq!(executed.iter().filter(|id| id.starts_with("explain@")).count(), 3);
    assert_eq!(executed.iter().filter(|id| id.starts_with("cluster@")).count(), 6);
    assert_eq!(executed.iter().filter(|id| *id == "report").count(), 1);
    // Each `cluster` cell doubles its `explain` cell's value; two cells per `explain` cell.
    let total: f64 = (2 + 3 + 4) as f64 * 2.0 * 2.0;
    let report = reports.iter().find(|r| r.node == "report").unwrap();
    let store = Store::open(&project.path("store")).unwrap();
    let value: serde_json::Value =
        exmap_artefact::read_json(&store.blob_path(&report.outputs["number"].digest)).unwrap();
    assert_eq!(value["value"].as_f64(), Some(total));
}

#[test]
fn a_sweep_from_the_command_line_fans_out_without_editing_the_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let reports = project.run(CHAIN, &["b.factor=2,5"]);
    let ids: Vec<&str> = reports.iter().map(|r| r.node.as_str()).collect();
    assert_eq!(ids, vec!["a", "side", "b@2", "b@5", "c@2", "c@5"]);
}

#[test]
fn plan_names_the_reason_for_every_miss() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let registry = toy::registry(false);
    let store = || Store::open(&project.path("store")).unwrap();
    let options = || RunOptions { libtorch: "test".into(), ..Default::default() };
    let plan = project.plan(&registry, CHAIN, &[]);
    let entries =
        Runner::new(&registry, store(), options(), &QuietObserver).dry_run(&plan).unwrap();
    let reasons: Vec<(&str, &str)> =
        entries.iter().map(|e| (e.status, e.reason.as_str())).collect();
    assert_eq!(reasons[0], ("miss", "never ran"));
    assert_eq!(reasons[2].0, "pending");

    project.run_with(&registry, &plan, 2);
    let plan = project.plan(&registry, CHAIN, &["a.value=4"]);
    let entries =
        Runner::new(&registry, store(), options(), &QuietObserver).dry_run(&plan).unwrap();
    assert_eq!(entries[0].status, "miss");
    assert_eq!(entries[0].reason, "params.value: 3.0 -> 4.0");
    // Node order: a, side, b, c (by depth, then file order).
    assert_eq!(entries[1].status, "hit");
    assert!(entries[2].reason.contains("runs if `a` produces new bytes"), "{:?}", entries[2]);

    let edited = toy::registry(true);
    let plan = project.plan(&edited, CHAIN, &[]);
    let entries = Runner::new(&edited, store(), options(), &QuietObserver).dry_run(&plan).unwrap();
    assert!(entries[2].reason.contains("code"), "{:?}", entries[2]);
}

#[test]
fn two_concurrent_runs_sharing_a_stage_compute_it_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let pipeline =
        "name: slow\nstages:\n  - id: a\n    uses: source\n    params: { sleep_ms: 800 }\n  \
                    - id: b\n    uses: scale\n    inputs: { number: a }\n";
    let registry = toy::registry(false);
    let plan = project.plan(&registry, pipeline, &[]);
    let runs: Vec<Vec<NodeReport>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..2).map(|_| scope.spawn(|| project.run_with(&registry, &plan, 1))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(runs.iter().flatten().all(|r| r.status != Status::Failed));
    assert_eq!(project.executed(), vec!["a", "b"]);
}

#[test]
fn a_copied_project_folder_is_fully_up_to_date() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.write("value.txt", "9\n");
    let pipeline =
        "name: copy\nstages:\n  - id: a\n    uses: source\n    params: { from: value.txt }\n  \
                    - id: b\n    uses: scale\n    inputs: { number: a }\n";
    let old_dir = std::env::current_dir().unwrap();
    std::env::set_current_dir(project.dir.path()).unwrap();
    project.run(pipeline, &[]);
    project.executed();

    let copy = tempfile::tempdir().unwrap();
    copy_dir(project.dir.path(), copy.path());
    std::env::set_current_dir(copy.path()).unwrap();
    let registry = toy::registry(false);
    let plan = project.plan(&registry, pipeline, &[]);
    let store = Store::open(&copy.path().join("store")).unwrap();
    let options = RunOptions { libtorch: "test".into(), ..Default::default() };
    let reports = Runner::new(&registry, store, options, &QuietObserver).run(&plan).unwrap();
    std::env::set_current_dir(old_dir).unwrap();
    assert!(reports.iter().all(|r| r.status == Status::Hit), "{:?}", statuses(&reports));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn gc_keeps_what_recent_runs_and_pins_reach_and_removes_the_rest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.run(CHAIN, &["a.value=4"]);
    project.run(CHAIN, &[]);
    project.executed();
    let store = Store::open(&project.path("store")).unwrap();
    assert_eq!(store.actions().len(), 7, "four nodes, then a, b and c again");

    // A killed run leaves a scratch folder named after a process that no longer exists (pid
    // numbers stop at 2^22 on Linux).
    let orphan = project.path("store/tmp/0123456789ab-4194399-0");
    std::fs::create_dir_all(&orphan).unwrap();
    let none = std::collections::BTreeSet::new();

    // With a grace period nothing unreferenced is old enough: only records go.
    let summary = exmap_runner::gc(&store, 1, &none, Duration::from_secs(3600)).unwrap();
    assert_eq!((summary.kept_actions, summary.removed_actions), (4, 3));
    assert_eq!((summary.removed_blobs, summary.young_blobs), (0, 3));
    assert_eq!((summary.removed_scratch, summary.removed_runs), (1, 1));
    assert!(!orphan.exists());

    let summary = exmap_runner::gc(&store, 1, &none, Duration::ZERO).unwrap();
    assert_eq!((summary.kept_actions, summary.removed_blobs, summary.young_blobs), (4, 3, 0));

    // The latest run is intact; the collected variant recomputes what changed.
    let again = project.run(CHAIN, &[]);
    assert!(again.iter().all(|r| r.status == Status::Hit), "{:?}", statuses(&again));
    project.run(CHAIN, &["a.value=4"]);
    assert_eq!(project.executed(), vec!["a", "b", "c"]);

    // A pinned key survives even when no kept run record reaches it.
    let pinned: std::collections::BTreeSet<_> = store.actions().iter().map(|r| r.key).collect();
    let summary = exmap_runner::gc(&store, 0, &pinned, Duration::ZERO).unwrap();
    assert_eq!((summary.removed_actions, summary.removed_blobs), (0, 0));
    let summary = exmap_runner::gc(&store, 0, &Default::default(), Duration::ZERO).unwrap();
    assert_eq!(summary.kept_actions, 0);
    assert!(store.actions().is_empty());
    assert_eq!(exmap_runner::store_status(&store).unwrap().blobs, 0);
}

#[test]
fn status_counts_results_blobs_and_the_latest_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let store = Store::open(&project.path("store")).unwrap();
    let empty = exmap_runner::store_status(&store).unwrap();
    assert_eq!((empty.results, empty.blobs, empty.runs), (0, 0, 0));
    assert!(empty.latest_run.is_none());

    project.run(CHAIN, &[]);
    let first = exmap_runner::store_status(&store).unwrap();
    assert_eq!((first.results, first.runs, first.scratch_folders), (4, 1, 0));
    // `a` and `side` differ in value, `b` doubles `a`, `c` scales `b`: four distinct blobs.
    assert_eq!(first.blobs, 4);
    assert!(first.blob_bytes > 0);
    let latest = first.latest_run.unwrap();
    assert_eq!((latest.ran, latest.hit, latest.failed), (4, 0, 0));

    project.run(CHAIN, &[]);
    let second = exmap_runner::store_status(&store).unwrap();
    assert_eq!((second.results, second.runs), (4, 2));
    let latest = second.latest_run.unwrap();
    assert_eq!((latest.ran, latest.hit), (0, 4));
}

#[test]
fn one_result_reached_by_several_nodes_of_a_run_is_computed_once_without_deadlock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    // Four nodes with one key (same kind, parameters and input), each doing parallel work
    // while it holds the key's lock: more of them than jobs.
    let mut pipeline = String::from("name: twins\nstages:\n  - id: a\n    uses: source\n");
    for i in 0..4 {
        pipeline.push_str(&format!(
            "  - id: b{i}\n    uses: scale\n    inputs: {{ number: a }}\n    \
             params: {{ parallel_ms: 40 }}\n"
        ));
    }
    let path = project.write("pipeline.yaml", &pipeline);
    let store = project.path("store");
    // A detached thread, so that a deadlocked run fails the test instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let registry = toy::registry(false);
        let plan = build_plan(&parse_pipeline(&path).unwrap(), &registry).unwrap();
        let options =
            RunOptions { threads: 2, jobs: 2, libtorch: "test".into(), ..Default::default() };
        let store = Store::open(&store).unwrap();
        let _ =
            sender.send(Runner::new(&registry, store, options, &QuietObserver).run(&plan).unwrap());
    });
    let reports = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the run deadlocked on a key lock it already held");
    let ran = reports.iter().filter(|r| r.status == Status::Ran).count();
    let hit = reports.iter().filter(|r| r.status == Status::Hit).count();
    assert_eq!((ran, hit), (2, 3), "{:?}", statuses(&reports));
    let executed = project.executed();
    assert_eq!(executed.iter().filter(|id| id.starts_with('b')).count(), 1, "{executed:?}");
}
