//! Toy stages for runner tests: tiny JSON artefacts, counted executions.
//!
//! Each execution appends the node id to the file named by `EXMAP_TOY_LOG`, so tests can
//! count what ran (also across processes).

use std::io::Write;
use std::path::Path;

use exmap_artefact::{read_json, write_json};
use exmap_stage::{types, ArtefactType, Format, Port, Registry, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const NUMBER: ArtefactType = ArtefactType { name: "number", format: Format::Json };

fn log_execution(ctx: &StageContext) {
    if let Ok(path) = std::env::var("EXMAP_TOY_LOG") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        writeln!(file, "{}", ctx.stage_id).unwrap();
    }
}

fn read_number(path: &Path) -> Result<f64, StageError> {
    let value: Value = read_json(path)?;
    Ok(value["value"].as_f64().unwrap_or(0.0))
}

/// Emits `value` (or the content of file `from`, when set).
pub struct Source;

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceParams {
    pub value: f64,
    pub from: Option<String>,
    pub sleep_ms: u64,
    pub skip_output: bool,
}

impl Default for SourceParams {
    fn default() -> Self {
        Self { value: 1.0, from: None, sleep_ms: 0, skip_output: false }
    }
}

impl Stage for Source {
    type Params = SourceParams;
    fn kind(&self) -> &'static str {
        "source"
    }
    fn code_fingerprint(&self) -> &'static str {
        "toy-source-v1"
    }
    fn describe(&self) -> &'static str {
        "emits a number"
    }
    fn inputs(&self, _params: &SourceParams) -> Vec<Port> {
        Vec::new()
    }
    fn outputs(&self, _params: &SourceParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn external_inputs(&self, params: &SourceParams) -> Vec<std::path::PathBuf> {
        params.from.iter().map(Into::into).collect()
    }
    fn run(&self, params: &SourceParams, ctx: &StageContext) -> Result<(), StageError> {
        log_execution(ctx);
        std::thread::sleep(std::time::Duration::from_millis(params.sleep_ms));
        if params.skip_output {
            return Ok(());
        }
        let value = match &params.from {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| StageError::io(Path::new(path), e))?
                .trim()
                .parse()
                .map_err(|_| StageError::data(format!("`{path}` holds no number")))?,
            None => params.value,
        };
        write_json(ctx.output("number")?, &json!({ "value": value }))?;
        Ok(())
    }
}

/// Multiplies its input by `factor`; `round` rounds the result (so small input changes can
/// give identical output bytes).
pub struct Scale;

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleParams {
    pub factor: f64,
    pub round: bool,
    /// Milliseconds of parallel work (eight rayon tasks on a pool of the stage's own, as the
    /// real stages build) before the result.
    pub parallel_ms: u64,
}

impl Default for ScaleParams {
    fn default() -> Self {
        Self { factor: 2.0, round: false, parallel_ms: 0 }
    }
}

impl Stage for Scale {
    type Params = ScaleParams;
    fn kind(&self) -> &'static str {
        "scale"
    }
    fn code_fingerprint(&self) -> &'static str {
        "toy-scale-v1"
    }
    fn describe(&self) -> &'static str {
        "multiplies a number"
    }
    fn inputs(&self, _params: &ScaleParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn outputs(&self, _params: &ScaleParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn run(&self, params: &ScaleParams, ctx: &StageContext) -> Result<(), StageError> {
        log_execution(ctx);
        if params.parallel_ms > 0 {
            use rayon::prelude::*;
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| {
                (0..8).into_par_iter().for_each(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(params.parallel_ms));
                });
            });
        }
        let mut value = read_number(ctx.input("number")?)? * params.factor;
        if params.round {
            value = value.round();
        }
        write_json(ctx.output("number")?, &json!({ "value": value }))?;
        Ok(())
    }
}

/// Sums every gathered input.
pub struct Sum;

#[derive(Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SumParams {}

impl Stage for Sum {
    type Params = SumParams;
    fn kind(&self) -> &'static str {
        "sum"
    }
    fn code_fingerprint(&self) -> &'static str {
        "toy-sum-v1"
    }
    fn describe(&self) -> &'static str {
        "sums numbers"
    }
    fn inputs(&self, _params: &SumParams) -> Vec<Port> {
        vec![Port::many("numbers", NUMBER)]
    }
    fn outputs(&self, _params: &SumParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn run(&self, _params: &SumParams, ctx: &StageContext) -> Result<(), StageError> {
        log_execution(ctx);
        let mut total = 0.0;
        for path in ctx.inputs("numbers") {
            total += read_number(path)?;
        }
        write_json(ctx.output("number")?, &json!({ "value": total }))?;
        Ok(())
    }
}

/// A stage whose port expects another type, to test type checks.
pub struct WantsHeatmaps;

impl Stage for WantsHeatmaps {
    type Params = SumParams;
    fn kind(&self) -> &'static str {
        "wants-heatmaps"
    }
    fn code_fingerprint(&self) -> &'static str {
        "toy-heatmaps-v1"
    }
    fn describe(&self) -> &'static str {
        "expects heatmaps"
    }
    fn inputs(&self, _params: &SumParams) -> Vec<Port> {
        vec![Port::required("heatmaps", types::HEATMAPS)]
    }
    fn outputs(&self, _params: &SumParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn run(&self, _params: &SumParams, _ctx: &StageContext) -> Result<(), StageError> {
        Ok(())
    }
}

/// The toy registry, with `scale`'s fingerprint optionally changed (a code edit).
pub fn registry(edited_scale: bool) -> Registry {
    let mut registry = Registry::new();
    registry.register(Source).register(Sum).register(WantsHeatmaps);
    if edited_scale {
        registry.register(EditedScale);
    } else {
        registry.register(Scale);
    }
    registry
}

/// `Scale` after a code edit: same behaviour, new fingerprint.
pub struct EditedScale;

impl Stage for EditedScale {
    type Params = ScaleParams;
    fn kind(&self) -> &'static str {
        "scale"
    }
    fn code_fingerprint(&self) -> &'static str {
        "toy-scale-v2"
    }
    fn describe(&self) -> &'static str {
        "multiplies a number"
    }
    fn inputs(&self, params: &ScaleParams) -> Vec<Port> {
        Scale.inputs(params)
    }
    fn outputs(&self, params: &ScaleParams) -> Vec<Port> {
        Scale.outputs(params)
    }
    fn run(&self, params: &ScaleParams, ctx: &StageContext) -> Result<(), StageError> {
        Scale.run(params, ctx)
    }
}
