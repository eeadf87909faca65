//! The data lookup through the real binary: every command reports where the data came from in
//! the same words, and `eval` needs only the test files.

mod common;
use common::*;

#[test]
fn every_command_reads_the_data_the_same_way() {
    let f = Fixture::new();
    let out = f.train("run", &["--epochs", "1"]);
    out.ok();
    let data = f.data();
    let line = format!("data: {} ({N_TRAIN} train, {N_TEST} test images, checksum not checked)", data.display());
    assert!(out.stdout.contains(&line), "{line} not in:\n{}", out.stdout);

    // eval and predict need only the t10k files.
    let test_only = f.path("test-only");
    std::fs::create_dir(&test_only).unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(data.join(name), test_only.join(name)).unwrap();
    }
    let d = test_only.to_str().unwrap();
    let out = f.run(&["eval", "--artifacts", "run", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    out.ok();
    let line = format!("data: {d} ({N_TEST} test images, checksum not checked)");
    assert!(out.stdout.contains(&line), "{line} not in:\n{}", out.stdout);

    // ... but both of them.
    std::fs::remove_file(test_only.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let out = f.run(&["predict", "--artifacts", "run", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("--data-dir lacks t10k-labels-idx1-ubyte[.gz]"), "{}", out.stderr);
    let out = f.run(&["train", "--config", "small.toml", "--artifacts", "run2", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-labels"), "{}", out.stderr);
}
