//! Command-line overrides: `--set stage.param=value` changes one parameter (dotted paths reach
//! into nested maps), `--set stage.param=a,b,c` sweeps it, `--set seed=3` sets the pipeline seed.

use serde_json::Value;

use crate::{PipelineError, PipelineErrorKind, PipelineFile};

/// One parsed `--set` argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub text: String,
    pub stage: Option<String>,
    pub path: Vec<String>,
    pub values: Vec<Value>,
}

impl Override {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (target, value) =
            text.split_once('=').ok_or("expected `stage.param=value` or `seed=N`")?;
        let parts: Vec<&str> = target.trim().split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err("empty name in the dotted path".into());
        }
        let values: Vec<Value> = value.split(',').map(|v| parse_scalar(v.trim())).collect();
        if parts == ["seed"] {
            return Ok(Self { text: text.into(), stage: None, path: vec!["seed".into()], values });
        }
        if parts.len() < 2 {
            return Err("expected `stage.param=value`".into());
        }
        Ok(Self {
            text: text.into(),
            stage: Some(parts[0].to_string()),
            path: parts[1..].iter().map(|p| p.to_string()).collect(),
            values,
        })
    }
}

/// A scalar as YAML would read it: `3` is an integer, `0.5` a float, `true` a boolean,
/// `null` null, `[1, 2]` a list, anything else a string.
fn parse_scalar(text: &str) -> Value {
    serde_yaml::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Applies overrides to a parsed pipeline; a list of values becomes a sweep of that stage.
pub fn apply_overrides(
    file: &mut PipelineFile,
    overrides: &[Override],
) -> Result<(), PipelineError> {
    for item in overrides {
        let bad = |reason: String| {
            PipelineError::new(
                &file.path,
                PipelineErrorKind::BadOverride { text: item.text.clone(), reason },
            )
        };
        let Some(stage_id) = &item.stage else {
            match item.values.as_slice() {
                [Value::Number(n)] if n.as_u64().is_some() => {
                    file.seed = n.as_u64().expect("checked");
                    continue;
                }
                _ => return Err(bad("the seed must be one non-negative integer".into())),
            }
        };
        let ids: Vec<&str> = file.stages.iter().map(|s| s.id.as_str()).collect();
        let hint = crate::error::did_you_mean(stage_id, ids.iter().copied());
        let stage = file
            .stages
            .iter_mut()
            .find(|s| &s.id == stage_id)
            .ok_or_else(|| bad(format!("no stage `{stage_id}`{hint}")))?;
        if item.path.len() == 1 && item.path[0] == "seed" {
            match item.values.as_slice() {
                [Value::Number(n)] if n.as_u64().is_some() => stage.seed = n.as_u64(),
                values => {
                    stage.matrix.insert("seed".into(), values.to_vec());
                }
            }
            continue;
        }
        if item.values.len() > 1 {
            if item.path.len() != 1 {
                return Err(bad("a sweep needs a top-level parameter".into()));
            }
            stage.matrix.insert(item.path[0].clone(), item.values.clone());
            if let Value::Object(map) = &mut stage.params {
                map.remove(&item.path[0]);
            }
            continue;
        }
        stage.matrix.remove(&item.path[0]);
        set_path(&mut stage.params, &item.path, item.values[0].clone());
    }
    Ok(())
}

fn set_path(target: &mut Value, path: &[String], value: Value) {
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("object");
    if path.len() == 1 {
        map.insert(path[0].clone(), value);
    } else {
        let child = map.entry(path[0].clone()).or_insert(Value::Null);
        set_path(child, &path[1..], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, stage: Option<&str>, path: &[&str], values: Value) {
        let parsed = Override::parse(text).unwrap();
        assert_eq!(parsed.stage.as_deref(), stage, "{text}");
        assert_eq!(parsed.path, path, "{text}");
        assert_eq!(Value::Array(parsed.values), values, "{text}");
    }

    #[test]
    fn overrides_parse_scalars_like_yaml() {
        check("erm.epochs=3", Some("erm"), &["epochs"], serde_json::json!([3]));
        check("erm.lr=0.5", Some("erm"), &["lr"], serde_json::json!([0.5]));
        check(
            "explain.method=lrp,gradcam",
            Some("explain"),
            &["method"],
            serde_json::json!(["lrp", "gradcam"]),
        );
        check("erm.crop.size=32", Some("erm"), &["crop", "size"], serde_json::json!([32]));
        check("seed=4", None, &["seed"], serde_json::json!([4]));
        assert!(Override::parse("erm").is_err());
        assert!(Override::parse("epochs=3").is_err());
    }
}
