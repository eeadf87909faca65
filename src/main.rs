//! Command-line interface: parses arguments and hands them to `commands`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use d2l_mlp::backend::BackendKind;
use d2l_mlp::commands::{self, BackendArg, DataArgs, RunArg};

/// The Dive into Deep Learning "concise MLP" on Fashion-MNIST, trained with Burn.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A trained model: its run folder, which of its models, and the backend to run it on.
#[derive(Args, Debug, Clone)]
struct ModelArgs {
    #[command(flatten)]
    run: RunArg,
    /// Use this epoch's checkpoint instead of model.bpk.
    #[arg(long, value_name = "EPOCH")]
    checkpoint: Option<usize>,
    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the MLP (or resume a run) and write checkpoints, metrics.csv and model.bpk.
    Train(commands::train::TrainArgs),
    /// Evaluate a run's model on the 10,000 test images: loss, accuracy, per-class accuracy,
    /// confusion matrix; writes eval.json in the run folder.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Predict test images (table and a PNG grid), or your own pictures with --image.
    Predict {
        #[command(flatten)]
        model: ModelArgs,
        /// Number of test images (at most 512).
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
        #[command(flatten)]
        data: DataArgs,
    },
    /// Redraw a run's training curves from metrics.csv; with several runs, overlay their test accuracy.
    Plot {
        /// Run folder(s).
        #[arg(long, value_name = "DIR", num_args = 1.., default_value = "artifacts")]
        artifacts: Vec<PathBuf>,
        /// Output PNG (default: curves.png in the run folder; comparison.png in the first run folder for several runs).
        #[arg(long, value_name = "FILE.png")]
        out: Option<PathBuf>,
    },
    /// Draw ReLU, sigmoid and tanh on [-8, 8], each beside its derivative (from Burn's autodiff).
    Activations {
        /// Output PNG.
        #[arg(long, value_name = "FILE.png", default_value = "activations.png")]
        out: PathBuf,
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Measure seconds per epoch (train and test), images/s and peak memory; writes no run.
    Bench {
        /// Epochs per backend.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Also write the figures as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
        /// Only this backend (default: every backend built in, each in a process of its own).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Write the model as safetensors in the book's PyTorch layout (1.weight, 1.bias, 3.weight, 3.bias).
    Export {
        #[command(flatten)]
        model: ModelArgs,
        /// Output file (default: model.safetensors in the run folder).
        #[arg(long, value_name = "FILE.safetensors")]
        out: Option<PathBuf>,
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
        #[command(flatten)]
        backend: BackendArg,
    },
    /// Hyper-parameter search (grid, random, successive halving) over a space file: trials are
    /// ranked on held-out training images, the best is refitted on all of them and tested once.
    Sweep(commands::sweep::SweepArgs),
    /// Write report.html: one self-contained page for a run or a sweep folder.
    Report {
        #[command(flatten)]
        run: RunArg,
        /// Output HTML file (default: report.html in the folder).
        #[arg(long, value_name = "FILE.html")]
        out: Option<PathBuf>,
    },
}

fn run(command: Command, out: &mut dyn FnMut(String)) -> d2l_mlp::Result<()> {
    match command {
        Command::Train(args) => commands::train::train(&args, out).map(drop),
        Command::Eval { model: m, data } => commands::eval::eval(&m.run, m.checkpoint, &data, &m.backend, out).map(drop),
        Command::Predict { model: m, count, seed, out: png, image, data } => {
            let o = commands::predict::PredictArgs { count, seed, png, images: image, checkpoint: m.checkpoint };
            commands::predict::predict(&m.run, &o, &data, &m.backend, out).map(drop)
        }
        Command::Plot { artifacts, out: png } => commands::plot::plot_runs(&artifacts, png.as_deref(), out).map(drop),
        Command::Activations { out: png, backend } => commands::plot::activations(&png, &backend, out),
        Command::Bench { epochs, json, data, backend } => commands::bench::bench(epochs, json.as_deref(), &data, backend, out),
        Command::Export { model: m, out: file } => {
            commands::interchange::export(&m.run, m.checkpoint, file.as_deref(), &m.backend, out).map(drop)
        }
        Command::Import { file, artifacts, config, overwrite, backend } => {
            commands::interchange::import(&file, &artifacts, config.as_deref(), overwrite, &backend, out)
        }
        Command::Sweep(args) => commands::sweep::sweep(&args, out),
        Command::Report { run, out: file } => commands::report(&run, file.as_deref(), out).map(drop),
    }
}

fn main() -> ExitCode {
    commands::process::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return commands::process::usage_error(e),
    };
    let mut out = |line: String| println!("{line}");
    match run(cli.command, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(commands::process::exit_code(&e))
        }
    }
}
