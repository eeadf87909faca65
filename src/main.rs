//! Command-line interface: parses arguments and hands them to `commands`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use d2l_mlp::commands;

/// The Dive into Deep Learning "concise MLP" on Fashion-MNIST, trained with Burn.
#[derive(Parser, Debug)]
#[command(version = commands::version(), about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the MLP (or resume a run) and write checkpoints, metrics.csv and model.bpk.
    Train(commands::train::TrainArgs),
    /// Evaluate a run's model on the 10,000 test images (the two t10k files): loss, accuracy,
    /// per-class accuracy, confusion matrix; writes eval.json, mistakes.png and report.html in
    /// the run folder.
    Eval(commands::eval::EvalArgs),
    /// Predict test images (table and a PNG grid), or your own pictures with --image.
    Predict(commands::predict::PredictArgs),
    /// Redraw a run's training curves from metrics.csv; with several runs, overlay their test accuracy.
    Plot(commands::plot::PlotArgs),
    /// Draw ReLU, sigmoid and tanh on [-8, 8], each beside its derivative (from Burn's autodiff).
    Activations(commands::plot::ActivationsArgs),
    /// Measure seconds per epoch (train and test), images/s and peak memory; writes no run.
    Bench(commands::bench::BenchArgs),
    /// Write the model as safetensors in the book's PyTorch layout (1.weight, 1.bias, 3.weight, 3.bias).
    Export(commands::interchange::ExportArgs),
    /// Make a run folder (model.bpk + config.toml) from safetensors weights in the book's layout.
    Import(commands::interchange::ImportArgs),
    /// Hyper-parameter search (grid, random, TPE, successive halving or ASHA) over a space file: trials are
    /// ranked on held-out training images, the best is refitted on all of them and tested once.
    Sweep(commands::sweep::SweepArgs),
    /// Write report.html: one self-contained page for a run or a sweep folder.
    Report(commands::ReportArgs),
}

fn run(command: Command, out: &mut dyn FnMut(String)) -> d2l_mlp::Result<()> {
    match command {
        Command::Train(args) => commands::train::train(&args, out).map(drop),
        Command::Eval(args) => commands::eval::eval(&args, out).map(drop),
        Command::Predict(args) => commands::predict::predict(&args, out).map(drop),
        Command::Plot(args) => commands::plot::plot_runs(&args, out).map(drop),
        Command::Activations(args) => commands::plot::activations(&args, out),
        Command::Bench(args) => commands::bench::bench(&args, out),
        Command::Export(args) => commands::interchange::export(&args, out).map(drop),
        Command::Import(args) => commands::interchange::import(&args, out),
        Command::Sweep(args) => commands::sweep::sweep(&args, out),
        Command::Report(args) => commands::report(&args, out).map(drop),
    }
}

fn main() -> ExitCode {
    commands::process::unset_empty_backend_env();
    commands::process::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return commands::process::usage_error(e),
    };
    match run(cli.command, &mut commands::print_line) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            commands::print_error(&format!("error: {}", e.one_line()));
            ExitCode::from(commands::process::exit_code(&e))
        }
    }
}
