//! A test hook, read here only: `D2L_MLP_TEST_HOLD=EPOCH` (or `EPOCH@RUN`) makes training wait
//! at the start of epoch EPOCH (of the run whose folder path ends with RUN, when given) until
//! the run's stop switch is set (a stop signal to `train`) or the process is killed; a sweep's
//! trial waits until the process is killed. While it waits, every earlier epoch's row is on disk
//! (its checkpoint too, or being written on Burn's checkpointer threads) and epoch EPOCH cannot
//! end (Burn's event queue holds one step), so a test stops or kills a run at a point it reaches
//! for sure instead of racing it with a timer (`tests/common`). Nothing else reads the variable;
//! users have no reason to set it.

use std::path::Path;
use std::time::Duration;

use burn::train::Interrupter;

use crate::error::{Error, Result};

pub const ENV: &str = "D2L_MLP_TEST_HOLD";

/// The epoch at whose start the run in `run` waits; `None` when the hook is unset or names
/// another run.
pub fn epoch_for(run: &Path) -> Result<Option<usize>> {
    let Some(value) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    parse(&value.to_string_lossy(), run)
}

fn parse(value: &str, run: &Path) -> Result<Option<usize>> {
    let (epoch, suffix) = match value.split_once('@') {
        Some((e, r)) => (e, Some(r)),
        None => (value, None),
    };
    let bad = || Error::input(format!("{ENV}={value}: expected EPOCH or EPOCH@RUN, EPOCH from 1 (a test hook: unset it)"));
    let epoch = epoch.trim().parse::<usize>().ok().filter(|e| *e >= 1).ok_or_else(bad)?;
    Ok(suffix.is_none_or(|s| run.ends_with(s)).then_some(epoch))
}

/// Wait until `stop` is set. Polled: a signal sets the switch from another thread.
pub fn wait(stop: &Interrupter) {
    while !stop.should_stop() {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_names_an_epoch_and_optionally_the_run() {
        let run = Path::new("/tmp/x/cut/trials/001");
        assert_eq!(parse("3", run).unwrap(), Some(3));
        assert_eq!(parse("2@trials/001", run).unwrap(), Some(2));
        assert_eq!(parse("2@trials/002", run).unwrap(), None);
        // Whole folder names only: `01` is not the end of `001`.
        assert_eq!(parse("2@01", run).unwrap(), None);
        for bad in ["", "0", "x", "two@trials/001"] {
            let e = parse(bad, run).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{ENV}={bad}: expected EPOCH")), "{e}");
        }
    }
}
