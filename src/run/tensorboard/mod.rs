//! TensorBoard event files: what `tensorboard --logdir` reads of a run. Each training session
//! writes one file in the run's `tb/` folder, `events.out.tfevents.<unix time>.<host>`
//! (TensorBoard merges the files of a folder): per epoch the train and held-out loss and
//! accuracy and the learning rate, the epoch as the step. A sweep's trials add the hparams
//! plugin's summaries ([`hparams`]).
//!
//! The format is TensorFlow's TFRecord framing of `Event` protocol buffers ([`proto`]):
//! `u64 length | masked CRC-32C of the length | data | masked CRC-32C of the data`, little
//! endian. Unlike the run's other files, an events file is appended to, not replaced: readers
//! keep it open and read what is appended, and a record torn by a kill is recognised by its
//! checksums (readers stop before it). Each epoch's records are flushed to the file before the
//! next epoch starts, so a killed run keeps the epochs it finished.

pub mod hparams;
pub mod proto;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::run::metrics::{EpochRow, HeldOut};
use proto::{Event, What};

/// The folder of a run that holds its events files.
pub const TB_DIR: &str = "tb";
/// What the first record of every events file says.
pub const FILE_VERSION: &str = "brain.Event:2";
const FILE_PREFIX: &str = "events.out.tfevents.";

/// The masked CRC-32C of TFRecord's framing.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// One TFRecord: the framed bytes of `data`.
fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Seconds since the Unix epoch, as events record their wall time.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// An events file being written: created with its version record, then appended to.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// A new events file in `dir` (created if missing): `events.out.tfevents.<unix time>.<host>`,
    /// with `.1`, `.2`, ... appended when a session of the same second took that name. Its
    /// first record says the format version.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create the TensorBoard folder", dir, e))?;
        let wall_time = now();
        let base = format!("{FILE_PREFIX}{}.{}", wall_time as u64, crate::run::lock::hostname());
        let mut n = 0;
        let (file, path) = loop {
            let path = dir.join(if n == 0 { base.clone() } else { format!("{base}.{n}") });
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(Error::io("cannot create", &path, e)),
            }
        };
        let mut w = EventWriter { out: BufWriter::new(file), path };
        w.write(&Event { wall_time, step: 0, what: Some(What::FileVersion(FILE_VERSION.to_string())) })?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event (buffered until [`EventWriter::flush`]).
    pub fn write(&mut self, event: &Event) -> Result<()> {
        self.out.write_all(&frame(&event.encode_to_vec())).map_err(|e| Error::io("cannot write", &self.path, e))
    }

    /// A scalar `value` of series `tag` at `step` (TensorBoard keeps it as a 32-bit float).
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64, wall_time: f64) -> Result<()> {
        let value = proto::Value { tag: tag.to_string(), metadata: None, value: Some(proto::Kind::SimpleValue(value as f32)) };
        self.write(&Event { wall_time, step, what: Some(What::Summary(proto::Summary { value: vec![value] })) })
    }

    /// A session (re)starts at `step`: readers drop what earlier sessions wrote at `step` and
    /// after (TensorFlow's restart marker, `SessionLog.START`).
    pub fn session_start(&mut self, step: i64, wall_time: f64) -> Result<()> {
        let log = proto::SessionLog { status: proto::SESSION_START };
        self.write(&Event { wall_time, step, what: Some(What::SessionLog(log)) })
    }

    /// Hand what was written to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io("cannot write", &self.path, e))
    }
}

/// The events files in `dir`, in name order (TensorBoard's reading order); none when it is missing.
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("tfevents"))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// The complete events of a file, in order. A torn last record (a writer killed mid-write) ends
/// the list; a checksum that does not match or a record that does not decode is an error.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let bad = |what: &str, at: usize| {
        Error::data(path, format!("{what} at byte {at}; the events file is damaged: remove it (TensorBoard reads the folder's other files)"))
    };
    let mut events = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 12 {
        let len_bytes = &bytes[at..at + 8];
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != crc {
            return Err(bad("a record length whose checksum does not match", at));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len).ok().and_then(|l| (at + 12).checked_add(l)).filter(|&e| e + 4 <= bytes.len()) else {
            break;
        };
        let data = &bytes[at + 12..end];
        if masked_crc(data) != u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes")) {
            return Err(bad("a record whose checksum does not match", at));
        }
        events.push(Event::decode(data).map_err(|e| bad("a record that is not an event", at).caused_by(e).paraphrased())?);
        at = end + 4;
    }
    Ok(events)
}

/// The tags of the summaries in the events files of `dir`.
pub fn tags_in(dir: &Path) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    for f in event_files(dir) {
        for e in read_events(&f)? {
            if let Some(What::Summary(s)) = e.what {
                tags.extend(s.value.into_iter().map(|v| v.tag));
            }
        }
    }
    Ok(tags)
}

/// The series a run writes each epoch: `train/loss`, `train/accuracy`, `test/loss`,
/// `test/accuracy` (`validation/...` when the held-out figures are a validation split's), `lr`.
pub fn epoch_tags(held: HeldOut) -> [String; 5] {
    let h = held.name();
    ["train/loss".into(), "train/accuracy".into(), format!("{h}/loss"), format!("{h}/accuracy"), "lr".into()]
}

/// A run's events of this session: one file, a record per series and epoch.
pub struct RunEvents {
    writer: EventWriter,
    tags: [String; 5],
    lr: f64,
}

impl RunEvents {
    /// This session's file in `run_dir/tb/`. When the folder already holds events (a resumed
    /// run), the file starts with a restart marker at `first_epoch`, the first epoch this
    /// session trains, so that epochs an earlier session wrote past the checkpoint resumed from
    /// are not shown twice.
    pub fn open(run_dir: &Path, held: HeldOut, lr: f64, first_epoch: usize) -> Result<RunEvents> {
        let dir = run_dir.join(TB_DIR);
        let earlier = !event_files(&dir).is_empty();
        let mut writer = EventWriter::create(&dir)?;
        if earlier {
            writer.session_start(first_epoch as i64, now())?;
            writer.flush()?;
        }
        Ok(RunEvents { writer, tags: epoch_tags(held), lr })
    }

    /// Write the figures of `row`, which ended at `wall_time`, and flush them to the file.
    pub fn epoch(&mut self, row: &EpochRow, wall_time: f64) -> Result<()> {
        let step = row.epoch as i64;
        let values = [row.train_loss, row.train_acc, row.test_loss, row.test_acc, self.lr];
        for (tag, v) in self.tags.iter().zip(values) {
            self.writer.scalar(tag, step, v, wall_time)?;
        }
        self.writer.flush()
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tensorflows() {
        // Values from TensorBoard's own `masked_crc32c`.
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc(&0u64.to_le_bytes()), 0x0798_0329);
    }

    fn row(epoch: usize) -> EpochRow {
        EpochRow { epoch, train_loss: 1.0 / epoch as f64, train_acc: 0.5, test_loss: 0.9, test_acc: 0.625, seconds: 1.0 }
    }

    fn scalars(events: &[Event]) -> Vec<(String, i64, f32)> {
        events
            .iter()
            .filter_map(|e| match &e.what {
                Some(What::Summary(s)) => Some(s.value.iter().map(|v| match v.value {
                    Some(proto::Kind::SimpleValue(x)) => (v.tag.clone(), e.step, x),
                    _ => panic!("not a scalar: {v:?}"),
                })),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn a_session_writes_the_version_then_five_scalars_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut ev = RunEvents::open(dir.path(), HeldOut::Validation, 0.1, 1).unwrap();
        ev.epoch(&row(1), 100.0).unwrap();
        ev.epoch(&row(2), 101.0).unwrap();
        let name = ev.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("events.out.tfevents.") && name.ends_with(&crate::run::lock::hostname()), "{name}");
        // Flushed: readable while the writer is still open.
        let events = read_events(ev.path()).unwrap();
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        let s = scalars(&events);
        assert_eq!(s.len(), 10);
        assert_eq!(s[..5], [
            ("train/loss".into(), 1, 1.0),
            ("train/accuracy".into(), 1, 0.5),
            ("validation/loss".into(), 1, 0.9),
            ("validation/accuracy".into(), 1, 0.625),
            ("lr".into(), 1, 0.1),
        ]);
        assert_eq!((s[5].1, s[5].2, events.last().unwrap().wall_time), (2, 0.5, 101.0));
    }

    #[test]
    fn a_resumed_session_writes_a_file_of_its_own_starting_with_a_restart_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = RunEvents::open(dir.path(), HeldOut::Test, 0.1, 1).unwrap();
        first.epoch(&row(1), 1.0).unwrap();
        drop(first);
        let mut second = RunEvents::open(dir.path(), HeldOut::Test, 0.1, 2).unwrap();
        second.epoch(&row(2), 2.0).unwrap();
        let files = event_files(&dir.path().join(TB_DIR));
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[1], second.path(), "the later session's file sorts last");
        let events = read_events(second.path()).unwrap();
        assert_eq!(events[1].what, Some(What::SessionLog(proto::SessionLog { status: proto::SESSION_START })));
        assert_eq!(events[1].step, 2);
        assert_eq!(scalars(&events).iter().map(|s| s.1).collect::<Vec<_>>(), [2; 5]);
        assert_eq!(tags_in(&dir.path().join(TB_DIR)).unwrap().iter().filter(|t| *t == "test/accuracy").count(), 2);
    }

    #[test]
    fn a_torn_last_record_ends_the_file_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut ev = RunEvents::open(dir.path(), HeldOut::Test, 0.1, 1).unwrap();
        ev.epoch(&row(1), 1.0).unwrap();
        let path = ev.path().to_path_buf();
        drop(ev);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 3]).unwrap();
        assert_eq!(scalars(&read_events(&path).unwrap()).len(), 4);
        let mut bad = whole.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let e = read_events(&path).unwrap_err().to_string();
        assert!(e.contains("checksum does not match") && e.contains(&path.display().to_string()) && !e.contains('\n'), "{e}");
    }
}
