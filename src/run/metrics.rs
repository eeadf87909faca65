//! `metrics.csv`: one row per finished epoch, rewritten atomically as each epoch ends.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;

pub const HEADER: &str = "epoch,train_loss,train_acc,test_loss,test_acc,seconds";
/// The header of a run scored on images held out of the training set (a sweep's trial).
pub const VAL_HEADER: &str = "epoch,train_loss,train_acc,val_loss,val_acc,seconds";

/// What the run's second pair of figures measures: the test set, or a validation split held
/// out of the training images (a sweep's trials). `EpochRow::test_*` holds either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeldOut {
    #[default]
    Test,
    Validation,
}

impl HeldOut {
    /// "test" or "val", as column names and chart labels start.
    pub fn short(self) -> &'static str {
        match self {
            HeldOut::Test => "test",
            HeldOut::Validation => "val",
        }
    }

    /// "test" or "validation", in sentences.
    pub fn name(self) -> &'static str {
        match self {
            HeldOut::Test => "test",
            HeldOut::Validation => "validation",
        }
    }

    fn header(self) -> &'static str {
        match self {
            HeldOut::Test => HEADER,
            HeldOut::Validation => VAL_HEADER,
        }
    }
}

/// What `metrics.csv` at `path` measures, from its header (the test set when the file is
/// missing or unreadable).
pub fn held_out(path: &Path) -> HeldOut {
    let first = std::fs::read_to_string(path).ok().and_then(|t| t.lines().next().map(|l| l.trim().to_string()));
    if first.as_deref() == Some(VAL_HEADER) { HeldOut::Validation } else { HeldOut::Test }
}

/// One epoch's figures. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub seconds: f64,
}

impl EpochRow {
    pub fn to_csv(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}",
            self.epoch, self.train_loss, self.train_acc, self.test_loss, self.test_acc, self.seconds
        )
    }
}

/// Read `metrics.csv`. A missing file is an empty history.
pub fn read(path: &Path) -> Result<Vec<EpochRow>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot read", path, e)),
    };
    parse(&text, path)
}

/// Parse the CSV text of `metrics.csv` read from `origin`.
pub fn parse(text: &str, origin: &Path) -> Result<Vec<EpochRow>> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER || h.trim() == VAL_HEADER => {}
        Some(h) => {
            return Err(Error::data(
                origin,
                format!("unexpected header `{h}` (expected `{HEADER}`); restore the file or start a new run with --overwrite"),
            ));
        }
        None => return Ok(Vec::new()),
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let bad = || Error::data(origin, format!("line {} is not a metrics row: `{line}`", i + 2));
        if f.len() != 6 {
            return Err(bad());
        }
        let num = |s: &str| s.trim().parse::<f64>().map_err(|e| bad().caused_by(e).paraphrased());
        rows.push(EpochRow {
            epoch: f[0].trim().parse().map_err(|e: std::num::ParseIntError| bad().caused_by(e).paraphrased())?,
            train_loss: num(f[1])?,
            train_acc: num(f[2])?,
            test_loss: num(f[3])?,
            test_acc: num(f[4])?,
            seconds: num(f[5])?,
        });
    }
    Ok(rows)
}

/// Write all rows atomically, under the header the file has (the test set's when new).
pub fn write(path: &Path, rows: &[EpochRow]) -> Result<()> {
    write_as(path, rows, held_out(path))
}

/// Write all rows atomically, naming the held-out figures after `held`.
pub fn write_as(path: &Path, rows: &[EpochRow], held: HeldOut) -> Result<()> {
    let mut text = String::from(held.header());
    text.push('\n');
    for r in rows {
        text.push_str(&r.to_csv());
        text.push('\n');
    }
    atomic_write(path, text.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_header_is_kept_by_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        assert_eq!(held_out(&p), HeldOut::Test);
        let row = EpochRow { epoch: 1, train_loss: 1.0, train_acc: 0.5, test_loss: 0.9, test_acc: 0.6, seconds: 1.0 };
        write_as(&p, &[], HeldOut::Validation).unwrap();
        write(&p, &[row]).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("epoch,train_loss,train_acc,val_loss,val_acc,seconds\n"));
        assert_eq!((held_out(&p), read(&p).unwrap()), (HeldOut::Validation, vec![row]));
        write_as(&p, &[row], HeldOut::Test).unwrap();
        assert_eq!(held_out(&p), HeldOut::Test);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        let rows = vec![
            EpochRow { epoch: 1, train_loss: 1.05, train_acc: 0.64, test_loss: 0.7, test_acc: 0.74, seconds: 1.2 },
            EpochRow { epoch: 2, train_loss: 0.6, train_acc: 0.79, test_loss: 0.55, test_acc: 0.79, seconds: 1.1 },
        ];
        write(&p, &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(HEADER));
        assert_eq!(read(&p).unwrap(), rows);
    }

    #[test]
    fn missing_file_is_empty_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join("none.csv")).unwrap().is_empty());
        assert!(parse("nope\n1,2\n", Path::new("m.csv")).is_err());
        assert!(parse(&format!("{HEADER}\n1,x,0,0,0,0\n"), Path::new("m.csv")).unwrap_err().to_string().starts_with("m.csv: line 2"));
    }
}
