//! Optuna's `JournalFileSymlinkLock`, so that this binary and Optuna processes append to one
//! journal without corrupting it: the lock is a symlink `FILE.lock` -> `FILE` made with
//! symlink(2) (it exists: someone holds it); it is released by renaming it to a unique
//! `FILE.lock<uuid>.rename` and unlinking that. A lock whose target has not changed for the grace
//! period is taken to belong to a dead writer and broken, as Optuna does.
//!
//! One addition, invisible to Optuna: while this binary holds the lock it also holds an OS lock
//! on `FILE.holder`, which names the link it made (inode and change time). A waiter that finds
//! that OS lock free while the same link is still there knows its maker died (the OS drops the
//! lock with the process) and breaks it at once, instead of after the grace period.

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
        let mut sleep = Duration::from_millis(1);
        let mut seen: Option<(SystemTime, Instant)> = None;
        // The target by its name: the link sits beside the file, so it resolves however the
        // journal's path was given.
        let target = file.file_name().map_or_else(|| file.to_path_buf(), PathBuf::from);
        loop {
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => return Ok(JournalLock { _holder: hold(file, &link), link }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot lock", &link, e)),
            }
            if maker_died(file, &link) {
                let _ = release(&link);
                continue;
            }
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

/// Hold `FILE.holder` (an OS lock) naming the link just made.
fn hold(file: &Path, link: &Path) -> Option<std::fs::File> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(suffixed(file, ".holder")).ok()?;
    f.lock().ok()?;
    let id = identity(link)?;
    f.set_len(0).ok()?;
    f.write_all(id.as_bytes()).ok()?;
    Some(f)
}

/// Whether the link at `link` was made by a process of ours that has died.
fn maker_died(file: &Path, link: &Path) -> bool {
    let path = suffixed(file, ".holder");
    let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else { return false };
    if f.try_lock().is_err() {
        return false;
    }
    let named = std::fs::read_to_string(&path).unwrap_or_default();
    let dead = identity(link).is_some_and(|id| id == named);
    drop(f);
    dead
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
