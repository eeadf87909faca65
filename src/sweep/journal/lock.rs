//! Optuna's `JournalFileSymlinkLock`, so that this binary and Optuna processes append to one
//! journal without corrupting it: the lock is a symlink `FILE.lock` -> `FILE` made with
//! symlink(2) (it exists: someone holds it); it is released by renaming it to a unique
//! `FILE.lock<uuid>.rename` and unlinking that. A lock whose target has not changed for the grace
//! period is taken to belong to a dead writer and broken, as Optuna does.
//!
//! One addition, invisible to Optuna: this binary takes an OS lock on `FILE.holder` before it
//! makes the link and keeps it while it holds the lock; the file names the link it made (inode
//! and change time), or `pending` while it makes it. A waiter that gets that OS lock while such
//! a link is there knows its maker died (the OS drops the lock with the process) and breaks it
//! at once, instead of after the grace period; a link it does not name (Optuna's) is waited for.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};

/// Optuna's default grace period.
pub const GRACE: Duration = Duration::from_secs(30);

/// A held lock on a journal; released on drop.
#[derive(Debug)]
pub struct JournalLock {
    link: PathBuf,
    _holder: Option<std::fs::File>,
}

impl JournalLock {
    /// Take the lock of `file`, waiting (backoff from 1 ms to 1 s) while another writer holds it.
    pub fn acquire(file: &Path) -> Result<JournalLock> {
        Self::acquire_with(file, GRACE)
    }

    pub fn acquire_with(file: &Path, grace: Duration) -> Result<JournalLock> {
        let link = lock_path(file);
        let holder_path = suffixed(file, ".holder");
        let mut sleep = Duration::from_millis(1);
        let mut seen: Option<(SystemTime, Instant)> = None;
        // The target by its name: the link sits beside the file, so it resolves however the
        // journal's path was given.
        let target = file.file_name().map_or_else(|| file.to_path_buf(), PathBuf::from);
        loop {
            // Our writers hold `.holder` for as long as they hold the link: once we have it, no
            // live process of ours holds the lock (a link there is a dead one's, or Optuna's).
            let mut holder = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&holder_path).map_err(|e| Error::io("cannot lock", &holder_path, e))?;
            holder.lock().map_err(|e| Error::io("cannot lock", &holder_path, e))?;
            if std::fs::symlink_metadata(&link).is_err() {
                say(&mut holder, "pending");
                match std::os::unix::fs::symlink(&target, &link) {
                    Ok(()) => {
                        say(&mut holder, &identity(&link).unwrap_or_default());
                        return Ok(JournalLock { link, _holder: Some(holder) });
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => say(&mut holder, "waiting"),
                    Err(e) => return Err(Error::io("cannot lock", &link, e)),
                }
            } else {
                let named = heard(&mut holder);
                if named == "pending" || identity(&link).is_some_and(|id| id == named) {
                    // Made by a process of ours that died holding it: broken at once.
                    let _ = release(&link);
                    say(&mut holder, "broken");
                    continue;
                }
            }
            drop(holder);
            // Optuna stats through the link: the journal's own mtime tells whether the holder writes.
            let stat = std::fs::metadata(&link).or_else(|_| std::fs::symlink_metadata(&link));
            if let Ok(mtime) = stat.and_then(|m| m.modified()) {
                match seen {
                    Some((t, since)) if t == mtime && since.elapsed() > grace => {
                        let _ = release(&link);
                        seen = None;
                        sleep = Duration::from_millis(1);
                        continue;
                    }
                    Some((t, _)) if t == mtime => {}
                    _ => seen = Some((mtime, Instant::now())),
                }
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_secs(1));
        }
    }
}

/// Write `text` as the holder file's whole content (best effort: it only speeds up breaking).
fn say(f: &mut std::fs::File, text: &str) {
    use std::io::{Seek, Write};
    let _ = f.set_len(0).and_then(|_| f.seek(std::io::SeekFrom::Start(0))).and_then(|_| f.write_all(text.as_bytes()));
}

fn heard(f: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    let _ = f.seek(std::io::SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut text));
    text
}

impl JournalLock {
    /// As a killed holder leaves it: the link stays, the OS lock goes.
    #[cfg(test)]
    fn abandon(mut self) -> PathBuf {
        self._holder.take();
        let link = self.link.clone();
        std::mem::forget(self);
        link
    }
}

impl Drop for JournalLock {
    fn drop(&mut self) {
        let _ = release(&self.link);
        if let Some(h) = self._holder.as_mut() {
            say(h, "free");
        }
    }
}

fn lock_path(file: &Path) -> PathBuf {
    suffixed(file, ".lock")
}

fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The identity of the link now at `link`: inode and change time.
fn identity(link: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(link).ok()?;
    Some(format!("{} {} {}", m.ino(), m.ctime(), m.ctime_nsec()))
}

/// Rename, then unlink: a holder never removes a lock someone else has taken since.
fn release(link: &Path) -> std::io::Result<()> {
    let mut renamed = link.as_os_str().to_owned();
    renamed.push(format!("{}.rename", super::uuid()));
    std::fs::rename(link, &renamed)?;
    std::fs::remove_file(&renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_stale_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.log");
        std::fs::write(&file, b"").unwrap();
        let held = JournalLock::acquire(&file).unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("journal.log.lock")).unwrap().file_type().is_symlink());
        // A second taker waits; the lock is released on drop, then it gets it.
        let f2 = file.clone();
        let waiter = std::thread::spawn(move || JournalLock::acquire(&f2).map(|_| ()));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "the second taker must wait while the lock is held");
        drop(held);
        waiter.join().unwrap().unwrap();
        assert!(!dir.path().join("journal.log.lock").exists());
        // A lock left by a dead writer (never released) is broken after the grace period.
        let link = JournalLock::acquire(&file).unwrap().abandon();
        std::fs::remove_file(dir.path().join("journal.log.holder")).unwrap();
        assert!(link.exists());
        let t = Instant::now();
        drop(JournalLock::acquire_with(&file, Duration::from_millis(50)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(!dir.path().join("journal.log.lock").exists());
    }

    #[test]
    fn a_lock_whose_maker_died_is_broken_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.log");
        std::fs::write(&file, b"").unwrap();
        // The maker's OS lock goes with it; its link stays.
        let link = JournalLock::acquire(&file).unwrap().abandon();
        assert!(link.exists());
        let t = Instant::now();
        drop(JournalLock::acquire_with(&file, Duration::from_secs(3600)).unwrap());
        assert!(t.elapsed() < Duration::from_secs(60));
        // A link someone else made (Optuna) is not broken while its maker may live.
        std::os::unix::fs::symlink("journal.log", &link).unwrap();
        let f2 = file.clone();
        let waiter = std::thread::spawn(move || JournalLock::acquire_with(&f2, Duration::from_secs(3600)).map(|_| ()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        std::fs::remove_file(&link).unwrap();
        waiter.join().unwrap().unwrap();
    }
}
