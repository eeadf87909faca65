//! Helpers for the integration tests: run the real binary on small generated data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_d2l-mlp");

/// The CPU backend the tests train on: the default one (flex), else ndarray.
pub const CPU: &str = if cfg!(feature = "flex") { "flex" } else { "ndarray" };

/// Say on one line, past the test harness's capture, that a test did not run and why. When
/// `D2L_MLP_REQUIRE_ALL` is set (CI), a missing prerequisite fails the test instead.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    assert!(std::env::var_os("D2L_MLP_REQUIRE_ALL").is_none(), "{test}: {why}, but D2L_MLP_REQUIRE_ALL is set");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// Say on one line that a test file's tests are not in this build (a cargo feature is off).
/// Unlike [`skip`], `D2L_MLP_REQUIRE_ALL` does not make it a failure: features are the build's
/// choice, not a missing prerequisite (CI runs such files in its build with every feature).
pub fn not_built(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
}

/// A temp folder with a small learnable data set and a small recipe.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

pub const N_TRAIN: usize = 512;
pub const N_TEST: usize = 128;

impl Fixture {
    pub fn new() -> Self {
        Self::with_sizes(N_TRAIN, N_TEST)
    }

    pub fn with_sizes(n_train: usize, n_test: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        d2l_mlp::data::write_synthetic(&dir.path().join("data"), n_train, n_test, 7, true).unwrap();
        let f = Fixture { dir };
        f.write_config("small.toml", "epochs = 3\nbatch_size = 32\nhidden = [32]\nlr = 0.1\ninit_std = 0.1\nseed = 1\n");
        f
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    pub fn write_config(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// What a sweep of the fixture's data needs: `--data-dir DATA --skip-checksum --backend CPU`.
    pub fn data_args(&self) -> Vec<String> {
        let data = self.data().to_str().unwrap().to_string();
        ["--data-dir", &data, "--skip-checksum", "--backend", CPU].map(String::from).to_vec()
    }

    /// `sweep ARGS` on the fixture's data.
    pub fn sweep(&self, args: &[&str]) -> Out {
        let mut all: Vec<String> = std::iter::once("sweep").chain(args.iter().copied()).map(String::from).collect();
        all.extend(self.data_args());
        self.run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Start the binary in the fixture folder (its output kept for [`Proc::output`]), with `hold` as the test hook `D2L_MLP_TEST_HOLD` when given: the run
    /// then waits at that epoch's start until it is stopped or killed (`src/train/hold.rs`).
    pub fn spawn(&self, args: &[&str], hold: Option<&str>) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("FASHION_MNIST_DIR")
            .env_remove(HOLD)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(h) = hold {
            cmd.env(HOLD, h);
        }
        Proc(Some(cmd.spawn().unwrap()))
    }

    /// Run the binary in the fixture folder.
    pub fn run(&self, args: &[&str]) -> Out {
        run_in(self.dir.path(), args)
    }

    /// `train` on the small recipe with the generated data, on the default CPU backend.
    pub fn train(&self, run: &str, extra: &[&str]) -> Out {
        let data = self.data();
        let mut args = vec![
            "train",
            "--config",
            "small.toml",
            "--artifacts",
            run,
            "--data-dir",
            data.to_str().unwrap(),
            "--skip-checksum",
            "--backend",
            CPU,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `train --resume` (no --config: the run's own), on `backend`.
    pub fn resume(&self, run: &str, backend: &str, extra: &[&str]) -> Out {
        let data = self.data();
        let mut args = vec![
            "train",
            "--resume",
            "--artifacts",
            run,
            "--data-dir",
            data.to_str().unwrap(),
            "--skip-checksum",
            "--backend",
            backend,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// The test hook that makes a run wait at an epoch's start (`src/train/hold.rs`).
pub const HOLD: &str = "D2L_MLP_TEST_HOLD";

/// A child process, killed and reaped when dropped: a failing test leaves none running.
pub struct Proc(Option<Child>);

impl Proc {
    pub fn new(child: Child) -> Self {
        Proc(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process is still owned")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("the process is still owned").id()
    }

    /// Wait for `ready`: something the program does for sure (a file it writes). Fails at
    /// once if the process ends first, and after two minutes.
    pub fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let began = Instant::now();
        while !ready() {
            if let Some(status) = self.child().try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut e) = self.child().stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                panic!("the process ended ({status}) before {what}:\n{stderr}");
            }
            assert!(began.elapsed() < Duration::from_secs(120), "waited two minutes for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send a signal by name (`TERM`, `INT`, `HUP`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        let mut child = self.0.take().expect("the process is still owned");
        let _ = child.kill();
        child.wait().unwrap();
    }

    /// Wait for the process to end; its status and output.
    pub fn output(mut self) -> Output {
        self.0.take().expect("the process is still owned").wait_with_output().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// Bad input: exit 2, one line on stderr, no panic.
    pub fn bad_input(&self) -> &Self {
        assert_eq!(self.code, 2, "expected exit 2\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self.one_error_line()
    }

    pub fn one_error_line(&self) -> &Self {
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"), "{}", self.stderr);
        self
    }
}

pub fn run_in(dir: &Path, args: &[&str]) -> Out {
    run_env(dir, args, &[])
}

/// Like [`run_in`] with extra environment variables.
pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let o: Output = Command::new(BIN)
        .args(args)
        .env_remove(HOLD)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env_remove("FASHION_MNIST_DIR")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn metrics(run: &Path) -> Vec<d2l_mlp::run::metrics::EpochRow> {
    d2l_mlp::run::metrics::read(&run.join("metrics.csv")).unwrap()
}

/// The host weights of a model file, via the library.
pub fn weights(run: &Path, file: &Path) -> Vec<Vec<f32>> {
    let device = d2l_mlp::backend::cpu_device();
    let cfg = d2l_mlp::run::RunDir::new(run).load_config().unwrap();
    let m = d2l_mlp::run::checkpoint::load_model_file(file, &cfg, &device).unwrap();
    let host = |d: burn::tensor::TensorData| d.convert::<f32>().try_to_vec::<f32>().unwrap();
    m.layers
        .iter()
        .flat_map(|l| [host(l.weight.val().into_data()), host(l.bias.as_ref().unwrap().val().into_data())])
        .collect()
}

/// Metrics rows without the wall-clock column.
pub fn figures(rows: &[d2l_mlp::run::metrics::EpochRow]) -> Vec<[f64; 5]> {
    rows.iter()
        .map(|r| [r.epoch as f64, r.train_loss, r.train_acc, r.test_loss, r.test_acc])
        .collect()
}

pub fn assert_close(a: &[[f64; 5]], b: &[[f64; 5]], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() <= tol, "{a:?}\nvs\n{b:?}");
        }
    }
}
