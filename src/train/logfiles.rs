//! Burn's per-step metric logs (`train/epoch-N/Loss.log`, `valid/epoch-N/Accuracy.log`, ...),
//! in the files and format of Burn's `FileMetricLogger`, written buffered on the event store's
//! own thread.
//!
//! Burn's logger starts a thread per metric, split and epoch, and writes every step's line to
//! its file unbuffered: where cores are few, that is more threads to wake and four `write` calls
//! per step, each taking a core from the step's products (measured: docs/performance.md). Here
//! each file is a `BufWriter`, flushed when its split ends. A write error does not panic: the
//! first one is kept and reported after the run.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use crate::error::Error;

/// The first error writing the logs, shared with the caller.
pub type LogError = Arc<Mutex<Option<Error>>>;

pub struct MetricLogFiles {
    dir: PathBuf,
    names: HashMap<MetricId, String>,
    /// The open files of the current split and epoch, by metric (so a step's line costs a
    /// lookup, not a path built from strings), each with its path.
    open: HashMap<MetricId, (PathBuf, BufWriter<File>)>,
    current: Option<(Split, usize)>,
    error: LogError,
}

impl MetricLogFiles {
    /// Logs under `dir` (the run folder); the first write error goes to `error`.
    pub fn new(dir: &Path, error: LogError) -> Self {
        Self { dir: dir.to_path_buf(), names: HashMap::new(), open: HashMap::new(), current: None, error }
    }

    /// `<dir>/<split>/epoch-<epoch>/<name>.log`, spaces in the name as `_` (as Burn names them).
    fn path(&self, name: &str, epoch: usize, split: &Split) -> PathBuf {
        let split_dir = match split {
            Split::Test(Some(tag)) => format!("test/{}", tag.trim().replace(' ', "-").to_lowercase()),
            other => other.to_string(),
        };
        self.dir.join(split_dir).join(format!("epoch-{epoch}")).join(format!("{}.log", name.replace(' ', "_")))
    }

    /// One line of metric `id`'s file of `epoch` and `split` (opened on its first line).
    fn write_line(&mut self, id: &MetricId, epoch: usize, split: &Split, line: &str) {
        if self.failed() {
            return;
        }
        if !self.open.contains_key(id) {
            let Some(name) = self.names.get(id) else {
                return;
            };
            let path = self.path(name, epoch, split);
            match create(&path) {
                Ok(file) => self.open.insert(id.clone(), (path, file)),
                Err(e) => return self.fail(&path, e),
            };
        }
        let Some((path, file)) = self.open.get_mut(id) else {
            return;
        };
        if let Err(e) = writeln!(file, "{line}") {
            let path = path.clone();
            self.fail(&path, e);
        }
    }

    /// Flush and close every open file.
    fn close_all(&mut self) {
        for (_, (path, mut file)) in std::mem::take(&mut self.open) {
            if let Err(e) = file.flush() {
                self.fail(&path, e);
            }
        }
    }

    fn failed(&self) -> bool {
        self.error.lock().map(|e| e.is_some()).unwrap_or(true)
    }

    fn fail(&self, path: &Path, e: std::io::Error) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert_with(|| Error::io("cannot write the metric log", path, e));
        }
    }
}

/// A new, empty log file (an earlier run's file of the same epoch is replaced, as Burn does).
fn create(path: &Path) -> std::io::Result<BufWriter<File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(BufWriter::new(File::create(path)?))
}

impl MetricLogger for MetricLogFiles {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        if self.current.as_ref().is_none_or(|(s, e)| s != split || *e != epoch) {
            self.close_all();
            self.current = Some((split.clone(), epoch));
        }
        let entries = update.entries.iter().chain(update.entries_numeric.iter().map(|n| &n.entry));
        for entry in entries.filter(|entry| !entry.serialized_entry.is_not_available()) {
            self.write_line(&entry.metric_id, epoch, split, &entry.serialized_entry.serialized);
        }
    }

    fn read_numeric(&mut self, name: &str, epoch: usize, split: &Split) -> Result<Vec<NumericEntry>, String> {
        let path = self.path(name, epoch, split);
        if let Some((_, file)) = self.open.values_mut().find(|(open, _)| *open == path) {
            file.flush().map_err(|e| format!("cannot flush {}: {e}", path.display()))?;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines().filter(|line| !line.is_empty()).map(NumericEntry::deserialize).collect()
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, _: EpochSummary) {
        self.close_all();
        self.current = None;
    }
}

impl Drop for MetricLogFiles {
    fn drop(&mut self) {
        self.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::metric::store::NumericMetricUpdate;
    use burn::train::metric::{MetricEntry, NumericAttributes, SerializedEntry};

    fn define(logs: &mut MetricLogFiles, name: &str) -> MetricId {
        let id = MetricId::new(Arc::new(name.to_string()));
        let attributes = NumericAttributes { unit: None, higher_is_better: true }.into();
        logs.log_metric_definition(MetricDefinition { metric_id: id.clone(), name: Arc::new(name.into()), description: None, attributes });
        id
    }

    fn update(id: &MetricId, serialized: &str) -> MetricsUpdate {
        let entry = MetricEntry::new(id.clone(), SerializedEntry::new(String::new(), serialized.to_string()));
        MetricsUpdate::new(vec![], vec![NumericMetricUpdate { entry, numeric_entry: None, running_entry: None }])
    }

    #[test]
    fn writes_burns_files_line_per_step_readable_before_and_after_the_split_ends() {
        let dir = tempfile::tempdir().unwrap();
        let error = LogError::default();
        let mut logs = MetricLogFiles::new(dir.path(), error.clone());
        let (acc, loss) = (define(&mut logs, "Accuracy"), define(&mut logs, "Top 1"));
        logs.log(update(&acc, "12.5,256"), 1, &Split::Train);
        logs.log(update(&loss, "0.75,256"), 1, &Split::Train);
        logs.log(update(&acc, "50,16"), 1, &Split::Train);
        // Burn reads a split's values while it runs (metric-based checkpointing, summaries).
        let read = logs.read_numeric("Accuracy", 1, &Split::Train).unwrap();
        assert_eq!(read.len(), 2);
        logs.log(update(&acc, "25.25,final"), 1, &Split::Train);
        logs.log(update(&acc, "80,100"), 1, &Split::Valid);
        logs.log(update(&acc, "NaN"), 2, &Split::Train);
        logs.log_epoch_summary(EpochSummary::new(2, Split::Train));
        let file = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(file("train/epoch-1/Accuracy.log"), "12.5,256\n50,16\n25.25,final\n");
        assert_eq!(file("train/epoch-1/Top_1.log"), "0.75,256\n");
        assert_eq!(file("valid/epoch-1/Accuracy.log"), "80,100\n");
        assert_eq!(file("train/epoch-2/Accuracy.log"), "NaN\n");
        assert!(error.lock().unwrap().is_none());
    }

    #[test]
    fn a_write_error_is_kept_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the split's folder should be.
        std::fs::write(dir.path().join("train"), "").unwrap();
        let error = LogError::default();
        let mut logs = MetricLogFiles::new(dir.path(), error.clone());
        let acc = define(&mut logs, "Accuracy");
        logs.log(update(&acc, "12.5,256"), 1, &Split::Train);
        logs.log(update(&acc, "13.5,256"), 1, &Split::Train);
        let message = error.lock().unwrap().as_ref().map(|e| e.to_string()).unwrap();
        assert!(message.contains("cannot write the metric log") && message.contains("Accuracy.log"), "{message}");
    }
}
