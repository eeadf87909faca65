//! One module per command: each turns parsed arguments into library calls and prints the
//! result through `out` (one line per call). Shared argument groups live here.

pub mod bench;
pub mod eval;
pub mod interchange;
pub mod plot;
pub mod predict;
pub mod process;
pub mod progress;
pub mod sweep;
pub mod train;

use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::{self, BackendKind, Selected};
use crate::data::{DataOptions, Loaded, Need};
use crate::error::Result;
use crate::run::RunDir;

/// Where a command prints its lines.
pub type Out<'a> = &'a mut dyn FnMut(String);

/// The one place output lines reach stdout.
pub fn print_line(line: String) {
    println!("{line}");
}

#[derive(Args, Debug, Clone)]
pub struct RunArg {
    /// Run folder (checkpoints, metrics, the final model).
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub artifacts: PathBuf,
}

impl RunArg {
    pub fn dir(&self) -> RunDir {
        RunDir::new(&self.artifacts)
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct BackendArg {
    /// Backend to run on (default: $D2L_MLP_BACKEND, else wgpu when built in, else flex, else ndarray).
    #[arg(long, value_enum, env = backend::ENV_BACKEND)]
    pub backend: Option<BackendKind>,
}

impl BackendArg {
    /// Resolve and open the backend; its description is the command's first line.
    pub fn open(&self, out: Out) -> Result<Selected> {
        let selected = backend::open(self.backend)?;
        out(selected.description.clone());
        Ok(selected)
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Folder with the four Fashion-MNIST IDX files (gzipped or not). Default: $FASHION_MNIST_DIR,
    /// then data/fashion-mnist/, then /usr/share/datasets/fashion-mnist/, else download.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not check the files against the official Fashion-MNIST SHA-256 sums (for your own IDX data).
    #[arg(long)]
    pub skip_checksum: bool,
}

impl DataArgs {
    pub fn options(&self) -> DataOptions {
        DataOptions { data_dir: self.data_dir.clone(), skip_checksum: self.skip_checksum }
    }

    /// Find (or download), read and check the splits `need` names; says where they came from.
    pub fn load(&self, need: Need, out: Out) -> Result<Loaded> {
        let loaded = crate::data::open(&self.options(), need, out)?;
        out(loaded.describe());
        Ok(loaded)
    }
}

/// `report`: write the page of a run or sweep folder.
pub fn report(run: &RunArg, file: Option<&Path>, out: Out) -> Result<PathBuf> {
    let page = crate::report::write_report(&run.artifacts, file)?;
    out(format!("wrote {}", page.display()));
    Ok(page)
}

/// Refresh the report after a command changed the folder. The page is a convenience: a
/// failure to write it is said, and does not fail the command.
pub fn refresh_report(run: &RunDir, out: Out) {
    match crate::report::write_report(run.path(), None) {
        Ok(page) => out(format!("report: {}", page.display())),
        Err(e) => out(format!("warning: the report page was not updated ({e})")),
    }
}
