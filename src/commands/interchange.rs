//! `export` and `import`: weights in the book's PyTorch layout (safetensors), both ways.

use std::path::{Path, PathBuf};

use super::{BackendArg, ModelArgs, Out};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::interchange::{self, TorchFile};
use crate::run::{CONFIG_FILE, RunDir, SAFETENSORS_FILE};

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file (default: model.safetensors in the run folder).
    #[arg(long, value_name = "FILE.safetensors")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// The safetensors file.
    pub file: PathBuf,
    /// Run folder to create.
    #[arg(long, value_name = "DIR")]
    pub artifacts: PathBuf,
    /// Config whose hidden sizes must match the tensors (default: the file's metadata, else the recipe).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Replace an existing run in --artifacts.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub backend: BackendArg,
}

/// The run's model (or a checkpoint) as safetensors.
pub fn export(args: &ExportArgs, out: Out) -> Result<PathBuf> {
    let (epoch, file, backend) = (args.model.checkpoint, args.out.as_deref(), &args.model.backend);
    let run = args.model.run.dir();
    if let Some(f) = file {
        super::check_out("--out", f)?;
    }
    run.load_config()?;
    let target = file.map(Path::to_path_buf).unwrap_or_else(|| run.file(SAFETENSORS_FILE));
    let _lock = file.is_none().then(|| run.lock()).transpose()?;
    let device = backend.open(out)?.device;
    let (model, cfg, src) = run.load_model(epoch, &device)?;
    interchange::export(&model, &cfg, &target)?;
    out(format!("wrote {} from {} ({})", target.display(), src.display(), cfg.describe_model()));
    if file.is_none() {
        super::refresh_report(&run, out);
    }
    Ok(target)
}

/// Make a run folder (model.bpk + config.toml) from safetensors weights.
pub fn import(args: &ImportArgs, out: Out) -> Result<()> {
    let (file, artifacts, config) = (args.file.as_path(), args.artifacts.as_path(), args.config.as_deref());
    let (overwrite, backend) = (args.overwrite, &args.backend);
    let run = RunDir::new(artifacts);
    let weights = TorchFile::open(file)?;
    let cfg = import_config(file, &weights, config)?;
    run.check_not_file()?;
    let refuse = |run: &RunDir| {
        Err(Error::input(format!("{}: already holds a run; pick another --artifacts folder or pass --overwrite", run.path().display())))
    };
    if run.holds_run() && !overwrite {
        return refuse(&run);
    }
    let device = backend.open(out)?.device;
    // Build (and check) the model before the folder is created: a refused file leaves nothing behind.
    let model = weights.into_model(&cfg, &device)?;
    let _lock = run.lock()?;
    if run.holds_run() && !overwrite {
        return refuse(&run);
    }
    if overwrite {
        run.remove_run()?;
    }
    cfg.save_with_header(&run.file(CONFIG_FILE), &format!("Imported by `import` from {}.", file.display()))?;
    run.save_model(&model)?;
    out(format!(
        "imported {} into {} ({}); try `eval --artifacts {}`",
        file.display(),
        run.path().display(),
        cfg.describe_model(),
        run.path().display()
    ));
    Ok(())
}

fn import_config(file: &Path, weights: &TorchFile, config: Option<&Path>) -> Result<TrainConfig> {
    let hidden = weights.hidden.clone();
    let Some(p) = config else {
        let base = weights.config()?.unwrap_or_default();
        return Ok(TrainConfig { hidden, ..base });
    };
    let c = TrainConfig::load(p)?;
    if c.hidden != hidden {
        return Err(Error::input(format!(
            "{}: hidden = {:?} but {} holds layers {:?}; use a config whose `hidden` matches the tensors",
            p.display(),
            c.hidden,
            file.display(),
            crate::model::layer_sizes(&hidden)
        )));
    }
    Ok(c)
}
