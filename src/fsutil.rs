//! Atomic file writes: a reader (or a process killed mid-write) never sees a half-written file.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically: a temp file in the same folder, fsync, then rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // Temp files are created 0600; outputs are ordinary files others may read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Like [`atomic_write`], for content produced by a writer callback (e.g. an encoder).
pub fn atomic_write_with<F>(path: &Path, f: F) -> std::io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let mut buf = Vec::new();
    f(&mut buf)?;
    atomic_write(path, &buf)
}

/// Remove temp files left by writers that were killed mid-write (they never replaced a finished
/// file). Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-abc"), b"half").unwrap();
        std::fs::write(dir.path().join("keep.txt"), b"x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(dir.path().join("keep.txt").exists());
    }

    #[test]
    fn atomic_write_into_missing_folder_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("a.txt");
        assert!(atomic_write(&p, b"x").is_err());
    }
}
