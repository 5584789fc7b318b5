//! Every pipeline mistake gives an error naming the file, the stage and the line and column.

use std::path::Path;

use exmap_pipeline::{build_plan, yaml_text};
use exmap_stage::{types, ArtefactType, Format, Port, Registry, Stage, StageContext, StageError};
use serde::{Deserialize, Serialize};

const NUMBER: ArtefactType = ArtefactType { name: "number", format: Format::Json };

struct Emit;

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EmitParams {
    epochs: u32,
    lr: f64,
}

impl Default for EmitParams {
    fn default() -> Self {
        Self { epochs: 2, lr: 0.1 }
    }
}

impl Stage for Emit {
    type Params = EmitParams;
    fn kind(&self) -> &'static str {
        "emit"
    }
    fn code_fingerprint(&self) -> &'static str {
        "emit"
    }
    fn describe(&self) -> &'static str {
        "emits"
    }
    fn inputs(&self, _: &EmitParams) -> Vec<Port> {
        Vec::new()
    }
    fn outputs(&self, _: &EmitParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn validate(&self, params: &EmitParams) -> Result<(), String> {
        if params.lr <= 0.0 {
            return Err(format!("`lr` must be positive, got {}", params.lr));
        }
        Ok(())
    }
    fn run(&self, _: &EmitParams, _: &StageContext) -> Result<(), StageError> {
        Ok(())
    }
}

struct Explain;

impl Stage for Explain {
    type Params = EmitParams;
    fn kind(&self) -> &'static str {
        "explain"
    }
    fn code_fingerprint(&self) -> &'static str {
        "explain"
    }
    fn describe(&self) -> &'static str {
        "wants heatmaps"
    }
    fn inputs(&self, _: &EmitParams) -> Vec<Port> {
        vec![Port::required("heatmaps", types::HEATMAPS), Port::optional("extra", NUMBER)]
    }
    fn outputs(&self, _: &EmitParams) -> Vec<Port> {
        vec![Port::required("number", NUMBER)]
    }
    fn run(&self, _: &EmitParams, _: &StageContext) -> Result<(), StageError> {
        Ok(())
    }
}

fn check(text: &str, expected: &str) {
    let mut registry = Registry::new();
    registry.register(Emit).register(Explain);
    let message = match yaml_text(Path::new("p.yaml"), text) {
        Err(err) => err.to_string(),
        Ok(file) => match build_plan(&file, &registry) {
            Err(err) => err.to_string(),
            Ok(_) => "no error".to_string(),
        },
    };
    assert_eq!(message, expected, "\n{text}");
}

#[test]
fn unknown_parameter_suggests_the_close_one() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n    params:\n      epoch: 3\n",
        "p.yaml:6:7: stage `a`: unknown parameter `epoch` (did you mean `epochs`?)",
    );
}

#[test]
fn unknown_stage_kind_suggests_and_lists_the_known_ones() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: emitt\n",
        "p.yaml:4:5: stage `a`: unknown stage kind `emitt` (did you mean `emit`?); known kinds: emit, explain",
    );
}

#[test]
fn bad_parameter_value_is_named() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n    params: { epochs: many }\n",
        "p.yaml:5:5: stage `a`: bad parameters: invalid type: string \"many\", expected u32",
    );
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n    params: { lr: -1 }\n",
        "p.yaml:5:5: stage `a`: bad parameters: `lr` must be positive, got -1",
    );
}

#[test]
fn mistyped_input_names_both_types() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n  - id: b\n    uses: explain\n    inputs: { heatmaps: a.number }\n",
        "p.yaml:7:15: stage `b`: input `heatmaps` expects heatmaps (safetensors), but `a.number` gives number (json)",
    );
}

#[test]
fn missing_input_unknown_input_and_unknown_stage_are_errors() {
    check(
        "name: t\nstages:\n  - id: b\n    uses: explain\n",
        "p.yaml:3:5: stage `b`: required input `heatmaps` (heatmaps (safetensors)) is not connected",
    );
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n  - id: b\n    uses: explain\n    inputs: { heatmap: a }\n",
        "p.yaml:7:15: stage `b`: unknown input `heatmap` (did you mean `heatmaps`?); this stage takes: heatmaps, extra",
    );
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n  - id: b\n    uses: explain\n    inputs: { heatmaps: c, extra: aa }\n",
        "p.yaml:7:28: stage `b`: input `extra` refers to `aa`, which is not an earlier stage (did you mean `a`?)",
    );
}

#[test]
fn cycles_are_reported_with_their_members() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: explain\n    inputs: { heatmaps: b, extra: b }\n  \
         - id: b\n    uses: explain\n    inputs: { heatmaps: a, extra: a }\n",
        "p.yaml:6:5: stage `b`: the stages form a cycle through: b -> a",
    );
}

#[test]
fn duplicate_ids_and_unknown_top_level_keys_are_errors() {
    check(
        "name: t\nstages:\n  - id: a\n    uses: emit\n  - id: a\n    uses: emit\n",
        "p.yaml:3:5: stage `a`: duplicate stage id `a`",
    );
    check(
        "name: t\nstages:\n  - id: a\n    use: emit\n",
        "p.yaml:4:5: stages[0]: unknown field `use`, expected one of `id`, `uses`, `params`, `inputs`, `matrix`, `seed` at line 4 column 5",
    );
}
