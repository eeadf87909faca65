//! The library's error type. Every message is one line that names the file or field at fault
//! and says how to fix it; [`Error::exit_code`] tells bad input (2) from other failures (1).
//!
//! An error keeps the error that caused it as its [`source`](std::error::Error::source): its
//! `Display` is the context only ("cannot read x.toml"), and [`Error::one_line`] renders the line
//! users see, "context: cause: cause; fix".

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that caused another, kept as its source.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file is missing, malformed or not the expected content.
    #[error("{}: {}", path.display(), msg.text)]
    Data {
        path: PathBuf,
        msg: Message,
        #[source]
        source: Option<Cause>,
    },

    /// A configuration file or value is invalid.
    #[error(transparent)]
    Config(Message),

    /// Any other bad input: CLI arguments, run folders, checkpoints, images.
    #[error(transparent)]
    Input(Message),

    /// Downloading the data set failed.
    #[error(transparent)]
    Download(Message),

    /// The run was stopped by the user (Ctrl-C).
    #[error("{0}")]
    Interrupted(String),

    /// The loss became NaN, infinite or exploded; the message says what to retry with.
    #[error("{0}")]
    Diverged(String),

    /// Any other failure: I/O, a device that fails at run time.
    #[error(transparent)]
    Failure(Message),
}

/// What went wrong, the error that caused it, and how to fix it. Without a cause the text may
/// carry its fix itself; with one, the fix is kept apart so the line can end with it.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Message {
    text: String,
    fix: Option<String>,
    #[source]
    cause: Option<Cause>,
    /// The text already says what the cause says, in its own words: the line leaves it out.
    paraphrased: bool,
}

impl Message {
    fn new(text: impl Into<String>, cause: Option<Cause>) -> Self {
        Message { text: text.into(), fix: None, cause, paraphrased: false }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::new(text, None)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::new(text, None)
    }
}

impl Error {
    pub fn data(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Data { path: path.as_ref().to_path_buf(), msg: msg.into().into(), source: None }
    }

    /// A data file at `path` is bad because of `cause`.
    pub fn data_with(path: impl AsRef<Path>, msg: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Data { path: path.as_ref().to_path_buf(), msg: msg.into().into(), source: Some(cause.into()) }
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into().into())
    }

    pub fn config_with(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Config(Message::new(context, Some(cause.into())))
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into().into())
    }

    pub fn input_with(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Input(Message::new(context, Some(cause.into())))
    }

    pub fn download(msg: impl Into<String>) -> Self {
        Error::Download(msg.into().into())
    }

    pub fn download_with(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Download(Message::new(context, Some(cause.into())))
    }

    pub fn failure(msg: impl Into<String>) -> Self {
        Error::Failure(msg.into().into())
    }

    pub fn failure_with(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Failure(Message::new(context, Some(cause.into())))
    }

    /// An I/O error on `path`, with the action that failed (e.g. "cannot write").
    pub fn io(action: &str, path: impl AsRef<Path>, err: std::io::Error) -> Self {
        let fix = match err.kind() {
            std::io::ErrorKind::PermissionDenied => {
                Some("choose a writable folder with --artifacts, or fix its permissions")
            }
            _ => None,
        };
        let e = Error::failure_with(format!("{action} {}", path.as_ref().display()), err);
        match fix {
            Some(fix) => e.fix(fix),
            None => e,
        }
    }

    /// The same error, saying how to fix it at the end of its line.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        if let Some(m) = self.message_mut() {
            m.fix = Some(fix.into());
        }
        self
    }

    /// The same error, caused by `cause` (kept as its source).
    pub fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        match &mut self {
            Error::Data { source, .. } => *source = Some(cause.into()),
            _ => {
                if let Some(m) = self.message_mut() {
                    m.cause = Some(cause.into());
                }
            }
        }
        self
    }

    /// The same error, its context already saying what the cause says (e.g. a parser's message
    /// reworded with the field and line): the cause stays its source, and leaves the line.
    pub fn paraphrased(mut self) -> Self {
        if let Some(m) = self.message_mut() {
            m.paraphrased = true;
        }
        self
    }

    fn message(&self) -> Option<&Message> {
        match self {
            Error::Data { msg, .. } | Error::Config(msg) | Error::Input(msg) | Error::Download(msg) | Error::Failure(msg) => Some(msg),
            Error::Interrupted(_) | Error::Diverged(_) => None,
        }
    }

    fn message_mut(&mut self) -> Option<&mut Message> {
        match self {
            Error::Data { msg, .. } | Error::Config(msg) | Error::Input(msg) | Error::Download(msg) | Error::Failure(msg) => Some(msg),
            Error::Interrupted(_) | Error::Diverged(_) => None,
        }
    }

    /// The line users see: the context, then each cause in the chain it does not already say
    /// (first line of each), then the fixes, so the line ends with how to fix it.
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut fixes: Vec<String> = Vec::new();
        let mut link: &(dyn std::error::Error + 'static) = self;
        loop {
            let ours = link.downcast_ref::<Error>().and_then(Error::message);
            if let Some(fix) = ours.and_then(|m| m.fix.as_deref()) {
                fixes.push(fix.to_string());
            }
            let Some(cause) = link.source() else { break };
            if !ours.is_some_and(|m| m.paraphrased) {
                let text = cause.to_string();
                let text = text.lines().next().unwrap_or("").trim();
                if !text.is_empty() && !line.contains(text) {
                    line.push_str(": ");
                    line.push_str(text);
                }
            }
            link = cause;
        }
        for fix in fixes {
            line.push_str("; ");
            line.push_str(&fix);
        }
        line
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io::ErrorKind;

    #[test]
    fn an_io_error_stays_the_source_and_its_line_is_the_old_one() {
        let e = Error::io("cannot write", "run/metrics.csv", std::io::Error::other("disk full"));
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("the io::Error is the source");
        assert_eq!((io.kind(), io.to_string().as_str()), (ErrorKind::Other, "disk full"));
        assert_eq!(e.to_string(), "cannot write run/metrics.csv", "Display is the context only");
        // The line before sources were kept: "{action} {path}: {err}".
        assert_eq!(e.one_line(), "cannot write run/metrics.csv: disk full");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn a_permission_error_ends_with_its_fix() {
        let e = Error::io("cannot create", "/runs", ErrorKind::PermissionDenied.into());
        assert!(e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).is_some());
        assert_eq!(e.one_line(), "cannot create /runs: permission denied; choose a writable folder with --artifacts, or fix its permissions");
    }

    #[test]
    fn a_toml_error_stays_the_source_and_its_line_is_the_old_one() {
        let e = crate::config::TrainConfig::from_toml_str("epochs = 3\nlr = \"fast\"\n", "c.toml").unwrap_err();
        let toml = e.source().and_then(|s| s.downcast_ref::<toml::de::Error>()).expect("the toml error is the source");
        let msg = toml.message().lines().next().unwrap();
        assert!(msg.contains("\"fast\""), "{msg}");
        // As config.rs worded it before: field, toml's first line, line number, fix.
        let old = format!("c.toml: field `lr`: {msg} (line 2); see config/default.toml for the valid fields and values");
        assert_eq!(e.one_line(), old);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_json_error_stays_the_source_and_its_line_is_the_old_one() {
        let json = serde_json::from_str::<serde_json::Value>("{\"results\": [").unwrap_err();
        let text = json.to_string();
        // As `bench` reads its child's report: "{path}: {e}".
        let e = Error::failure_with("bench.json", json);
        assert!(e.source().and_then(|s| s.downcast_ref::<serde_json::Error>()).is_some_and(|j| j.is_eof()));
        assert_eq!(e.one_line(), format!("bench.json: {text}"));
    }

    #[test]
    fn the_line_walks_the_chain_and_ends_with_every_fix() {
        let inner = Error::io("cannot read", "a.png", ErrorKind::PermissionDenied.into());
        let e = Error::input_with("a.png: cannot open", inner).fix("pass a PNG or JPEG file");
        assert_eq!(
            e.one_line(),
            "a.png: cannot open: cannot read a.png: permission denied; pass a PNG or JPEG file; \
             choose a writable folder with --artifacts, or fix its permissions"
        );
        let io = e.source().and_then(|s| s.source()).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(std::io::Error::kind), Some(ErrorKind::PermissionDenied));
    }

    #[test]
    fn a_cause_already_said_or_paraphrased_is_left_out_and_a_long_one_keeps_its_first_line() {
        let said = Error::failure_with("x.bin: disk full", std::io::Error::other("disk full"));
        assert_eq!(said.one_line(), "x.bin: disk full");
        let reworded = Error::config_with("c.toml: bad value (line 3)", std::io::Error::other("parser says so")).fix("fix it").paraphrased();
        assert_eq!(reworded.one_line(), "c.toml: bad value (line 3); fix it");
        assert!(reworded.source().is_some(), "a paraphrased cause is still the source");
        let long = Error::data_with("f.gz", "corrupt gzip data", std::io::Error::other("bad header\n  at byte 3")).fix("replace the file");
        assert_eq!(long.one_line(), "f.gz: corrupt gzip data: bad header; replace the file");
        assert_eq!(long.exit_code(), 2);
    }

    #[test]
    fn errors_without_a_cause_print_as_before() {
        for e in [Error::config("c.toml: field `lr`: must be > 0"), Error::Interrupted("stopped; resume".into()), Error::data("f", "too short; re-download")] {
            assert_eq!(e.one_line(), e.to_string());
            assert!(e.source().is_none());
        }
    }
}
