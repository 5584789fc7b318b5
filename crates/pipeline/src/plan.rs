//! Validating a pipeline against the stage registry and expanding its sweeps.
//!
//! Every check runs before anything executes: stage kinds, parameters (through each stage's
//! typed parameters, so unknown keys and bad values are caught here), input names, artefact
//! types of every connection, and cycles. Sweeps expand in dependency order: a stage with a
//! `matrix:` becomes one node per combination of values; a stage fed by a swept stage through
//! a single-artefact port fans out with it; a gathering port collects every cell. A node's
//! cell is the set of (stage, parameter) = value choices it descends from, and its id lists
//! their values in pipeline order, e.g. `cluster@gradcam-kmeans`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use exmap_stage::{Port, Registry};
use petgraph::graph::DiGraph;
use serde_json::Value;

use crate::error::did_you_mean;
use crate::yaml::{locate_key, locate_stage};
use crate::{PipelineError, PipelineErrorKind, PipelineFile, StageSpec};

/// A validated pipeline: nodes in an order where every input comes first.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub file: PathBuf,
    pub seed: u64,
    pub nodes: Vec<Node>,
}

/// One stage execution.
#[derive(Clone, Debug)]
pub struct Node {
    /// Unique, readable id: the stage id, plus `@cell` for a swept node.
    pub id: String,
    pub stage_id: String,
    pub kind: String,
    /// Sweep choices this node descends from: (`stage.param`, value label).
    pub cell: Vec<(String, String)>,
    /// Parameters with every default resolved: what the key hashes.
    pub params: Value,
    pub seed: u64,
    pub inputs: BTreeMap<String, Vec<Binding>>,
    pub outputs: Vec<Port>,
    pub external: Vec<PathBuf>,
}

/// An input connection: output `output` of node `node` (an index into [`Plan::nodes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub node: usize,
    pub output: String,
}

impl Plan {
    pub fn node(&self, id: &str) -> Option<(usize, &Node)> {
        self.nodes.iter().enumerate().find(|(_, n)| n.id == id)
    }

    /// Indices of the nodes that consume an output of node `index`.
    pub fn consumers(&self, index: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].inputs.values().flatten().any(|b| b.node == index))
            .collect()
    }
}

/// Checks `file` against `registry` and expands it into a plan.
pub fn build_plan(file: &PipelineFile, registry: &Registry) -> Result<Plan, PipelineError> {
    let err = |stage: &str, key: Option<&str>, kind: PipelineErrorKind| {
        let location = match key {
            Some(key) => locate_key(&file.source, stage, key),
            None => locate_stage(&file.source, stage),
        };
        PipelineError::new(&file.path, kind).in_stage(stage).at(location)
    };

    let mut index_of = HashMap::new();
    for (i, stage) in file.stages.iter().enumerate() {
        let valid = !stage.id.is_empty()
            && stage.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(err(&stage.id, None, PipelineErrorKind::BadId(stage.id.clone())));
        }
        if index_of.insert(stage.id.as_str(), i).is_some() {
            return Err(err(&stage.id, None, PipelineErrorKind::DuplicateId(stage.id.clone())));
        }
        if registry.get(&stage.uses).is_none() {
            let kinds = registry.kinds();
            return Err(err(
                &stage.id,
                Some("uses"),
                PipelineErrorKind::UnknownKind {
                    kind: stage.uses.clone(),
                    hint: did_you_mean(&stage.uses, kinds.iter().copied()),
                    known: kinds.join(", "),
                },
            ));
        }
    }

    let order = stage_order(file, &index_of, &err)?;
    let mut nodes: Vec<Node> = Vec::new();
    let mut nodes_of: HashMap<&str, Vec<usize>> = HashMap::new();
    for &s in &order {
        let spec = &file.stages[s];
        let created = expand_stage(file, spec, registry, &nodes, &nodes_of, &err)?;
        let start = nodes.len();
        nodes.extend(created);
        nodes_of.insert(spec.id.as_str(), (start..nodes.len()).collect());
    }
    Ok(Plan { name: file.name.clone(), file: file.path.clone(), seed: file.seed, nodes })
}

type ErrFn<'a> = dyn Fn(&str, Option<&str>, PipelineErrorKind) -> PipelineError + 'a;

/// Stage indices in dependency order; unknown references and cycles are errors.
fn stage_order(
    file: &PipelineFile,
    index_of: &HashMap<&str, usize>,
    err: &ErrFn,
) -> Result<Vec<usize>, PipelineError> {
    let mut graph = DiGraph::<usize, ()>::new();
    let ids: Vec<_> = (0..file.stages.len()).map(|i| graph.add_node(i)).collect();
    for (i, stage) in file.stages.iter().enumerate() {
        for (port, input) in &stage.inputs {
            for target in input.targets() {
                let name = target.split('.').next().unwrap_or(target);
                let Some(&j) = index_of.get(name) else {
                    return Err(err(
                        &stage.id,
                        Some(port),
                        PipelineErrorKind::UnknownStage {
                            port: port.clone(),
                            target: target.to_string(),
                            hint: did_you_mean(name, index_of.keys().copied()),
                        },
                    ));
                };
                graph.add_edge(ids[j], ids[i], ());
            }
        }
    }
    match petgraph::algo::toposort(&graph, None) {
        Ok(order) => {
            // Keep file order among independent stages, so node order is stable.
            let mut rank = vec![0usize; order.len()];
            let mut ordered: Vec<usize> = Vec::new();
            for node in &order {
                let i = graph[*node];
                let depth = graph
                    .neighbors_directed(*node, petgraph::Direction::Incoming)
                    .map(|p| rank[graph[p]] + 1)
                    .max()
                    .unwrap_or(0);
                rank[i] = depth;
                ordered.push(i);
            }
            ordered.sort_by_key(|&i| (rank[i], i));
            Ok(ordered)
        }
        Err(cycle) => {
            let start = graph[cycle.node_id()];
            let members: Vec<&str> = petgraph::algo::tarjan_scc(&graph)
                .into_iter()
                .find(|component| component.iter().any(|n| graph[*n] == start))
                .map(|c| c.iter().map(|n| file.stages[graph[*n]].id.as_str()).collect())
                .unwrap_or_default();
            let id = &file.stages[start].id;
            Err(err(id, None, PipelineErrorKind::Cycle(members.join(" -> "))))
        }
    }
}

/// A partial node: the sweep choices made so far and the bindings chosen.
#[derive(Clone, Default)]
struct Combo {
    cell: Vec<(String, String)>,
    inputs: BTreeMap<String, Vec<Binding>>,
}

fn expand_stage(
    file: &PipelineFile,
    spec: &StageSpec,
    registry: &Registry,
    nodes: &[Node],
    nodes_of: &HashMap<&str, Vec<usize>>,
    err: &ErrFn,
) -> Result<Vec<Node>, PipelineError> {
    let stage = registry.get(&spec.uses).expect("kind checked");
    let resolve = |params: &Value| {
        stage.resolve(params).map_err(|e| match &e.key {
            Some(key) => err(
                &spec.id,
                Some(key),
                PipelineErrorKind::UnknownParam {
                    key: key.clone(),
                    hint: did_you_mean(key, stage.param_keys().iter().map(String::as_str)),
                },
            ),
            None => err(&spec.id, Some("params"), PipelineErrorKind::BadParams(e.message)),
        })
    };
    let base = resolve(&spec.params)?;
    let ports = stage.inputs(&base);
    for (name, input) in &spec.inputs {
        let Some(port) = ports.iter().find(|p| p.name == name) else {
            let known: Vec<&str> = ports.iter().map(|p| p.name).collect();
            return Err(err(
                &spec.id,
                Some(name),
                PipelineErrorKind::UnknownInput {
                    port: name.clone(),
                    hint: did_you_mean(name, known.iter().copied()),
                    known: known.join(", "),
                },
            ));
        };
        let count = input.targets().len();
        if !port.many && count != 1 {
            let kind = PipelineErrorKind::TooManyInputs { port: name.clone(), count };
            return Err(err(&spec.id, Some(name), kind));
        }
    }
    for port in &ports {
        if !port.optional && !spec.inputs.contains_key(port.name) {
            let kind = PipelineErrorKind::MissingInput {
                port: port.name.to_string(),
                expected: port.ty.to_string(),
            };
            return Err(err(&spec.id, None, kind));
        }
    }

    // Fan out over the cells of upstream stages fed through single-artefact ports.
    let mut combos = vec![Combo::default()];
    for port in ports.iter().filter(|p| !p.many) {
        let Some(input) = spec.inputs.get(port.name) else { continue };
        let target = input.targets()[0];
        let mut next = Vec::new();
        for combo in &combos {
            for &candidate in &nodes_of[target.split('.').next().unwrap_or(target)] {
                if let Some(cell) = merge_cells(&combo.cell, &nodes[candidate].cell) {
                    let output = pick_output(spec, port, target, &nodes[candidate], err)?;
                    let mut inputs = combo.inputs.clone();
                    inputs.insert(port.name.to_string(), vec![Binding { node: candidate, output }]);
                    next.push(Combo { cell, inputs });
                }
            }
        }
        combos = next;
    }
    // Gathering ports take every consistent cell of every listed stage.
    for port in ports.iter().filter(|p| p.many) {
        let Some(input) = spec.inputs.get(port.name) else { continue };
        for combo in &mut combos {
            let mut bindings = Vec::new();
            for target in input.targets() {
                for &candidate in &nodes_of[target.split('.').next().unwrap_or(target)] {
                    if merge_cells(&combo.cell, &nodes[candidate].cell).is_some() {
                        let output = pick_output(spec, port, target, &nodes[candidate], err)?;
                        bindings.push(Binding { node: candidate, output });
                    }
                }
            }
            combo.inputs.insert(port.name.to_string(), bindings);
        }
    }

    let own_cells = matrix_cells(spec).map_err(|m| err(&spec.id, Some("matrix"), m))?;
    let mut created = Vec::new();
    for combo in &combos {
        for own in &own_cells {
            let mut params = spec.params.clone();
            let mut seed = spec.seed.unwrap_or(file.seed);
            let mut cell = combo.cell.clone();
            for (key, value) in own {
                if key == "seed" {
                    seed = value.as_u64().ok_or_else(|| {
                        let kind = PipelineErrorKind::BadMatrix("seeds must be integers".into());
                        err(&spec.id, Some("matrix"), kind)
                    })?;
                } else if let Value::Object(map) = &mut params {
                    map.insert(key.clone(), value.clone());
                }
                cell.push((format!("{}.{key}", spec.id), label(value)));
            }
            let resolved = resolve(&params)?;
            let suffix: Vec<&str> = cell.iter().map(|(_, v)| v.as_str()).collect();
            let id = if suffix.is_empty() {
                spec.id.clone()
            } else {
                format!("{}@{}", spec.id, suffix.join("-"))
            };
            created.push(Node {
                id,
                stage_id: spec.id.clone(),
                kind: spec.uses.clone(),
                cell,
                outputs: stage.outputs(&resolved),
                external: stage.external_inputs(&resolved),
                params: resolved,
                seed,
                inputs: combo.inputs.clone(),
            });
        }
    }
    Ok(created)
}

/// The union of two cells, or `None` when they chose different values for one parameter.
fn merge_cells(a: &[(String, String)], b: &[(String, String)]) -> Option<Vec<(String, String)>> {
    let mut merged = a.to_vec();
    for (key, value) in b {
        match merged.iter().find(|(k, _)| k == key) {
            Some((_, existing)) if existing != value => return None,
            Some(_) => {}
            None => merged.push((key.clone(), value.clone())),
        }
    }
    Some(merged)
}

/// Which output of `node` feeds `port`: the named one, or the only one of the port's type.
fn pick_output(
    spec: &StageSpec,
    port: &Port,
    target: &str,
    node: &Node,
    err: &ErrFn,
) -> Result<String, PipelineError> {
    let available = || {
        node.outputs.iter().map(|o| format!("{}: {}", o.name, o.ty)).collect::<Vec<_>>().join(", ")
    };
    let (stage_name, output) = match target.split_once('.') {
        Some((stage, output)) => (stage, Some(output)),
        None => (target, None),
    };
    match output {
        Some(output) => {
            let Some(found) = node.outputs.iter().find(|o| o.name == output) else {
                return Err(err(
                    &spec.id,
                    Some(port.name),
                    PipelineErrorKind::UnknownOutput {
                        port: port.name.into(),
                        target: stage_name.into(),
                        output: output.into(),
                        available: available(),
                    },
                ));
            };
            if found.ty != port.ty {
                return Err(err(
                    &spec.id,
                    Some(port.name),
                    PipelineErrorKind::TypeMismatch {
                        port: port.name.into(),
                        target: target.into(),
                        expected: port.ty.to_string(),
                        found: found.ty.to_string(),
                    },
                ));
            }
            Ok(output.to_string())
        }
        None => {
            let matching: Vec<&Port> = node.outputs.iter().filter(|o| o.ty == port.ty).collect();
            match matching.as_slice() {
                [only] => Ok(only.name.to_string()),
                _ => Err(err(
                    &spec.id,
                    Some(port.name),
                    PipelineErrorKind::NoOutputOfType {
                        port: port.name.into(),
                        target: stage_name.into(),
                        expected: port.ty.to_string(),
                        available: available(),
                    },
                )),
            }
        }
    }
}

/// Every combination of the stage's own matrix, keys in sorted order.
fn matrix_cells(spec: &StageSpec) -> Result<Vec<Vec<(String, Value)>>, PipelineErrorKind> {
    let mut cells = vec![Vec::new()];
    for (key, values) in &spec.matrix {
        if values.is_empty() {
            return Err(PipelineErrorKind::BadMatrix(format!("`{key}` has no values")));
        }
        let mut labels: Vec<String> = values.iter().map(label).collect();
        labels.sort();
        labels.dedup();
        if labels.len() != values.len() {
            return Err(PipelineErrorKind::BadMatrix(format!("`{key}` repeats a value")));
        }
        cells = cells
            .into_iter()
            .flat_map(|cell| {
                values.iter().map(move |value| {
                    let mut next = cell.clone();
                    next.push((key.clone(), value.clone()));
                    next
                })
            })
            .collect();
    }
    Ok(cells)
}

/// A value as it appears in a cell id: strings bare, anything else as compact JSON.
fn label(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
