//! Reading the pieces of a run folder for the page. Each piece may be missing (not made yet) or
//! unreadable (the message says how to fix it); neither stops the page.

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::TrainConfig;
use crate::data::NUM_CLASSES;
use crate::run::metrics::{self, EpochRow};
use crate::run::info::RunInfo;
use crate::run::{CONFIG_FILE, EVAL_FILE, INFO_FILE, METRICS_FILE};

/// Files larger than this are linked, not embedded or parsed (keeps the report cheap).
const MAX_INLINE: u64 = 16 << 20;

/// One input of the page.
#[derive(Debug, Clone)]
pub enum Piece<T> {
    Missing,
    Bad(String),
    Ready(T),
}

impl<T> Piece<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Piece::Ready(v) => Some(v),
            _ => None,
        }
    }

    fn and_then<U>(self, f: impl FnOnce(T) -> Piece<U>) -> Piece<U> {
        match self {
            Piece::Ready(v) => f(v),
            Piece::Missing => Piece::Missing,
            Piece::Bad(m) => Piece::Bad(m),
        }
    }

    fn from_result<E: std::fmt::Display>(r: Result<T, E>) -> Self {
        r.map_or_else(|e| Piece::Bad(e.to_string()), Piece::Ready)
    }
}

/// The parts of `eval.json` the page shows (per-class accuracy comes from the confusion rows).
#[derive(Debug, Clone, Deserialize)]
pub struct EvalFile {
    /// The model file evaluated (older eval.json files may lack it).
    #[serde(default)]
    pub model: Option<String>,
    /// The checkpoint's epoch for `eval --checkpoint`; absent for the final model.
    #[serde(default)]
    pub checkpoint: Option<usize>,
    pub accuracy: f64,
    pub loss: f64,
    pub samples: u64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// The most confident mistakes, most confident first (older eval.json files lack them).
    #[serde(default)]
    pub mistakes: Option<Vec<Mistake>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mistake {
    pub index: usize,
    pub true_label: usize,
    pub predicted: usize,
    pub confidence: f64,
}

impl EvalFile {
    /// The checkpoint evaluated: the file says so, or (older files) its model is `model-N.bpk`.
    pub fn epoch(&self) -> Option<usize> {
        let model = self.model.as_deref().map(Path::new);
        let name = model.and_then(|m| m.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let from_name = name.strip_prefix("model-").and_then(|n| n.strip_suffix(".bpk")).and_then(|n| n.parse().ok());
        self.checkpoint.or(from_name)
    }

    /// Shape checks serde cannot express; the message names what is wrong.
    fn problem(&self) -> Option<&'static str> {
        let square = self.confusion.len() == NUM_CLASSES && self.confusion.iter().all(|r| r.len() == NUM_CLASSES);
        let mistakes_ok = self.mistakes.iter().flatten().all(|m| m.true_label < NUM_CLASSES && m.predicted < NUM_CLASSES);
        match (square, mistakes_ok) {
            (false, _) => Some("`confusion` is not 10x10"),
            (_, false) => Some("`mistakes` names a class outside 0-9"),
            _ => None,
        }
    }
}

/// A file's bytes; `Missing` when it does not exist.
pub fn bytes(path: &Path) -> Piece<Vec<u8>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Piece::Missing,
        Ok(m) if m.len() > MAX_INLINE => {
            return Piece::Bad(format!("{}: too large to include ({} bytes); open the file itself", path.display(), m.len()));
        }
        _ => {}
    }
    Piece::from_result(std::fs::read(path).map_err(|e| format!("{}: cannot read ({e})", path.display())))
}

/// A PNG file, checked by its signature so a damaged file never shows as a broken picture.
pub fn png(path: &Path, remake: &str) -> Piece<Vec<u8>> {
    bytes(path).and_then(|b| match b.starts_with(b"\x89PNG\r\n\x1a\n") {
        true => Piece::Ready(b),
        false => Piece::Bad(format!("{}: not a PNG image; make it again with `{remake}`", path.display())),
    })
}

fn json<T: DeserializeOwned>(path: &Path, remake: &str) -> Piece<T> {
    bytes(path).and_then(|b| {
        Piece::from_result(
            serde_json::from_slice(&b).map_err(|e| format!("{}: {e}; make it again with `{remake}`", path.display())),
        )
    })
}

pub fn run_info(dir: &Path) -> Piece<RunInfo> {
    json(&dir.join(INFO_FILE), "d2l-mlp train --resume")
}

/// The final model's evaluation, `eval.json`. One an older `eval --checkpoint N` wrote there is
/// refused: its figures are not the final model's.
pub fn eval(dir: &Path, remake: &str) -> Piece<EvalFile> {
    let path = dir.join(EVAL_FILE);
    eval_file(&path, remake).and_then(|e| match e.epoch() {
        Some(n) => Piece::Bad(format!(
            "{}: holds the evaluation of the checkpoint of epoch {n}, not of the final model; evaluate the final model with `{remake}`",
            path.display()
        )),
        None => Piece::Ready(e),
    })
}

fn eval_file(path: &Path, remake: &str) -> Piece<EvalFile> {
    json::<EvalFile>(path, remake).and_then(|e| match e.problem() {
        Some(m) => Piece::Bad(format!("{}: {m}; make it again with `{remake}`", path.display())),
        None => Piece::Ready(e),
    })
}

/// The checkpoints' evaluations (`eval-epoch-NNN.json`), by epoch: each with its file name.
pub fn checkpoint_evals(dir: &Path) -> Vec<(usize, String, Piece<EvalFile>)> {
    let mut found: Vec<(usize, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            crate::run::checkpoint_of(&name, EVAL_FILE).map(|n| (n, name))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(n, name)| {
            let remake = format!("d2l-mlp eval --checkpoint {n} --artifacts {}", super::html::shell_quote(&dir.to_string_lossy()));
            let piece = eval_file(&dir.join(&name), &remake);
            (n, name, piece)
        })
        .collect()
}

pub fn config(dir: &Path) -> Piece<TrainConfig> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Piece::Missing;
    }
    Piece::from_result(TrainConfig::load(&path))
}

/// The finished epochs; `Missing` until the first one ends.
pub fn epochs(dir: &Path) -> Piece<Vec<EpochRow>> {
    match metrics::read(&dir.join(METRICS_FILE)) {
        Ok(rows) if rows.is_empty() => Piece::Missing,
        r => Piece::from_result(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVAL: &str = r#"{"model":"m","samples":4,"loss":0.5,"accuracy":0.75,
        "per_class":[{"class":0,"name":"T-shirt/top","correct":1,"total":1,"accuracy":1.0}],
        "confusion":[[1,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],
        [0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0],
        [0,0,0,0,0,0,0,0,0,0],[0,0,0,0,0,0,0,0,0,0]]}"#;

    #[test]
    fn eval_json_is_read_with_or_without_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(eval(dir.path(), "x"), Piece::Missing));
        std::fs::write(dir.path().join("eval.json"), EVAL).unwrap();
        let e = eval(dir.path(), "x");
        let e = e.ready().unwrap();
        assert_eq!((e.accuracy, e.samples, e.mistakes.is_none()), (0.75, 4, true));
        let with = EVAL.replacen('{', r#"{"mistakes":[{"index":3,"true_label":6,"predicted":0,"confidence":0.9}],"#, 1);
        std::fs::write(dir.path().join("eval.json"), with).unwrap();
        assert_eq!(eval(dir.path(), "x").ready().unwrap().mistakes.as_ref().unwrap()[0].index, 3);
    }

    #[test]
    fn damaged_pieces_are_bad_with_one_line_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("eval.json"), EVAL.replace("[1,0,0,0,0,0,0,0,0,0],", "")).unwrap();
        std::fs::write(dir.path().join("run.json"), "{not json").unwrap();
        std::fs::write(dir.path().join("p.png"), "GIF89a").unwrap();
        std::fs::write(dir.path().join("config.toml"), "lr = -1.0\n").unwrap();
        let msgs = [
            match eval(dir.path(), "d2l-mlp eval") { Piece::Bad(m) => m, p => panic!("{p:?}") },
            match run_info(dir.path()) { Piece::Bad(m) => m, p => panic!("{p:?}") },
            match png(&dir.path().join("p.png"), "d2l-mlp predict") { Piece::Bad(m) => m, p => panic!("{p:?}") },
            match config(dir.path()) { Piece::Bad(m) => m, p => panic!("{p:?}") },
        ];
        for m in &msgs {
            assert!(!m.contains('\n') && m.contains(dir.path().to_str().unwrap()), "{m}");
        }
        assert!(msgs[0].contains("10x10") && msgs[0].contains("d2l-mlp eval"), "{}", msgs[0]);
        assert!(matches!(epochs(dir.path()), Piece::Missing));
    }
}
