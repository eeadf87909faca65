//! The process around a command: signals (Ctrl-C, SIGTERM, SIGHUP stop a run between steps),
//! a closed stdout pipe, panics, usage errors and exit codes.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use burn::train::Interrupter;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::Error;

/// The first stop signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

fn current() -> &'static Mutex<Option<Interrupter>> {
    static SLOT: OnceLock<Mutex<Option<Interrupter>>> = OnceLock::new();
    SLOT.get_or_init(|| Mutex::new(None))
}

/// An empty `D2L_MLP_BACKEND=` means "not set", as for most tools' variables, instead of
/// clap's "a value is required for '--backend'" about a flag nobody passed.
pub fn unset_empty_backend_env() {
    if std::env::var_os(crate::backend::ENV_BACKEND).is_some_and(|v| v.is_empty()) {
        // SAFETY: called first thing in `main`, before any thread exists that could read the
        // environment at the same time.
        unsafe { std::env::remove_var(crate::backend::ENV_BACKEND) };
    }
}

/// Set up the process: stop signals and a one-line panic message. SIGPIPE stays ignored (Rust's
/// default): a closed output pipe (`eval | head -3`) ends the printing in `print_line`, and the
/// command still writes its files.
pub fn install() {
    one_line_panics();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        std::thread::spawn(move || {
            for sig in signals.forever() {
                on_signal(sig);
            }
        });
    }
}

/// Panics print one line. Installed at start, and again after Burn's dashboard, which puts
/// a hook of its own in place and may leave it there.
pub fn one_line_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let msg = msg.lines().next().unwrap_or("").to_string();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        super::print_error(&format!("error: internal error{at}: {msg} (a bug: please report it with the command you ran)"));
    }));
}

fn on_signal(sig: i32) {
    let name = match sig {
        SIGINT => "Ctrl-C",
        SIGTERM => "SIGTERM",
        _ => "SIGHUP",
    };
    if RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        // A second signal: every file is written atomically, so leaving now is safe.
        super::print_error(&format!("{name} again: exiting now"));
        std::process::exit(128 + RECEIVED.load(Ordering::SeqCst));
    }
    let running = current().lock().ok().and_then(|g| g.clone());
    match running {
        Some(i) => {
            super::print_error(&format!("{name}: stopping after the current step (send it again to quit at once)"));
            i.stop(Some(name));
        }
        None => std::process::exit(128 + sig),
    }
}

/// The interrupter of the run in progress, which stop signals trigger.
pub fn stop_switch() -> Interrupter {
    let i = Interrupter::new();
    if let Ok(mut g) = current().lock() {
        *g = Some(i.clone());
    }
    i
}

/// Exit status: 2 bad input, 1 failure, 128 + the signal that stopped a run.
pub fn exit_code(e: &Error) -> u8 {
    match (e, RECEIVED.load(Ordering::SeqCst)) {
        (Error::Interrupted(_), sig) if sig > 0 => (128 + sig) as u8,
        _ => e.exit_code() as u8,
    }
}

/// A usage error as one line: clap's message (its first lines, joined) and a hint.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        _ => {}
    }
    super::print_error(&one_line(&e.to_string()));
    ExitCode::from(2)
}

/// Join clap's message up to its usage block into one line.
fn one_line(text: &str) -> String {
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let mut line = String::new();
    for p in parts {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') || p.starts_with('[') { " " } else { "; " });
        }
        line.push_str(p);
    }
    if line.is_empty() {
        line.push_str("error: invalid arguments");
    }
    format!("{line}; run with --help for usage")
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_messages_keep_their_detail_on_one_line() {
        let missing = "error: the following required arguments were not provided:\n  --artifacts <DIR>\n\nUsage: d2l-mlp import --artifacts <DIR> <FILE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(missing),
            "error: the following required arguments were not provided: --artifacts <DIR>; run with --help for usage"
        );
        let bad = "error: invalid value 'cuda' for '--backend <BACKEND>'\n  [possible values: ndarray, flex, wgpu]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line(bad),
            "error: invalid value 'cuda' for '--backend <BACKEND>' [possible values: ndarray, flex, wgpu]; run with --help for usage"
        );
    }
}
