//! `export` and `import`: weights in the book's PyTorch layout (safetensors), both ways.

use std::path::{Path, PathBuf};

use super::{BackendArg, Out, RunArg};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::interchange::{self, TorchFile};
use crate::run::{CONFIG_FILE, RunDir, SAFETENSORS_FILE};

/// The run's model (or a checkpoint) as safetensors.
pub fn export(run: &RunArg, epoch: Option<usize>, file: Option<&Path>, backend: &BackendArg, out: Out) -> Result<PathBuf> {
    let run = run.dir();
    run.load_config()?;
    let target = file.map(Path::to_path_buf).unwrap_or_else(|| run.file(SAFETENSORS_FILE));
    check_parent(&target)?;
    let _lock = file.is_none().then(|| run.lock()).transpose()?;
    let device = backend.open(out)?.device;
    let (model, cfg, src) = run.load_model(epoch, &device)?;
    interchange::export(&model, &cfg, &target)?;
    out(format!("wrote {} from {} ({})", target.display(), src.display(), cfg.describe_model()));
    Ok(target)
}

/// An output file's folder must exist.
fn check_parent(target: &Path) -> Result<()> {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::input(format!(
            "{}: no such folder for --out {}; create it first or pass another path",
            dir.display(),
            target.display()
        ))),
        _ => Ok(()),
    }
}

/// Make a run folder (model.bpk + config.toml) from safetensors weights.
pub fn import(file: &Path, artifacts: &Path, config: Option<&Path>, overwrite: bool, backend: &BackendArg, out: Out) -> Result<()> {
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
