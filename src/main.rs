//! Command-line interface: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use d2l_mlp::backend::BackendKind;
use d2l_mlp::config::Overrides;
use d2l_mlp::data::DataOptions;
use d2l_mlp::training::{self, TrainOptions};
use d2l_mlp::{bench, commands};
use d2l_mlp::Error;

/// The Dive into Deep Learning "concise MLP" on Fashion-MNIST, trained with Burn.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// Folder with the four Fashion-MNIST IDX files (gzipped or not). Default: $FASHION_MNIST_DIR,
    /// then data/fashion-mnist/, then /usr/share/datasets/fashion-mnist/, else download.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Do not check the files against the official Fashion-MNIST SHA-256 sums (for your own IDX data).
    #[arg(long)]
    skip_checksum: bool,
}

impl DataArgs {
    fn options(&self) -> DataOptions {
        DataOptions {
            data_dir: self.data_dir.clone(),
            skip_checksum: self.skip_checksum,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the MLP (or resume a run) and write checkpoints, metrics.csv and model.bpk.
    Train {
        /// Run configuration (TOML). Default: config/default.toml (the book's recipe).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Run folder for checkpoints, metrics and the final model.
        #[arg(long, value_name = "DIR", default_value = "artifacts")]
        artifacts: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Number of epochs (with --resume: the new total).
        #[arg(long)]
        epochs: Option<usize>,
        /// SGD learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Mini-batch size.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Seed for initialisation and shuffling.
        #[arg(long)]
        seed: Option<u64>,
        /// Continue the run in --artifacts from its latest complete checkpoint.
        #[arg(long)]
        resume: bool,
        /// Replace an existing run in --artifacts.
        #[arg(long)]
        overwrite: bool,
        /// Keep only the last N epoch checkpoints (default: keep all).
        #[arg(long, value_name = "N")]
        keep_checkpoints: Option<usize>,
        /// Start from these weights (safetensors in the book's PyTorch layout) instead of random ones.
        #[arg(long, value_name = "FILE")]
        init_from: Option<PathBuf>,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Evaluate a run's model on the 10,000 test images: loss, accuracy, per-class accuracy,
    /// confusion matrix; writes eval.json in the run folder.
    Eval {
        /// Run folder.
        #[arg(long, value_name = "DIR", default_value = "artifacts")]
        artifacts: PathBuf,
        /// Evaluate this epoch's checkpoint instead of model.bpk.
        #[arg(long, value_name = "EPOCH")]
        checkpoint: Option<usize>,
        #[command(flatten)]
        data: DataArgs,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Predict test images (table and a PNG grid), or your own pictures with --image.
    Predict {
        /// Run folder.
        #[arg(long, value_name = "DIR", default_value = "artifacts")]
        artifacts: PathBuf,
        /// Number of test images.
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Pick random test images with this seed (default: the first ones).
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the PNG grid (default: predictions.png in the run folder).
        #[arg(long, value_name = "FILE.png")]
        out: Option<PathBuf>,
        /// Classify these PNG/JPEG pictures instead (any size, colour or grayscale): top-3 classes.
        #[arg(long, value_name = "PATH", num_args = 1..)]
        image: Vec<PathBuf>,
        /// Use this epoch's checkpoint instead of model.bpk.
        #[arg(long, value_name = "EPOCH")]
        checkpoint: Option<usize>,
        #[command(flatten)]
        data: DataArgs,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Redraw a run's training curves from metrics.csv; with several runs, overlay their test accuracy.
    Plot {
        /// Run folder(s).
        #[arg(long, value_name = "DIR", num_args = 1.., default_value = "artifacts")]
        artifacts: Vec<PathBuf>,
        /// Output PNG (default: curves.png in the run folder; comparison.png for several runs).
        #[arg(long, value_name = "FILE.png")]
        out: Option<PathBuf>,
    },
    /// Draw ReLU, sigmoid and tanh on [-8, 8], each beside its derivative (from Burn's autodiff).
    Activations {
        /// Output PNG.
        #[arg(long, value_name = "FILE.png", default_value = "activations.png")]
        out: PathBuf,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Measure seconds per epoch (train and test), images/s and peak memory; writes no run.
    Bench {
        /// Epochs per backend.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Only this backend (default: every backend built in).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Also write the figures as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write the model as safetensors in the book's PyTorch layout (1.weight, 1.bias, 3.weight, 3.bias).
    Export {
        /// Run folder.
        #[arg(long, value_name = "DIR", default_value = "artifacts")]
        artifacts: PathBuf,
        /// Export this epoch's checkpoint instead of model.bpk.
        #[arg(long, value_name = "EPOCH")]
        checkpoint: Option<usize>,
        /// Output file (default: model.safetensors in the run folder).
        #[arg(long, value_name = "FILE.safetensors")]
        out: Option<PathBuf>,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Make a run folder (model.bpk + config.toml) from safetensors weights in the book's layout.
    Import {
        /// The safetensors file.
        file: PathBuf,
        /// Run folder to create.
        #[arg(long, value_name = "DIR")]
        artifacts: PathBuf,
        /// Config whose hidden sizes must match the tensors (default: the file's metadata, else the recipe).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Replace an existing run in --artifacts.
        #[arg(long)]
        overwrite: bool,
        /// Backend to run on (default: wgpu when built in, else flex, else ndarray).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
}

fn run(cli: Cli) -> Result<(), Error> {
    let mut out = |line: String| println!("{line}");
    match cli.command {
        Command::Train {
            config,
            artifacts,
            data,
            epochs,
            lr,
            batch_size,
            seed,
            resume,
            overwrite,
            keep_checkpoints,
            init_from,
            backend,
        } => {
            let opts = TrainOptions {
                artifacts,
                config_path: config,
                overrides: Overrides { epochs, lr, batch_size, seed },
                data: data.options(),
                backend,
                resume,
                overwrite,
                keep_checkpoints,
                init_from,
                plots: true,
                echo_epochs: true,
            };
            training::train(&opts, &mut out)?;
        }
        Command::Eval { artifacts, checkpoint, data, backend } => {
            commands::eval(&artifacts, checkpoint, &data.options(), backend, &mut out)?;
        }
        Command::Predict { artifacts, count, seed, out: png, image, checkpoint, data, backend } => {
            let o = commands::PredictOptions {
                run: artifacts,
                count,
                seed,
                out_png: png,
                images: image,
                checkpoint,
                data: data.options(),
                backend,
            };
            commands::predict(&o, &mut out)?;
        }
        Command::Plot { artifacts, out: png } => {
            commands::plot_runs(&artifacts, png.as_deref(), &mut out)?;
        }
        Command::Activations { out: png, backend } => {
            commands::activations(&png, backend, &mut out)?;
        }
        Command::Bench { epochs, backend, json, data } => {
            let o = bench::BenchOptions {
                epochs,
                backend,
                data: data.options(),
                json,
                synthetic_size: (60_000, 10_000),
            };
            bench::bench(&o, &mut out)?;
        }
        Command::Export { artifacts, checkpoint, out: file, backend } => {
            commands::export(&artifacts, checkpoint, file.as_deref(), backend, &mut out)?;
        }
        Command::Import { file, artifacts, config, overwrite, backend } => {
            commands::import(&file, &artifacts, config.as_deref(), overwrite, backend, &mut out)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // A panic is a bug: say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let msg = msg.lines().next().unwrap_or("").to_string();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{at}: {msg} (please report this)");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand { 2 } else { 0 });
            }
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            let tip = text
                .lines()
                .find(|l| l.trim_start().starts_with("tip:"))
                .map(|t| format!(" ({})", t.trim()))
                .unwrap_or_default();
            eprintln!("{first}{tip}; run with --help for usage");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
