//! One writer per run: an OS advisory lock on `.lock` in the run folder. The OS drops it when
//! its holder exits or is killed, so a stale lock never needs cleaning up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::RunDir;
use crate::error::{Error, Result};

pub const LOCK_FILE: &str = ".lock";

/// Held for as long as a command writes into a run folder.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    /// The folders taking the lock created (the run folder first, then its new parents): a
    /// command that fails before writing anything leaves none of them behind.
    created: Vec<PathBuf>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let Some(run) = self.created.first() else {
            return;
        };
        // Only a folder that holds nothing but the lock file is the command's to remove.
        let only_lock = std::fs::read_dir(run).is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == LOCK_FILE));
        if only_lock {
            let _ = std::fs::remove_file(run.join(LOCK_FILE));
            // remove_dir removes empty folders only: anything another process put there stays.
            self.created.iter().try_for_each(std::fs::remove_dir).ok();
        }
    }
}

/// The folders `create_dir_all(dir)` would create, deepest first.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).map(Path::to_path_buf).collect()
}

impl RunLock {
    /// Create the folder if needed, then lock it or fail at once naming the other writer.
    pub fn acquire(run: &RunDir) -> Result<RunLock> {
        Self::try_acquire(run)?.ok_or_else(|| {
            let mut file = OpenOptions::new().read(true).open(run.file(LOCK_FILE));
            match file.as_mut() {
                Ok(f) => busy(run, f),
                Err(_) => busy_unknown(run),
            }
        })
    }

    /// Like [`RunLock::acquire`], but None when another writer holds the folder.
    pub fn try_acquire(run: &RunDir) -> Result<Option<RunLock>> {
        Self::take(run, false)
    }

    /// A lock many holders share (processes that `--join` one study); None while someone
    /// holds it alone, and it keeps anyone from holding it alone.
    pub fn try_acquire_shared(run: &RunDir) -> Result<Option<RunLock>> {
        Self::take(run, true)
    }

    fn take(run: &RunDir, shared: bool) -> Result<Option<RunLock>> {
        // Processes sharing a lock (`--join`) may all have come for one new folder: none removes it.
        let created = if shared { Vec::new() } else { missing_folders(run.path()) };
        run.ensure_writable()?;
        let path = run.file(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("cannot open the lock file", &path, e))?;
        let taken = if shared { file.try_lock_shared() } else { file.try_lock() };
        match taken {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock", &path, e)),
        }
        if shared {
            return Ok(Some(RunLock { _file: file, created }));
        }
        // Say who holds it, for the message a second writer prints.
        let me = format!("{} {}\n", std::process::id(), hostname());
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()));
        written.map_err(|e| Error::io("cannot write", &path, e))?;
        Ok(Some(RunLock { _file: file, created }))
    }
}

fn busy_unknown(run: &RunDir) -> Error {
    Error::input(format!("{}: another process is writing this run right now; wait for it to finish (or stop it), or use another --artifacts folder", run.path().display()))
}

fn busy(run: &RunDir, file: &mut File) -> Error {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut parts = text.split_whitespace();
    let who = match (parts.next(), parts.next()) {
        (Some(pid), Some(host)) => format!("process {pid} on host {host}"),
        _ => "another process".to_string(),
    };
    Error::input(format!(
        "{}: {who} is writing this run right now; wait for it to finish (or stop it), or use another --artifacts folder",
        run.path().display()
    ))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("r"));
        let held = RunLock::acquire(&run).unwrap();
        let e = RunLock::acquire(&run).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(&format!("process {}", std::process::id())), "{m}");
        assert!(m.contains("is writing this run"), "{m}");
        assert_eq!(e.exit_code(), 2);
        drop(held);
        RunLock::acquire(&run).unwrap();
    }

    #[test]
    fn folders_made_for_the_lock_alone_go_when_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("runs/gpu"));
        drop(RunLock::acquire(&run).unwrap());
        assert!(!dir.path().join("runs").exists(), "a folder made for the lock alone stayed");
        // A folder the command wrote into stays, and so does one that was there before.
        let held = RunLock::acquire(&run).unwrap();
        std::fs::write(run.file("config.toml"), "").unwrap();
        drop(held);
        assert!(run.file("config.toml").exists() && run.file(LOCK_FILE).exists());
        let before = RunDir::new(dir.path().join("before"));
        std::fs::create_dir(before.path()).unwrap();
        drop(RunLock::acquire(&before).unwrap());
        assert!(before.path().is_dir());
    }
}
