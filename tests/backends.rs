//! Swapping backends: a run started on ndarray resumes on wgpu and the other way round, and a
//! model written by either evaluates the same on both. Needs `--features wgpu` and a Vulkan
//! driver (lavapipe in CI). Tiny data with one batch shape: each new shape is slow on lavapipe.
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
    // The wgpu-trained epoch continued the ndarray one: close to an all-ndarray run.
    f.train("cpu", &[]).ok();
    let cpu = metrics(&f.path("cpu"));
    assert!((cpu[1].test_acc - rows[1].test_acc).abs() <= 0.05, "{cpu:?} vs {rows:?}");
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_run_resumes_on_ndarray() {
    if !wgpu_ready("wgpu_run_resumes_on_ndarray") {
        return;
    }
    let f = fixture();
    let data = f.data();
    let out = f.run(&[
        "train", "--config", "small.toml", "--epochs", "1", "--artifacts", "run", "--data-dir",
        data.to_str().unwrap(), "--skip-checksum", "--backend", "wgpu",
    ]);
    out.ok();
    f.resume("run", CPU, &["--epochs", "2"]).ok();
    let rows = metrics(&f.path("run"));
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![1, 2]);
    // A checkpoint written on wgpu evaluates on ndarray.
    let out = f.run(&["eval", "--artifacts", "run", "--checkpoint", "1", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    out.ok();
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
