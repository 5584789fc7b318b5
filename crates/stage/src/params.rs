//! Typed stages and their object-safe form.
//!
//! Parameters are a serde type with `#[serde(default, deny_unknown_fields)]`. Resolving a
//! parameter block deserialises it (rejecting unknown keys and bad values) and serialises the
//! typed value back to JSON: the result has every default filled in, so a key never depends on
//! whether a default was written out, and it is what the runner hashes.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::{ParamError, Port, StageContext, StageError};

/// A pipeline stage with typed parameters.
pub trait Stage: Send + Sync + 'static {
    type Params: Serialize + DeserializeOwned + Default;

    /// The `uses:` name of this stage kind.
    fn kind(&self) -> &'static str;

    /// Fingerprint of the code that computes this stage (see `exmap-fingerprint`).
    fn code_fingerprint(&self) -> &'static str;

    /// One-line description for `exmap stages` and error messages.
    fn describe(&self) -> &'static str;

    fn inputs(&self, params: &Self::Params) -> Vec<Port>;

    fn outputs(&self, params: &Self::Params) -> Vec<Port>;

    /// Checks that serde cannot express (ranges, combinations). Runs before anything runs.
    fn validate(&self, _params: &Self::Params) -> Result<(), String> {
        Ok(())
    }

    /// Files and folders outside the store that the result depends on (a dataset folder).
    /// The runner hashes their contents into the key and checks they did not change while
    /// the stage ran.
    fn external_inputs(&self, _params: &Self::Params) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    fn run(&self, params: &Self::Params, ctx: &StageContext) -> Result<(), StageError>;
}

/// The object-safe form of [`Stage`] that the runner holds.
pub trait DynStage: Send + Sync {
    fn kind(&self) -> &'static str;
    fn code_fingerprint(&self) -> &'static str;
    fn describe(&self) -> &'static str;
    /// The parameter keys this stage accepts, for "did you mean" hints.
    fn param_keys(&self) -> Vec<String>;
    /// Resolves a raw parameter block to its canonical JSON form with defaults filled in.
    fn resolve(&self, raw: &Value) -> Result<Value, ParamError>;
    fn inputs(&self, resolved: &Value) -> Vec<Port>;
    fn outputs(&self, resolved: &Value) -> Vec<Port>;
    fn external_inputs(&self, resolved: &Value) -> Vec<std::path::PathBuf>;
    fn run(&self, resolved: &Value, ctx: &StageContext) -> Result<(), StageError>;
}

/// Resolves `raw` through the parameter type `P`.
pub fn resolve_params<P: Serialize + DeserializeOwned>(
    raw: &Value,
) -> Result<(P, Value), ParamError> {
    let raw = if raw.is_null() { Value::Object(Default::default()) } else { raw.clone() };
    let typed: P = serde_json::from_value(raw).map_err(|e| {
        let message = e.to_string();
        let key = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .map(str::to_string);
        ParamError { key, message }
    })?;
    let resolved = serde_json::to_value(&typed)
        .map_err(|e| ParamError { key: None, message: e.to_string() })?;
    Ok((typed, resolved))
}

impl<S: Stage> DynStage for S {
    fn kind(&self) -> &'static str {
        Stage::kind(self)
    }

    fn code_fingerprint(&self) -> &'static str {
        Stage::code_fingerprint(self)
    }

    fn describe(&self) -> &'static str {
        Stage::describe(self)
    }

    fn param_keys(&self) -> Vec<String> {
        match serde_json::to_value(S::Params::default()) {
            Ok(Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn resolve(&self, raw: &Value) -> Result<Value, ParamError> {
        let (typed, resolved) = resolve_params::<S::Params>(raw)?;
        self.validate(&typed).map_err(|message| ParamError { key: None, message })?;
        Ok(resolved)
    }

    fn inputs(&self, resolved: &Value) -> Vec<Port> {
        Stage::inputs(self, &typed::<S>(resolved))
    }

    fn outputs(&self, resolved: &Value) -> Vec<Port> {
        Stage::outputs(self, &typed::<S>(resolved))
    }

    fn external_inputs(&self, resolved: &Value) -> Vec<std::path::PathBuf> {
        Stage::external_inputs(self, &typed::<S>(resolved))
    }

    fn run(&self, resolved: &Value, ctx: &StageContext) -> Result<(), StageError> {
        let params: S::Params = serde_json::from_value(resolved.clone())
            .map_err(|e| StageError::Params(e.to_string()))?;
        Stage::run(self, &params, ctx)
    }
}

/// Parameters that were already resolved once always deserialise again.
fn typed<S: Stage>(resolved: &Value) -> S::Params {
    serde_json::from_value(resolved.clone()).expect("resolved parameters deserialise")
}
