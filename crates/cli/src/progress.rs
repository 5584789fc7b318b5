//! Progress on a terminal: one line for the run (stages done of total) and one per running
//! stage with its own step. Nothing is drawn when stderr is not a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use exmap_runner::{NodeReport, Observer};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct TerminalProgress {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    pub fn new(total: usize) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("stages {pos}/{len} {wide_bar} {elapsed}")
                .expect("valid template"),
        );
        Self { multi, overall, bars: Mutex::new(HashMap::new()) }
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

impl Observer for TerminalProgress {
    fn started(&self, node: &str, kind: &str) {
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:>24} {msg:<16} {bar:30} {pos}/{len}")
                .expect("valid template"),
        );
        bar.set_prefix(node.to_string());
        bar.set_message(kind.to_string());
        self.bars.lock().expect("progress lock").insert(node.to_string(), bar);
    }

    fn progress(&self, node: &str, step: &str, done: u64, total: u64) {
        if let Some(bar) = self.bars.lock().expect("progress lock").get(node) {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(step.to_string());
        }
    }

    fn finished(&self, report: &NodeReport) {
        if let Some(bar) = self.bars.lock().expect("progress lock").remove(&report.node) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.overall.inc(1);
    }
}
