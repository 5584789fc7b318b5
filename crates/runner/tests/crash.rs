//! The runner across processes. Killing it mid-stage or between blob write and commit leaves
//! a store from which the next run succeeds, with no manual step, and re-executes the
//! interrupted stage; two runner processes sharing a stage both succeed and compute it once.
//!
//! The runner under test runs in a child process (this test binary re-invoked on the ignored
//! `child_runner_entry` function) so that it can be killed with SIGKILL.

mod toy;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exmap_pipeline::{build_plan, parse_pipeline};
use exmap_runner::{QuietObserver, RunOptions, Runner, Status, Store};

const PIPELINE: &str =
    "name: crash\nstages:\n  - id: a\n    uses: source\n    params: { sleep_ms: 1500 }\n  \
                        - id: b\n    uses: scale\n    inputs: { number: a }\n";

/// The tests set `EXMAP_TOY_LOG` for the in-process runs, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_here(dir: &Path) -> Vec<exmap_runner::NodeReport> {
    let registry = toy::registry(false);
    let plan = build_plan(&parse_pipeline(&dir.join("pipeline.yaml")).unwrap(), &registry).unwrap();
    let store = Store::open(&dir.join("store")).unwrap();
    let options = RunOptions { libtorch: "test".into(), ..Default::default() };
    Runner::new(&registry, store, options, &QuietObserver).run(&plan).unwrap()
}

/// Not a test: the body of the child process the crash tests kill.
#[test]
#[ignore = "entry point of the child process spawned by the crash tests"]
fn child_runner_entry() {
    if let Ok(dir) = std::env::var("EXMAP_CHILD_DIR") {
        run_here(Path::new(&dir));
    }
}

fn spawn_child(dir: &Path, fault: Option<&str>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_runner_entry", "--exact", "--ignored", "--nocapture"])
        .env("EXMAP_CHILD_DIR", dir)
        .env("EXMAP_TOY_LOG", dir.join("executions.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(fault) = fault {
        command.env("EXMAP_FAULT", fault);
    }
    command.spawn().unwrap()
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn blob_count(store: &Path) -> usize {
    walk(&store.join("blobs"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

fn check_recovery(dir: &Path) {
    std::env::set_var("EXMAP_TOY_LOG", dir.join("after.log"));
    let reports = run_here(dir);
    assert!(reports.iter().all(|r| r.status == Status::Ran), "{reports:?}");
    let executed = std::fs::read_to_string(dir.join("after.log")).unwrap();
    assert_eq!(executed.lines().collect::<Vec<_>>(), vec!["a", "b"]);
    let again = run_here(dir);
    assert!(again.iter().all(|r| r.status == Status::Hit));
}

#[test]
fn sigkill_mid_stage_leaves_a_store_the_next_run_recovers_from() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).unwrap();
    let mut child = spawn_child(dir.path(), None);
    let log = dir.path().join("executions.log");
    wait_until("stage `a` to start", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains('a'))
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&dir.path().join("store")).unwrap();
    assert!(store.actions().is_empty(), "a killed stage must not be committed");
    check_recovery(dir.path());
}

#[test]
fn sigkill_between_blob_write_and_commit_leaves_a_store_the_next_run_recovers_from() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).unwrap();
    let mut child = spawn_child(dir.path(), Some("before-commit:a"));
    let store_dir = dir.path().join("store");
    wait_until("the blob of `a` to be written", || blob_count(&store_dir) == 1);
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&store_dir).unwrap();
    assert!(store.actions().is_empty(), "the commit point was never reached");
    assert_eq!(blob_count(&store_dir), 1, "the orphan blob is still there");
    check_recovery(dir.path());
}

#[test]
fn two_runner_processes_sharing_a_stage_both_succeed_and_compute_it_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), PIPELINE).unwrap();
    let children = [spawn_child(dir.path(), None), spawn_child(dir.path(), None)];
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a concurrent run failed");
    }
    let executed = std::fs::read_to_string(dir.path().join("executions.log")).unwrap();
    assert_eq!(executed.lines().collect::<Vec<_>>(), vec!["a", "b"]);
    let store = Store::open(&dir.path().join("store")).unwrap();
    assert_eq!(store.actions().len(), 2);
}
