//! Swapping backends: a run started on the CPU resumes on wgpu and the other way round, and a
//! model written by either evaluates the same on both; wgpu gives flex's figures, and its GPU
//! path (the data on the device, the figures summed there) reads the device a few times a
//! split. Needs `--features wgpu` and a Vulkan driver (lavapipe in CI). Tiny data with one batch
//! shape per test: each new shape is slow on lavapipe.
mod common;
use common::*;

/// Built with every feature set (CI's matrix builds this file): the backends this build lists.
#[test]
fn this_build_lists_its_features() {
    use d2l_mlp::backend::{BackendKind, compiled};
    let c = compiled();
    assert_eq!(c.contains(&BackendKind::Ndarray), cfg!(feature = "ndarray"));
    assert_eq!(c.contains(&BackendKind::Wgpu), cfg!(feature = "wgpu"));
    assert_eq!(c.contains(&BackendKind::Flex), cfg!(feature = "flex"));
    if cfg!(feature = "wgpu") {
        assert_eq!(c[0], BackendKind::Wgpu);
    }
}

/// Without the feature the tests below are not built: say so on one line.
#[cfg(not(feature = "wgpu"))]
#[test]
fn wgpu_tests_need_the_wgpu_feature() {
    not_built("backends", "the wgpu tests need `--features wgpu` and a Vulkan driver (apt-get install mesa-vulkan-drivers)");
}

/// A usable adapter, or a one-line note that the wgpu tests did not run.
#[cfg(feature = "wgpu")]
fn wgpu_ready(test: &str) -> bool {
    let ok = d2l_mlp::backend::open(Some(d2l_mlp::backend::BackendKind::Wgpu), d2l_mlp::backend::Asked::Flag).is_ok();
    if !ok {
        skip(test, "wgpu found no GPU adapter (apt-get install mesa-vulkan-drivers for a software one)");
    }
    ok
}

#[cfg(feature = "wgpu")]
fn fixture() -> Fixture {
    let f = Fixture::with_sizes(256, 128);
    f.write_config("small.toml", "epochs = 2\nbatch_size = 128\nhidden = [32]\nseed = 1\n");
    f
}

/// `train` of `config` in the fixture on `backend`, with `extra` arguments.
#[cfg(feature = "wgpu")]
fn train_on(f: &Fixture, config: &str, run: &str, backend: &str, extra: &[&str]) -> Out {
    let data = f.data();
    let mut args = vec!["train", "--config", config, "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", backend];
    args.extend_from_slice(extra);
    f.run(&args)
}

#[cfg(feature = "wgpu")]
fn eval_acc(f: &Fixture, run: &str, backend: &str) -> f64 {
    let data = f.data();
    let out = f.run(&["eval", "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", backend]);
    out.ok();
    assert!(out.stdout.lines().next().unwrap().contains(&format!("backend {backend}")), "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path(run).join("eval.json")).unwrap()).unwrap();
    v["accuracy"].as_f64().unwrap()
}

#[cfg(feature = "wgpu")]
#[test]
fn ndarray_run_resumes_on_wgpu_and_evaluates_the_same_on_both() {
    if !wgpu_ready("ndarray_run_resumes_on_wgpu_and_evaluates_the_same_on_both") {
        return;
    }
    let f = fixture();
    f.train("run", &["--epochs", "1"]).ok();
    let out = f.resume("run", "wgpu", &["--epochs", "2"]);
    out.ok();
    assert!(out.stdout.lines().next().unwrap().contains("backend wgpu"), "{}", out.stdout);
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2]);
    assert!(rows[1].train_loss < rows[0].train_loss, "{rows:?}");
    let a = eval_acc(&f, "run", CPU);
    let b = eval_acc(&f, "run", "wgpu");
    assert!((a - b).abs() <= 0.001, "ndarray {a} vs wgpu {b}");
    // The wgpu-trained epoch continued the CPU one with the same batches: an all-CPU run's figures.
    f.train("cpu", &[]).ok();
    assert_close(&figures(&metrics(&f.path("cpu"))), &figures(&rows), 1e-4);
}

/// A run started on wgpu resumes on the CPU and back on wgpu, and ends where an uninterrupted
/// CPU run ends: the same batches on either, and checkpoints that load on either.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_run_resumes_on_flex_and_back() {
    if !wgpu_ready("wgpu_run_resumes_on_flex_and_back") {
        return;
    }
    let f = fixture();
    train_on(&f, "small.toml", "run", "wgpu", &["--epochs", "1"]).ok();
    f.resume("run", CPU, &["--epochs", "2"]).ok();
    let out = f.resume("run", "wgpu", &["--epochs", "3"]);
    out.ok();
    assert!(out.stdout.lines().next().unwrap().contains("backend wgpu"), "{}", out.stdout);
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);
    f.train("cpu", &["--epochs", "3"]).ok();
    assert_close(&figures(&metrics(&f.path("cpu"))), &figures(&rows), 1e-4);
    // A checkpoint written on wgpu evaluates on the CPU.
    let data = f.data();
    let out = f.run(&["eval", "--artifacts", "run", "--checkpoint", "1", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    out.ok();
}

/// Two epochs of the book's recipe (784-256-10, batch 256, lr 0.1, Normal(0, 0.01)) from the
/// same initial weights and batch order give flex's figures on wgpu within 1e-4.
#[cfg(feature = "wgpu")]
#[test]
fn two_epochs_of_the_books_recipe_on_wgpu_give_flexs_figures() {
    if !wgpu_ready("two_epochs_of_the_books_recipe_on_wgpu_give_flexs_figures") {
        return;
    }
    let f = Fixture::with_sizes(512, 256);
    f.write_config("book.toml", "epochs = 2\nseed = 3\n");
    train_on(&f, "book.toml", "gpu", "wgpu", &[]).ok();
    train_on(&f, "book.toml", "cpu", "flex", &[]).ok();
    let (gpu, cpu) = (metrics(&f.path("gpu")), metrics(&f.path("cpu")));
    assert_eq!(gpu.len(), 2);
    assert!(gpu[1].train_loss < gpu[0].train_loss, "{gpu:?}");
    assert_close(&figures(&cpu), &figures(&gpu), 1e-4);
}

/// On wgpu the epoch's figures are summed on the device and read after the loss's first step
/// and after each split's last step: three reads a split of 8 steps (a per-step read takes 16),
/// and Burn's per-step logs get a line per read, covering every image.
#[cfg(feature = "wgpu")]
#[test]
fn the_gpu_path_reads_the_device_three_times_a_split() {
    use d2l_mlp::train::{self, RunControl, TrainData, TrainOptions, TrainPlan, device_sums};
    if !wgpu_ready("the_gpu_path_reads_the_device_three_times_a_split") {
        return;
    }
    device_sums::set_read_interval(std::time::Duration::MAX);
    let gpu = d2l_mlp::backend::open(Some(d2l_mlp::backend::BackendKind::Wgpu), d2l_mlp::backend::Asked::Flag).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = d2l_mlp::run::RunDir::new(dir.path().join("run"));
    run.ensure_writable().unwrap();
    let config = d2l_mlp::config::TrainConfig { epochs: 2, batch_size: 128, hidden: vec![32], seed: 1, ..Default::default() };
    let opts = TrainOptions { config: Some(config), ..Default::default() };
    let plan = TrainPlan::prepare(&run, &opts, &gpu.device).unwrap();
    let (train_set, test_set) = (d2l_mlp::data::synthetic(1024, 7), d2l_mlp::data::synthetic(256, 8));
    let data = TrainData { train: train_set.into(), test: test_set.into(), held_out: Default::default() };
    let before = device_sums::device_reads();
    let outcome = train::run(&plan, &data, &gpu.device, RunControl::quiet()).unwrap();
    let reads = device_sums::device_reads() - before;
    assert_eq!(outcome.trained, 2);
    assert_eq!(reads, 2 * (3 + 3), "two epochs, each a training and a test split");
    let log = std::fs::read_to_string(dir.path().join("run/train/epoch-2/Loss.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "two reads and the epoch's figure: {log}");
    let images: usize = lines[..2].iter().map(|l| l.split(',').nth(1).unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(images, 1024, "{log}");
    assert!(lines[2].ends_with(",final"), "{log}");
    let rows = &outcome.rows;
    assert!(rows[1].train_loss.is_finite() && rows[1].train_loss < rows[0].train_loss, "{rows:?}");
}

/// A diverging run on the GPU path stops as on the CPU, though the loss is read a few times a
/// split: the largest batch loss since the last read reaches the divergence check.
#[cfg(feature = "wgpu")]
#[test]
fn a_diverging_run_on_wgpu_stops_with_the_cpus_message() {
    if !wgpu_ready("a_diverging_run_on_wgpu_stops_with_the_cpus_message") {
        return;
    }
    let f = fixture();
    let out = train_on(&f, "small.toml", "run", "wgpu", &["--epochs", "2", "--lr", "1000"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.one_error_line();
    assert!(out.stderr.contains("diverged") && out.stderr.contains("--lr"), "{}", out.stderr);
    assert!(!f.path("run/model.bpk").exists(), "no final model from a diverged run");
}

/// cubecl's database of autotune results goes to the user's cache folder, also when the
/// program runs inside a Cargo project (cubecl's own default is that project's `target/`), and
/// where a `cubecl.toml` puts it when one says.
#[cfg(feature = "wgpu")]
#[test]
fn cubecls_cache_is_in_the_users_cache_folder_unless_cubecl_toml_says() {
    if !wgpu_ready("cubecls_cache_is_in_the_users_cache_folder_unless_cubecl_toml_says") {
        return;
    }
    let f = fixture();
    std::fs::write(f.path("Cargo.toml"), "[package]\nname = \"someone-elses\"\n").unwrap();
    let cache = f.path("xdg");
    let draw = |f: &Fixture| {
        run_env(f.dir.path(), &["activations", "--backend", "wgpu", "--out", "a.png"], &[("XDG_CACHE_HOME", cache.to_str().unwrap())]).ok();
    };
    draw(&f);
    assert!(cache.join("cubecl/default.db").is_file());
    assert!(!f.path("target").exists(), "cubecl wrote into the project's target/");
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::write(f.path("cubecl.toml"), "[environment]\npath = \"local\"\n").unwrap();
    draw(&f);
    assert!(f.path("default.db").is_file() && !cache.join("cubecl").exists());
}

#[cfg(feature = "wgpu")]
#[test]
fn no_adapter_is_a_clear_error_not_a_panic() {
    let f = fixture();
    // Hide every Vulkan driver and every EGL (GL) vendor from the loaders.
    let out = run_env(
        f.dir.path(),
        &["activations", "--backend", "wgpu", "--out", "a.png"],
        &[("VK_ICD_FILENAMES", "/nonexistent.json"), ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json")],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    out.one_error_line();
    assert!(out.stderr.contains("no usable GPU adapter") && out.stderr.contains("--backend flex"), "{}", out.stderr);
    assert!(!f.path("a.png").exists());
}
