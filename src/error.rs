//! The library's error type. Every message is one line that names the file or field at fault
//! and says how to fix it; [`Error::exit_code`] tells bad input (2) from other failures (1).

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is missing, malformed or not the expected content.
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },

    /// A configuration file or value is invalid.
    #[error("{0}")]
    Config(String),

    /// Any other bad input: CLI arguments, run folders, checkpoints, images.
    #[error("{0}")]
    Input(String),

    /// Downloading the data set failed.
    #[error("{0}")]
    Download(String),

    /// The run was stopped by the user (Ctrl-C).
    #[error("{0}")]
    Interrupted(String),

    /// The loss became NaN, infinite or exploded; the message says what to retry with.
    #[error("{0}")]
    Diverged(String),

    /// Any other failure: I/O, a device that fails at run time.
    #[error("{0}")]
    Failure(String),
}

impl Error {
    pub fn data(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    pub fn failure(msg: impl Into<String>) -> Self {
        Error::Failure(msg.into())
    }

    /// An I/O error on `path`, with the action that failed (e.g. "cannot write").
    pub fn io(action: &str, path: impl AsRef<Path>, err: std::io::Error) -> Self {
        let path = path.as_ref();
        let hint = match err.kind() {
            std::io::ErrorKind::PermissionDenied => {
                " (permission denied: choose a writable folder with --artifacts, or fix its permissions)"
            }
            std::io::ErrorKind::NotFound => " (not found)",
            _ => "",
        };
        Error::Failure(format!("{action} {}: {err}{hint}", path.display()))
    }

    /// Process exit status: 2 for bad input, 130 for Ctrl-C, 1 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Data { .. } | Error::Config(_) | Error::Input(_) => 2,
            Error::Interrupted(_) => 130,
            Error::Download(_) | Error::Diverged(_) | Error::Failure(_) => 1,
        }
    }
}
