//! The content-addressed pipeline runner.
//!
//! The runner takes a validated [`exmap_pipeline::Plan`], computes each node's key from what
//! its result depends on ([`key`]), serves committed results from the [`store`], executes
//! what is missing through the stage contract (independent nodes in parallel within a thread
//! budget), and commits each result atomically. It knows stages only through
//! [`exmap_stage::DynStage`].

mod error;
mod exec;
mod external;
pub mod key;
mod report;
pub mod store;

pub use error::RunnerError;
pub use exec::{NodeReport, Observer, QuietObserver, RunOptions, Runner, Status};
pub use report::{
    gc, render_dag, store_status, DagFormat, GcSummary, PlanEntry, RunSummary, StoreStatus,
    VerifyEntry,
};
pub use store::Store;
