//! One module per command: each turns parsed arguments into library calls and prints the
//! result through `out` (one line per call). Shared argument groups live here.

pub mod bench;
pub mod eval;
pub mod interchange;
pub mod plot;
mod pictures;
pub mod predict;
pub mod process;
pub mod progress;
pub mod sweep;
pub mod train;
mod validation;

use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::{self, BackendKind, Selected};
use crate::data::{DataOptions, Loaded, Need};
use crate::error::Result;
use crate::run::RunDir;

/// `--version`: the crate's version and the backends built into this binary, the default
/// first (scripts read it), e.g. `0.1.0 (backends: flex)`.
pub fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let names: Vec<&str> = backend::compiled().iter().map(|k| k.name()).collect();
        // The SPIR-V build says so after the list (scripts read the list as it is).
        let spirv = if cfg!(feature = "vulkan") { ", wgpu through SPIR-V on Vulkan" } else { "" };
        format!("{} (backends: {}){spirv}", env!("CARGO_PKG_VERSION"), names.join(", "))
    })
}

/// Where a command prints its lines.
pub type Out<'a> = &'a mut dyn FnMut(String);

/// Set once stdout's reader is gone (`eval | head -3`): later lines are dropped, the work goes on.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The one place output lines reach stdout. A closed pipe stops the printing, not the command:
/// it still writes its files (eval.json, the pictures, the report).
pub fn print_line(line: String) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// The one place messages reach stderr; a closed stderr is ignored (nothing to tell it to).
pub fn print_error(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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

/// A trained model: its run folder, which of its models, and the backend to run it on.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Use this epoch's checkpoint instead of model.bpk.
    #[arg(long, value_name = "EPOCH")]
    pub checkpoint: Option<usize>,
    #[command(flatten)]
    pub backend: BackendArg,
}

#[derive(Args, Debug, Clone, Default)]
pub struct BackendArg {
    /// Backend to run on (default: $D2L_MLP_BACKEND, else wgpu when built in, else flex, else ndarray).
    #[arg(long, value_enum, env = backend::ENV_BACKEND)]
    pub backend: Option<BackendKind>,
    /// Run Burn's own operations everywhere, without this project's fused flex operations
    /// (slower; to compare results or rule the fused path out).
    #[arg(long, env = crate::engine::ENV_REFERENCE_OPS, value_parser = clap::builder::BoolishValueParser::new())]
    pub reference_ops: bool,
}

impl BackendArg {
    /// Resolve and open the backend; its description is the command's first line.
    pub fn open(&self, out: Out) -> Result<Selected> {
        let selected = self.select()?;
        out(selected.description.clone());
        Ok(selected)
    }

    /// Set the fast path's switch, then resolve and open the backend; the description says
    /// when the fused operations are off on flex.
    pub fn select(&self) -> Result<Selected> {
        crate::engine::use_reference_ops(self.reference_ops);
        Ok(with_ops_note(backend::open(self.backend, backend_asked())?))
    }
}

/// Whether the backend came from `--backend` or (clap fills the flag from it) the environment.
fn backend_asked() -> backend::Asked {
    let flag = std::env::args_os().skip(1).any(|a| a == "--backend" || a.to_string_lossy().starts_with("--backend="));
    if !flag && std::env::var_os(backend::ENV_BACKEND).is_some() { backend::Asked::Env } else { backend::Asked::Flag }
}

/// The backend's description, saying so when the fused flex operations are switched off.
pub fn with_ops_note(mut selected: Selected) -> Selected {
    if crate::engine::reference_ops() && selected.kind == BackendKind::Flex {
        selected.description.push_str(" | Burn's reference ops (--reference-ops)");
    }
    selected
}

#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// Folder with the Fashion-MNIST IDX files (gzipped or not). Default: $FASHION_MNIST_DIR,
    /// then data/fashion-mnist/, then /usr/share/datasets/fashion-mnist/, else download.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not check the files against the official Fashion-MNIST SHA-256 sums (for your own IDX data).
    #[arg(long)]
    pub skip_checksum: bool,
}

impl DataArgs {
    pub fn options(&self) -> DataOptions {
        let bars = crate::data::TransferSink(std::sync::Arc::new(progress::DownloadBars::default()));
        DataOptions { data_dir: self.data_dir.clone(), skip_checksum: self.skip_checksum, transfers: Some(bars) }
    }

    /// Find (or download), read and check the splits `need` names; says where they came from.
    pub fn load(&self, need: Need, out: Out) -> Result<Loaded> {
        let loaded = crate::data::open(&self.options(), need, out)?;
        out(loaded.describe());
        Ok(loaded)
    }
}

/// An output file's folder must exist: checked before any work, with one message for every
/// command (`flag` is the option that named the file, e.g. `--out` or `--json`).
pub fn check_out(flag: &str, target: &Path) -> Result<()> {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(crate::Error::input(format!(
            "{}: no such folder for {flag} {}; create it first or pass another path",
            dir.display(),
            target.display()
        ))),
        _ => Ok(()),
    }
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Output HTML file (default: report.html in the folder).
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,
}

/// `report`: write the page of a run or sweep folder, holding the folder's writer lock when
/// the page goes into it (a run that another process trains is refused, as for every writer).
pub fn report(args: &ReportArgs, out: Out) -> Result<PathBuf> {
    let file = args.out.as_deref();
    if let Some(f) = file {
        check_out("--out", f)?;
    }
    let dir = args.run.dir();
    let into_folder = file.is_none_or(|f| f.parent().is_some_and(|p| same_dir(p, dir.path())));
    let _lock = if into_folder && dir.path().is_dir() { Some(dir.lock()?) } else { None };
    let page = crate::report::write_report(&args.run.artifacts, file)?;
    out(format!("wrote {}", page.display()));
    Ok(page)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Refresh the report after a command changed the folder. The page is a convenience: a
/// failure to write it is said, and does not fail the command.
pub fn refresh_report(run: &RunDir, out: Out) {
    match crate::report::write_report(run.path(), None) {
        Ok(page) => out(format!("report: {}", page.display())),
        Err(e) => out(format!("warning: the report page was not updated ({})", e.one_line())),
    }
}
