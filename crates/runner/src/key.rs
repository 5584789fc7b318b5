//! Stage keys: what a stage's result depends on, hashed.
//!
//! A key is blake3 over a canonical encoding of a [`KeyManifest`]. What goes in:
//!
//! - the key format version ([`KEY_FORMAT`]), bumped whenever this encoding changes;
//! - the stage kind and its code fingerprint (the stage crate and the workspace crates it
//!   depends on, hashed at build time), so editing one stage crate re-runs only the stages
//!   built from it;
//! - the parameters with every default resolved, so writing a default out or leaving it
//!   implicit gives the same key, and map order or YAML formatting cannot matter;
//! - the seed;
//! - the digests of every input artefact, by port, in binding order; because these are
//!   digests of bytes, an upstream stage that re-runs and produces identical bytes leaves
//!   every downstream key unchanged (early cutoff);
//! - for gathering inputs only (a report's `results: [...]`), the ids of the nodes that
//!   produced them, since such a stage labels what it gathers by where it came from;
//! - the digests of external inputs (dataset folders) by path;
//! - the libtorch version and the device class (`cpu`, `cuda`), since results differ across
//!   them.
//!
//! What stays out: thread counts, store and output paths, log settings, the node's own id in
//! the pipeline (the same stage in two pipelines shares its result), and timestamps.
//!
//! The encoding is type-tagged and length-prefixed: every value starts with a tag byte
//! (null, bool, integer, float, string, array, object) and every string and container with
//! its length, so `1`, `1.0` and `"1"` encode differently and no two different manifests
//! share an encoding. Object keys are sorted. Floats are encoded by their bits after
//! normalising `-0.0` to `0.0`.

use std::collections::BTreeMap;

use exmap_artefact::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the key encoding; part of every key.
pub const KEY_FORMAT: u32 = 1;

/// Everything a stage execution's result depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyManifest {
    pub format: u32,
    pub kind: String,
    pub code: String,
    pub params: Value,
    pub seed: u64,
    pub inputs: BTreeMap<String, Vec<Digest>>,
    /// Producing node ids of gathering inputs, by port; empty for most stages, and then not
    /// encoded at all, so that keys of stages without gathering inputs are unaffected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, Vec<String>>,
    pub external: BTreeMap<String, Digest>,
    pub libtorch: String,
    pub device: String,
}

impl KeyManifest {
    /// The key: blake3 of the canonical encoding.
    pub fn key(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        let mut sink = |bytes: &[u8]| {
            hasher.update(bytes);
        };
        encode_u64(&mut sink, u64::from(self.format));
        encode_str(&mut sink, &self.kind);
        encode_str(&mut sink, &self.code);
        encode_value(&mut sink, &self.params);
        encode_u64(&mut sink, self.seed);
        encode_u64(&mut sink, self.inputs.len() as u64);
        for (port, digests) in &self.inputs {
            encode_str(&mut sink, port);
            encode_u64(&mut sink, digests.len() as u64);
            for digest in digests {
                sink(digest.as_bytes());
            }
        }
        encode_u64(&mut sink, self.external.len() as u64);
        for (path, digest) in &self.external {
            encode_str(&mut sink, path);
            sink(digest.as_bytes());
        }
        encode_str(&mut sink, &self.libtorch);
        encode_str(&mut sink, &self.device);
        // Last and only when present: a manifest without sources encodes as before, and one
        // with sources cannot collide with one without (its encoding is strictly longer and
        // every earlier part is self-delimiting).
        if !self.sources.is_empty() {
            encode_str(&mut sink, "sources");
            encode_u64(&mut sink, self.sources.len() as u64);
            for (port, nodes) in &self.sources {
                encode_str(&mut sink, port);
                encode_u64(&mut sink, nodes.len() as u64);
                for node in nodes {
                    encode_str(&mut sink, node);
                }
            }
        }
        Digest::from_bytes(*hasher.finalize().as_bytes())
    }

    /// The parts that differ from `previous`, in words, for `plan` and `why`.
    pub fn differences(&self, previous: &KeyManifest) -> Vec<String> {
        let mut out = Vec::new();
        if self.format != previous.format {
            out.push(format!("key format {} -> {}", previous.format, self.format));
        }
        if self.kind != previous.kind {
            out.push(format!("stage kind `{}` -> `{}`", previous.kind, self.kind));
        }
        if self.code != previous.code {
            out.push("code of the stage or a crate it depends on changed".into());
        }
        diff_values("params", &previous.params, &self.params, &mut out);
        if self.seed != previous.seed {
            out.push(format!("seed {} -> {}", previous.seed, self.seed));
        }
        for (port, digests) in &self.inputs {
            match previous.inputs.get(port) {
                Some(old) if old == digests => {}
                Some(_) => out.push(format!("input `{port}` changed")),
                None => out.push(format!("input `{port}` is new")),
            }
        }
        for port in previous.inputs.keys().filter(|p| !self.inputs.contains_key(*p)) {
            out.push(format!("input `{port}` was removed"));
        }
        for (port, nodes) in &self.sources {
            if previous.sources.get(port) != Some(nodes) {
                out.push(format!("the nodes gathered by `{port}` changed"));
            }
        }
        for (path, digest) in &self.external {
            if previous.external.get(path) != Some(digest) {
                out.push(format!("external input `{path}` changed"));
            }
        }
        if self.libtorch != previous.libtorch {
            out.push(format!("libtorch {} -> {}", previous.libtorch, self.libtorch));
        }
        if self.device != previous.device {
            out.push(format!("device {} -> {}", previous.device, self.device));
        }
        out
    }
}

fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let null = Value::Null;
                let child = format!("{path}.{key}");
                diff_values(&child, a.get(key).unwrap_or(&null), b.get(key).unwrap_or(&null), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

fn encode_u64(sink: &mut impl FnMut(&[u8]), value: u64) {
    sink(&value.to_le_bytes());
}

fn encode_str(sink: &mut impl FnMut(&[u8]), text: &str) {
    encode_u64(sink, text.len() as u64);
    sink(text.as_bytes());
}

/// Type-tagged, length-prefixed encoding of a JSON value.
fn encode_value(sink: &mut impl FnMut(&[u8]), value: &Value) {
    match value {
        Value::Null => sink(&[0]),
        Value::Bool(b) => sink(&[1, u8::from(*b)]),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                sink(&[2]);
                sink(&i.to_le_bytes());
            } else if let Some(u) = n.as_u64() {
                sink(&[3]);
                sink(&u.to_le_bytes());
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let f = if f == 0.0 { 0.0 } else { f };
                sink(&[4]);
                sink(&f.to_bits().to_le_bytes());
            }
        }
        Value::String(s) => {
            sink(&[5]);
            encode_str(sink, s);
        }
        Value::Array(items) => {
            sink(&[6]);
            encode_u64(sink, items.len() as u64);
            for item in items {
                encode_value(sink, item);
            }
        }
        Value::Object(map) => {
            sink(&[7]);
            encode_u64(sink, map.len() as u64);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                encode_str(sink, key);
                encode_value(sink, &map[key]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(params: Value) -> KeyManifest {
        KeyManifest {
            format: KEY_FORMAT,
            kind: "erm".into(),
            code: "abc".into(),
            params,
            seed: 1,
            inputs: BTreeMap::new(),
            sources: BTreeMap::new(),
            external: BTreeMap::new(),
            libtorch: "2.13.0".into(),
            device: "cpu".into(),
        }
    }

    fn key(params: Value) -> Digest {
        manifest(params).key()
    }

    #[test]
    fn gathered_sources_enter_the_key_only_when_present() {
        let plain = manifest(json!({}));
        let mut gathered = plain.clone();
        gathered.sources.insert("results".into(), vec!["dfr@a".into(), "dfr@b".into()]);
        let mut renamed = gathered.clone();
        renamed.sources.insert("results".into(), vec!["dfr@a".into(), "dfr@c".into()]);
        assert_ne!(plain.key(), gathered.key());
        assert_ne!(gathered.key(), renamed.key());
        assert_eq!(renamed.differences(&gathered), vec!["the nodes gathered by `results` changed"]);
        // Round trip through the history file format, with and without sources.
        for m in [&plain, &gathered] {
            let back: KeyManifest =
                serde_json::from_str(&serde_json::to_string(m).unwrap()).unwrap();
            assert_eq!(back.key(), m.key());
        }
    }

    #[test]
    fn integer_float_and_string_do_not_collide() {
        let keys = [key(json!({"x": 1})), key(json!({"x": 1.0})), key(json!({"x": "1"}))];
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[1], keys[2]);
    }

    #[test]
    fn map_order_does_not_matter() {
        let a: Value = serde_yaml::from_str("{a: 1, b: [1, 2], c: {d: x, e: 0.5}}").unwrap();
        let b: Value = serde_yaml::from_str("c:\n  e: 0.5\n  d: x\nb: [1, 2]\na: 1\n").unwrap();
        assert_eq!(key(a), key(b));
    }

    #[test]
    fn nested_structure_is_part_of_the_encoding() {
        assert_ne!(key(json!({"a": ["b", "c"]})), key(json!({"a": ["bc"]})));
        assert_ne!(key(json!({"a": [[1], 2]})), key(json!({"a": [1, [2]]})));
        assert_ne!(key(json!({"ab": "c"})), key(json!({"a": "bc"})));
    }

    #[test]
    fn every_part_changes_the_key() {
        let base = manifest(json!({"lr": 0.1}));
        let mut variants = Vec::new();
        let mut m = base.clone();
        m.seed = 2;
        variants.push(m);
        let mut m = base.clone();
        m.code = "abd".into();
        variants.push(m);
        let mut m = base.clone();
        m.inputs.insert("images".into(), vec![exmap_artefact::hash_bytes(b"x")]);
        variants.push(m);
        let mut m = base.clone();
        m.libtorch = "2.14.0".into();
        variants.push(m);
        let mut m = base.clone();
        m.device = "cuda".into();
        variants.push(m);
        for variant in variants {
            assert_ne!(variant.key(), base.key(), "{:?}", variant.differences(&base));
            assert!(!variant.differences(&base).is_empty());
        }
    }

    #[test]
    fn differences_name_the_changed_parameter() {
        let old = manifest(json!({"epochs": 2, "lr": 0.1}));
        let new = manifest(json!({"epochs": 3, "lr": 0.1}));
        assert_eq!(new.differences(&old), vec!["params.epochs: 2 -> 3"]);
    }
}
