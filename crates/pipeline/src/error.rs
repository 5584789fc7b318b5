//! Pipeline errors: each names the file, the stage and, where it can, the line and column.

use std::fmt;
use std::path::PathBuf;

/// A mistake in a pipeline file or in its command-line overrides.
#[derive(Debug)]
pub struct PipelineError {
    pub file: PathBuf,
    /// 1-based line and column of the offending text, when known.
    pub location: Option<(usize, usize)>,
    pub stage: Option<String>,
    pub kind: Box<PipelineErrorKind>,
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
pub enum PipelineErrorKind {
    #[error("cannot read the pipeline: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Syntax(String),
    #[error("unknown stage kind `{kind}`{hint}; known kinds: {known}")]
    UnknownKind { kind: String, hint: String, known: String },
    #[error("unknown parameter `{key}`{hint}")]
    UnknownParam { key: String, hint: String },
    #[error("bad parameters: {0}")]
    BadParams(String),
    #[error("duplicate stage id `{0}`")]
    DuplicateId(String),
    #[error("bad stage id `{0}`: use letters, digits, `_` and `-`")]
    BadId(String),
    #[error("input `{port}` refers to `{target}`, which is not an earlier stage{hint}")]
    UnknownStage { port: String, target: String, hint: String },
    #[error("input `{port}`: stage `{target}` has no output `{output}` (it has: {available})")]
    UnknownOutput { port: String, target: String, output: String, available: String },
    #[error("input `{port}` expects {expected}, but `{target}` gives {found}")]
    TypeMismatch { port: String, target: String, expected: String, found: String },
    #[error("input `{port}`: `{target}` has no output of type {expected} (it has: {available})")]
    NoOutputOfType { port: String, target: String, expected: String, available: String },
    #[error("input `{port}` takes one artefact, but {count} were given")]
    TooManyInputs { port: String, count: usize },
    #[error("required input `{port}` ({expected}) is not connected")]
    MissingInput { port: String, expected: String },
    #[error("unknown input `{port}`{hint}; this stage takes: {known}")]
    UnknownInput { port: String, hint: String, known: String },
    #[error("the stages form a cycle through: {0}")]
    Cycle(String),
    #[error("bad matrix: {0}")]
    BadMatrix(String),
    #[error("bad override `{text}`: {reason}")]
    BadOverride { text: String, reason: String },
}

impl PipelineError {
    pub fn new(file: impl Into<PathBuf>, kind: PipelineErrorKind) -> Self {
        Self { file: file.into(), location: None, stage: None, kind: Box::new(kind) }
    }

    pub fn at(mut self, location: Option<(usize, usize)>) -> Self {
        self.location = location;
        self
    }

    pub fn in_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(stage) = &self.stage {
            write!(f, ": stage `{stage}`")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for PipelineError {}

/// " (did you mean `x`?)" when one candidate is close to `word`.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min();
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(did_you_mean("epoch", ["epochs", "lr"]), " (did you mean `epochs`?)");
        assert_eq!(did_you_mean("clusterr", ["cluster", "explain"]), " (did you mean `cluster`?)");
        assert_eq!(did_you_mean("zzz", ["epochs", "lr"]), "");
    }
}
