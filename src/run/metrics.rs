//! `metrics.csv`: one row per finished epoch, rewritten atomically as each epoch ends.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;

pub const HEADER: &str = "epoch,train_loss,train_acc,test_loss,test_acc,seconds";

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
        Some(h) if h.trim() == HEADER => {}
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
        let num = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
        rows.push(EpochRow {
            epoch: f[0].trim().parse().map_err(|_| bad())?,
            train_loss: num(f[1])?,
            train_acc: num(f[2])?,
            test_loss: num(f[3])?,
            test_acc: num(f[4])?,
            seconds: num(f[5])?,
        });
    }
    Ok(rows)
}

/// Write all rows atomically.
pub fn write(path: &Path, rows: &[EpochRow]) -> Result<()> {
    let mut text = String::from(HEADER);
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
