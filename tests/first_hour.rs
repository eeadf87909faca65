//! What a new user meets in the first hour: outputs into missing folders refused before any
//! work with one message, messages that say what happened, `--version`, and help that tells
//! the truth about flags and defaults.
mod common;

use common::*;

#[test]
fn a_missing_output_folder_is_refused_before_any_work_with_one_message() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let data = f.data();
    let data = data.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("--out", vec!["predict", "--artifacts", "run", "--out", "missing/p.png", "--data-dir", data, "--skip-checksum", "--backend", CPU]),
        ("--out", vec!["plot", "--artifacts", "run", "--out", "missing/c.png"]),
        ("--out", vec!["report", "--artifacts", "run", "--out", "missing/r.html"]),
        ("--out", vec!["activations", "--out", "missing/a.png", "--backend", CPU]),
        ("--out", vec!["export", "--artifacts", "run", "--out", "missing/w.safetensors", "--backend", CPU]),
        ("--json", vec!["bench", "--epochs", "1", "--json", "missing/b.json", "--data-dir", data, "--skip-checksum", "--backend", CPU]),
    ];
    for (flag, args) in cases {
        let out = f.run(&args);
        out.bad_input();
        let expected = format!("no such folder for {flag} missing/");
        assert!(out.stderr.contains(&expected), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains(".tmp"), "{args:?} exposes a temp name: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?} worked before failing:\n{}", out.stdout);
    }
}

#[test]
fn resuming_a_finished_run_says_so_and_claims_no_file() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let out = f.resume("run", CPU, &[]);
    out.ok();
    assert!(out.stdout.contains("already has 1 epoch(s)"), "{}", out.stdout);
    assert!(!out.stdout.contains("saved "), "nothing was saved, yet:\n{}", out.stdout);
}

#[test]
fn an_empty_backend_variable_counts_as_unset() {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--epochs", "1", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum"];
    let out = run_env(f.dir.path(), &args, &[("D2L_MLP_BACKEND", "")]);
    // wgpu may be the default when built in; what matters is that the variable is not a usage error.
    assert_ne!(out.code, 2, "{}", out.stderr);
    assert!(!out.stderr.contains("a value is required"), "{}", out.stderr);
}

#[test]
fn bench_prints_its_header_once_and_only_the_files_it_was_asked_for() {
    let f = Fixture::new();
    let data = f.data();
    let out = f.run(&["bench", "--epochs", "1", "--json", "b.json", "--data-dir", data.to_str().unwrap(), "--skip-checksum"]);
    out.ok();
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("bench:")).count(), 1, "{}", out.stdout);
    let wrote: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("wrote ")).collect();
    assert_eq!(wrote, vec!["wrote b.json"], "{}", out.stdout);
    assert!(f.path("b.json").is_file());
}

#[test]
fn a_stop_before_the_first_epoch_ends_says_nothing_was_saved() {
    let f = Fixture::new();
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU];
    // The run waits at the start of epoch 1 (the test hook) until the signal stops it.
    let mut child = f.spawn(&args, Some("1"));
    child.wait_until("the run's config.toml", || f.path("run/config.toml").exists());
    child.signal("TERM");
    let out = child.output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(metrics(&f.path("run")).is_empty(), "no epoch finished");
    assert!(stderr.contains("before any epoch finished") && stderr.contains("nothing was saved"), "{stderr}");
    assert!(!stderr.contains("checkpoint and metrics.csv are saved"), "{stderr}");
}

#[test]
fn version_names_the_backends_built_in() {
    let f = Fixture::new();
    let out = f.run(&["--version"]);
    out.ok();
    let line = out.stdout.trim();
    assert!(line.starts_with(&format!("d2l-mlp {} (backends: ", env!("CARGO_PKG_VERSION"))), "{line}");
    for (feature, on) in [("flex", cfg!(feature = "flex")), ("ndarray", cfg!(feature = "ndarray")), ("wgpu", cfg!(feature = "wgpu"))] {
        assert_eq!(line.contains(feature), on, "{line}");
    }
}

const COMMANDS: [&str; 10] = ["train", "eval", "predict", "plot", "activations", "bench", "export", "import", "sweep", "report"];

/// The long flags a command's help declares (its options list), and every `--flag` its text
/// mentions anywhere (descriptions included).
fn help_flags(help: &str) -> (Vec<String>, Vec<String>) {
    let flag = |w: &str| -> Option<String> {
        let start = w.find("--")?;
        let name: String = w[start + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        (name.len() > 1 && name.chars().next().unwrap().is_ascii_alphabetic()).then(|| format!("--{name}"))
    };
    let declared = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("--") || l.starts_with("-h,") || l.starts_with("-V,"))
        .filter_map(|l| flag(l.split_whitespace().find(|w| w.starts_with("--"))?))
        .collect();
    let mentioned = help.split_whitespace().filter_map(flag).collect();
    (declared, mentioned)
}

#[test]
fn every_flag_that_help_mentions_exists() {
    let f = Fixture::new();
    for cmd in COMMANDS {
        let out = f.run(&[cmd, "--help"]);
        out.ok();
        let (declared, mentioned) = help_flags(&out.stdout);
        assert!(declared.contains(&"--help".to_string()), "{cmd}: {declared:?}");
        for m in mentioned {
            assert!(declared.contains(&m), "`{cmd} --help` mentions {m}, which `{cmd}` does not take:\n{}", out.stdout);
        }
    }
}

#[test]
fn the_defaults_help_states_are_the_ones_used() {
    let f = Fixture::new();
    // `--backend`'s stated order of defaults.
    let help = f.run(&["train", "--help"]).stdout;
    assert!(help.contains("default: $D2L_MLP_BACKEND, else wgpu when built in, else flex, else ndarray"), "{help}");
    let first = d2l_mlp::backend::compiled()[0];
    let expected = [d2l_mlp::backend::BackendKind::Wgpu, d2l_mlp::backend::BackendKind::Flex, d2l_mlp::backend::BackendKind::Ndarray]
        .into_iter()
        .find(|k| d2l_mlp::backend::compiled().contains(k))
        .unwrap();
    assert_eq!(first, expected);
    assert_eq!(d2l_mlp::backend::resolve(None).unwrap(), expected);
    // Only the backend that is on by default says so.
    let default_on = help.lines().filter(|l| l.contains("on by default")).collect::<Vec<_>>();
    assert_eq!(default_on.len(), 1, "{help}");
    assert!(default_on[0].contains("flex"), "{help}");
    // `--config`'s default is the book's recipe: config/default.toml equals the built-in defaults.
    assert!(help.contains("Default: config/default.toml (the book's recipe)"), "{help}");
    let file = d2l_mlp::config::TrainConfig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))).unwrap();
    assert_eq!(file, d2l_mlp::config::TrainConfig::default());
    // `bench` never downloads, and says so.
    let bench = f.run(&["bench", "--help"]).stdout;
    assert!(!bench.contains("download") || bench.contains("never downloads"), "{bench}");
    // `eval` needs the two t10k files and names every file it writes.
    let eval = f.run(&["eval", "--help"]).stdout;
    assert!(!eval.contains("four"), "{eval}");
    for file in ["eval.json", "mistakes.png", "report.html"] {
        assert!(eval.contains(file), "{file}: {eval}");
    }
}
