//! `run.json`: where and when a run was trained (for the report page).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;

pub const BURN_VERSION: &str = "0.22.1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub backend: String,
    pub device: String,
    pub burn_version: String,
    /// RFC 3339 (UTC) time the first epoch of this session started.
    pub started: String,
    /// RFC 3339 (UTC) time the run last finished an epoch.
    pub finished: Option<String>,
    pub seconds_per_epoch: Option<f64>,
    /// A run with a validation split: the epoch (best validation accuracy) whose model is
    /// `model.bpk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// With `patience`: the last epoch trained before the run stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early_after: Option<usize>,
}

impl RunInfo {
    pub fn new(backend: &str, device: &str) -> Self {
        Self {
            backend: backend.to_string(),
            device: device.to_string(),
            burn_version: BURN_VERSION.to_string(),
            started: now_rfc3339(),
            finished: None,
            seconds_per_epoch: None,
            best_epoch: None,
            stopped_early_after: None,
        }
    }

    pub fn read(path: &Path) -> Option<RunInfo> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::failure_with(format!("cannot encode {}", path.display()), e))?;
        atomic_write(path, text.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
    }
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ` (UTC), without a date-time dependency.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
