//! Bad input of every kind: one line on stderr naming the file or field and the fix, exit 2 for
//! bad input (1 for other failures), never a panic, and nothing written earlier lost.

mod common;
use common::*;
use d2l_mlp::data::{PIXELS, encode_images, encode_labels};
use std::path::Path;

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Replace one of the fixture's (gzipped) files.
fn put(f: &Fixture, name: &str, content: &[u8]) {
    let _ = std::fs::remove_file(f.data().join(format!("{name}.gz")));
    std::fs::write(f.data().join(name), content).unwrap();
}

#[test]
fn bad_data_files_are_named_with_a_fix() {
    type Break = fn(&Fixture);
    let cases: Vec<(&str, Break, &str)> = vec![
        ("missing file", |f| std::fs::remove_file(f.data().join("t10k-labels-idx1-ubyte.gz")).unwrap(), "t10k-labels-idx1-ubyte"),
        ("empty file", |f| put(f, "train-images-idx3-ubyte", b""), "is empty"),
        ("wrong magic", |f| {
            let mut b = encode_images(&vec![0; 4 * PIXELS]);
            b[2] = 9;
            put(f, "train-images-idx3-ubyte", &b)
        }, "magic"),
        ("truncated mid-image", |f| {
            let b = encode_images(&vec![0; 512 * PIXELS]);
            put(f, "train-images-idx3-ubyte", &b[..16 + 100 * PIXELS + 300])
        }, "truncated"),
        ("fewer labels than images", |f| put(f, "train-labels-idx1-ubyte", &encode_labels(&[1; 500])), "500 labels"),
        ("label out of range", |f| {
            let mut l = vec![1u8; 512];
            l[7] = 10;
            put(f, "train-labels-idx1-ubyte", &encode_labels(&l))
        }, "label 10"),
        ("32x32 images", |f| {
            let mut b = Vec::new();
            for v in [0x0803u32, 512, 32, 32] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend(vec![0u8; 512 * 1024]);
            put(f, "train-images-idx3-ubyte", &b)
        }, "32x32"),
        ("corrupt gzip", |f| {
            let p = f.data().join("train-images-idx3-ubyte.gz");
            let mut b = std::fs::read(&p).unwrap();
            let n = b.len();
            for x in &mut b[20..n - 20] {
                *x = x.wrapping_mul(31).wrapping_add(7);
            }
            std::fs::write(&p, b).unwrap()
        }, "train-images-idx3-ubyte.gz"),
        ("directory instead of a file", |f| {
            std::fs::remove_file(f.data().join("t10k-images-idx3-ubyte.gz")).unwrap();
            std::fs::create_dir(f.data().join("t10k-images-idx3-ubyte")).unwrap()
        }, "is a folder"),
        ("a header claiming 4 billion images", |f| {
            let mut b = Vec::new();
            for v in [0x0803u32, 4_000_000_000, 28, 28] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(&[0; 84]);
            put(f, "train-images-idx3-ubyte", &gz(&b))
        }, "train-images-idx3-ubyte"),
    ];
    for (name, break_it, needle) in cases {
        let f = Fixture::new();
        break_it(&f);
        let out = f.train("run", &["--epochs", "1"]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        out.one_error_line();
        assert!(out.stderr.contains(needle), "{name}: {}", out.stderr);
        assert!(out.stderr.contains("data"), "{name}: the message names the file: {}", out.stderr);
    }
}

#[test]
fn foreign_content_fails_the_checksum_unless_skipped() {
    let f = Fixture::new();
    let data = f.data();
    let out = f.run(&["train", "--config", "small.toml", "--epochs", "1", "--data-dir", data.to_str().unwrap(), "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("--skip-checksum") && out.stderr.contains("SHA-256"), "{}", out.stderr);
    // Custom IDX data trains with the flag.
    f.train("run", &["--epochs", "1"]).ok();
}

#[test]
fn bad_configs_name_the_field() {
    let cases = [
        ("unknown key", "learning_rate = 0.1\n", "learning_rate"),
        ("wrong type", "epochs = \"ten\"\n", "epochs"),
        ("lr 0", "lr = 0.0\n", "lr"),
        ("lr negative", "lr = -0.1\n", "lr"),
        ("lr NaN", "lr = nan\n", "lr"),
        ("lr inf", "lr = inf\n", "lr"),
        ("batch size 0", "batch_size = 0\n", "batch_size"),
        ("batch larger than the train set", "batch_size = 100000\n", "batch_size"),
        ("epochs 0", "epochs = 0\n", "epochs"),
        ("hidden empty", "hidden = []\n", "hidden"),
        ("hidden with 0", "hidden = [32, 0]\n", "hidden"),
        ("unknown activation", "activation = \"gelu\"\n", "activation"),
        ("not TOML", "this is not = = toml {\n", "bad.toml"),
    ];
    for (name, text, needle) in cases {
        let f = Fixture::new();
        f.write_config("bad.toml", text);
        let data = f.data();
        let out = f.run(&["train", "--config", "bad.toml", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
        assert_eq!(out.code, 2, "{name}: {}", out.stderr);
        out.one_error_line();
        assert!(out.stderr.contains(needle), "{name}: {}", out.stderr);
        assert!(!f.path("artifacts/metrics.csv").exists(), "{name}: nothing trained");
    }
    // CLI overrides are validated too.
    let f = Fixture::new();
    for flag in [["--lr", "nan"], ["--lr", "-1"], ["--epochs", "0"], ["--batch-size", "0"]] {
        let out = f.train("run", &flag);
        assert_eq!(out.code, 2, "{flag:?}: {}", out.stderr);
        out.one_error_line();
    }
    // A missing config file.
    let out = f.run(&["train", "--config", "nope.toml"]);
    out.bad_input();
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
}

#[test]
fn bad_models_and_runs_are_reported() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let data = f.data();
    let eval = |run: &str| f.run(&["eval", "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    eval("run").ok();

    let copy = |name: &str| {
        let dst = f.path(name);
        std::fs::create_dir_all(&dst).unwrap();
        for file in ["config.toml", "model.bpk", "metrics.csv"] {
            std::fs::copy(f.path("run").join(file), dst.join(file)).unwrap();
        }
        dst
    };
    let truncated = copy("truncated");
    let b = std::fs::read(truncated.join("model.bpk")).unwrap();
    std::fs::write(truncated.join("model.bpk"), &b[..b.len() / 3]).unwrap();
    let out = eval("truncated");
    out.bad_input();
    assert!(out.stderr.contains("model.bpk"), "{}", out.stderr);

    let random = copy("random");
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(random.join("model.bpk"), bytes).unwrap();
    eval("random").bad_input();

    // A record of another architecture (hidden 32) under a config that says 16.
    let other = copy("other");
    let cfg = std::fs::read_to_string(other.join("config.toml")).unwrap().replace("hidden = [32]", "hidden = [16]");
    std::fs::write(other.join("config.toml"), cfg).unwrap();
    let out = eval("other");
    out.bad_input();
    assert!(out.stderr.contains("architecture"), "{}", out.stderr);

    let no_cfg = copy("nocfg");
    std::fs::remove_file(no_cfg.join("config.toml")).unwrap();
    let out = eval("nocfg");
    out.bad_input();
    assert!(out.stderr.contains("config.toml"), "{}", out.stderr);

    std::fs::create_dir(f.path("empty")).unwrap();
    eval("empty").bad_input();
    eval("does-not-exist").bad_input();
    let out = f.run(&["predict", "--artifacts", "empty", "--data-dir", data.to_str().unwrap(), "--skip-checksum"]);
    out.bad_input();
    let out = f.run(&["eval", "--artifacts", "run", "--checkpoint", "9", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("model-9.bpk"), "{}", out.stderr);
}

#[test]
fn unusable_artifact_folders_are_refused() {
    let f = Fixture::new();
    std::fs::write(f.path("afile"), "x").unwrap();
    let out = f.train("afile", &["--epochs", "1"]);
    out.bad_input();
    assert!(out.stderr.contains("is a file"), "{}", out.stderr);
    // /proc refuses new folders even to root: an unwritable place on any Linux machine.
    let out = f.train("/proc/d2l-mlp-test-run", &["--epochs", "1"]);
    out.bad_input();
    assert!(out.stderr.contains("/proc/d2l-mlp-test-run") && out.stderr.contains("--artifacts"), "{}", out.stderr);
    // A read-only folder (where permissions apply, i.e. not as root).
    let ro = f.path("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = tempfile::tempfile_in(&ro).is_ok();
    let out = f.train("ro", &["--epochs", "1"]);
    if probe {
        out.ok(); // root writes anyway: the run must simply work
    } else {
        out.bad_input();
        assert!(out.stderr.contains("not writable"), "{}", out.stderr);
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn bad_command_lines_get_one_line_and_exit_2() {
    let f = Fixture::new();
    for args in [vec!["frobnicate"], vec!["train", "--no-such-flag"], vec!["train", "--epochs", "many"], vec!["predict", "--count"]] {
        let out = f.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        out.one_error_line();
        assert!(out.stderr.contains("--help"), "{args:?}: {}", out.stderr);
    }
    let out = f.run(&["train", "--resume", "--overwrite"]);
    out.bad_input();
    assert!(out.stderr.contains("--resume") && out.stderr.contains("--overwrite"), "{}", out.stderr);
    let out = f.run(&["--help"]);
    out.ok();
    for cmd in ["train", "eval", "predict", "plot", "activations", "bench", "export", "import"] {
        assert!(out.stdout.contains(cmd), "{cmd} missing from --help");
    }
}

#[test]
fn a_diverging_run_stops_at_the_first_non_finite_loss_and_stays_resumable() {
    let f = Fixture::new();
    let out = f.train("run", &["--epochs", "3", "--lr", "1000"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.one_error_line();
    assert!(out.stderr.contains("diverged") && out.stderr.contains("--lr"), "{}", out.stderr);
    let run = f.path("run");
    let rows = metrics(&run);
    assert!(rows.iter().all(|r| r.train_loss.is_finite()), "{rows:?}");
    assert_eq!(
        rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        d2l_mlp::run::checkpoint::epochs_on_disk(&d2l_mlp::run::RunDir::new(&run)),
        "metrics.csv matches the checkpoints"
    );
    assert!(!run.join("model.bpk").exists(), "no final model from a diverged run");
    // The user lowers the learning rate in the run's config; --resume continues from what is kept.
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap().replace("lr = 1000.0", "lr = 0.1");
    std::fs::write(run.join("config.toml"), cfg).unwrap();
    f.resume("run", CPU, &[]).ok();
    assert_eq!(metrics(&run).len(), 3);
}

#[test]
fn twenty_kills_at_random_moments_then_a_complete_run() {
    let f = Fixture::with_sizes(2048, 256);
    let data = f.data();
    let data = data.to_str().unwrap();
    // Moments from a fixed-seed generator (xorshift), 0-1200 ms after start.
    let mut state: u64 = 0x5eed_1234_abcd_9876;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 1200
    };
    let epochs = "25";
    for i in 0..20 {
        let mut args = vec!["train", "--config", "small.toml", "--epochs", epochs, "--artifacts", "run", "--data-dir", data, "--skip-checksum", "--backend", CPU];
        if i > 0 && f.path("run/config.toml").exists() {
            args = vec!["train", "--resume", "--artifacts", "run", "--data-dir", data, "--skip-checksum", "--backend", CPU];
        }
        let mut child = f.spawn(&args, None);
        // The moment is this test's subject: any moment must leave a resumable run.
        std::thread::sleep(std::time::Duration::from_millis(next()));
        let finished = child.child().try_wait().unwrap();
        if finished.is_none() {
            child.child().kill().unwrap();
        }
        let status = child.output();
        if let Some(s) = finished {
            assert!(s.success(), "attempt {i} failed: {}", String::from_utf8_lossy(&status.stderr));
        }
        // After every kill, metrics.csv parses and its epochs are consecutive.
        let rows = metrics(&f.path("run"));
        assert!(rows.windows(2).all(|w| w[1].epoch == w[0].epoch + 1), "attempt {i}: {rows:?}");
    }
    let out = if f.path("run/config.toml").exists() {
        f.resume("run", CPU, &[])
    } else {
        f.train("run", &["--epochs", epochs])
    };
    out.ok();
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), (1..=25).collect::<Vec<_>>());
    assert!(Path::new(&f.path("run/model.bpk")).is_file());
    assert_eq!(d2l_mlp::run::checkpoint::epochs_on_disk(&d2l_mlp::run::RunDir::new(f.path("run"))), (1..=25).collect::<Vec<_>>());
    // Temp files of killed writers are cleaned up by the resumes.
    let temps = std::fs::read_dir(f.path("run/checkpoint")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp-")).count();
    assert_eq!(temps, 0);
}

#[test]
fn a_train_that_fails_before_its_first_write_leaves_no_folder() {
    let f = Fixture::new();
    std::fs::create_dir(f.path("empty")).unwrap();
    let out = f.run(&["train", "--config", "small.toml", "--artifacts", "runs/nodata", "--data-dir", "empty", "--backend", CPU]);
    out.bad_input();
    assert!(!f.path("runs").exists(), "a refused train left {:?}", std::fs::read_dir(f.path("runs")).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()));
    // A backend not built in: named as the user gave it, the flag or the environment variable.
    let Some(missing) = ["wgpu", "ndarray", "flex"].into_iter().find(|b| !d2l_mlp::commands::version().contains(b)) else {
        return; // every backend is built in
    };
    let data = f.data();
    let args = ["train", "--config", "small.toml", "--artifacts", "runs/gpu", "--data-dir", data.to_str().unwrap(), "--skip-checksum"];
    let out = f.run(&[&args[..], &["--backend", missing]].concat());
    out.bad_input();
    assert!(out.stderr.starts_with(&format!("error: --backend {missing}: this binary was built without")), "{}", out.stderr);
    assert!(!f.path("runs").exists(), "a refused backend left a folder");
    let out = run_env(f.dir.path(), &args, &[("D2L_MLP_BACKEND", missing)]);
    out.bad_input();
    assert!(out.stderr.starts_with(&format!("error: D2L_MLP_BACKEND={missing} (set in the environment): this binary was built without")), "{}", out.stderr);
    assert!(!f.path("runs").exists());
}

#[test]
fn init_from_weights_of_another_shape_are_refused_before_anything_else() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    f.run(&["export", "--artifacts", "run", "--out", "w32.safetensors", "--backend", CPU]).ok();
    f.write_config("wide.toml", "epochs = 1\nbatch_size = 32\nhidden = [64]\n");
    let before = std::fs::read(f.path("run/metrics.csv")).unwrap();
    // Before the data is read (this folder has none) and before --overwrite replaces the run.
    std::fs::create_dir(f.path("empty")).unwrap();
    let out = f.run(&["train", "--config", "wide.toml", "--artifacts", "run", "--overwrite", "--init-from", "w32.safetensors", "--data-dir", "empty", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("w32.safetensors") && out.stderr.contains("[784, 32, 10]"), "{}", out.stderr);
    assert_eq!(std::fs::read(f.path("run/metrics.csv")).unwrap(), before, "the refused --overwrite replaced the run");
}
