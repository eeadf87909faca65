//! eval, predict, plot, activations, bench, export/import on a small trained run.

mod common;
use common::*;

fn png_size(p: &std::path::Path) -> (u32, u32) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (img.width(), img.height())
}

#[test]
fn eval_and_predict_agree_with_training_and_each_other() {
    let f = Fixture::new();
    f.train("run", &[]).ok();
    let data = f.data();
    let d = data.to_str().unwrap();
    let out = f.run(&["eval", "--artifacts", "run", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    out.ok();
    assert!(out.stdout.contains("confusion matrix"), "{}", out.stdout);
    assert!(out.stdout.contains("Ankle boot"), "{}", out.stdout);
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("run/eval.json")).unwrap()).unwrap();
    let acc = rep["accuracy"].as_f64().unwrap();
    let last = metrics(&f.path("run")).last().copied().unwrap();
    assert!((acc - last.test_acc).abs() < 1e-6, "eval {acc} vs metrics {}", last.test_acc);
    assert!((rep["loss"].as_f64().unwrap() - last.test_loss).abs() < 1e-4);
    let totals: u64 = rep["per_class"].as_array().unwrap().iter().map(|c| c["total"].as_u64().unwrap()).sum();
    assert_eq!(totals, N_TEST as u64);
    let cells: u64 = rep["confusion"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap())).sum();
    assert_eq!(cells, N_TEST as u64);

    // predict on every test image: its right answers equal eval's.
    let out = f.run(&["predict", "--artifacts", "run", "--count", &N_TEST.to_string(), "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    out.ok();
    let correct = rep["per_class"].as_array().unwrap().iter().map(|c| c["correct"].as_u64().unwrap()).sum::<u64>();
    assert!(out.stdout.contains(&format!("{correct}/{N_TEST} correct")), "{}", out.stdout);
    assert!(out.stdout.contains("index") && out.stdout.contains("confidence"));
    let (w, h) = png_size(&f.path("run/predictions.png"));
    assert!(w >= 28 * 4 && h >= 28 * 4, "{w}x{h}");

    // A random sample with a seed, to a chosen file; the same seed gives the same table.
    let a = f.run(&["predict", "--artifacts", "run", "--count", "5", "--seed", "3", "--out", "p.png", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    let b = f.run(&["predict", "--artifacts", "run", "--count", "5", "--seed", "3", "--out", "p.png", "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    a.ok();
    assert_eq!(a.stdout, b.stdout);
    assert!(f.path("p.png").is_file());

    // A checkpoint can be evaluated too.
    f.run(&["eval", "--artifacts", "run", "--checkpoint", "1", "--data-dir", d, "--skip-checksum", "--backend", CPU]).ok();
}

#[test]
fn predict_reads_outside_pictures_and_refuses_non_images() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    // A colour JPEG-sized picture with a light background.
    let mut img = image::RgbImage::from_pixel(120, 90, image::Rgb([240, 240, 235]));
    for y in 20..70 {
        for x in 30..90 {
            img.put_pixel(x, y, image::Rgb([40, 60, 200]));
        }
    }
    img.save(f.path("shirt.png")).unwrap();
    let out = f.run(&["predict", "--artifacts", "run", "--image", "shirt.png", "--backend", CPU]);
    out.ok();
    assert!(out.stdout.contains("shirt.png (light background: inverted; cropped from 120x90 to the object's 60x50; scaled from 60x50 to 28x23 and centred on 28x28):"), "{}", out.stdout);
    let line = out.stdout.lines().find(|l| l.contains("shirt.png")).unwrap();
    assert_eq!(line.matches(", ").count(), 2, "top-3: {line}");
    std::fs::write(f.path("notes.png"), "this is not a picture").unwrap();
    let out = f.run(&["predict", "--artifacts", "run", "--image", "notes.png", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("notes.png"), "{}", out.stderr);
    f.run(&["predict", "--artifacts", "run", "--image", "missing.jpg", "--backend", CPU]).bad_input();
}

#[test]
fn curves_plot_and_activation_pictures() {
    let f = Fixture::new();
    f.train("a", &["--epochs", "2"]).ok();
    f.train("b", &["--epochs", "2", "--lr", "0.05"]).ok();
    let curves = png_size(&f.path("a/curves.png"));
    assert!(curves.0 >= 600 && curves.1 >= 400, "{curves:?}");
    std::fs::remove_file(f.path("a/curves.png")).unwrap();
    f.run(&["plot", "--artifacts", "a"]).ok();
    assert_eq!(png_size(&f.path("a/curves.png")), curves);
    f.run(&["plot", "--artifacts", "a", "b", "--out", "cmp.png"]).ok();
    assert_eq!(png_size(&f.path("cmp.png")), curves);
    f.run(&["plot", "--artifacts", "nowhere"]).bad_input();
let svg = f.run(&["plot", "--artifacts", "a", "b", "--out", "cmp.svg"]);
    assert!(svg.bad_input().stderr.contains("cmp.svg") && !f.path("cmp.svg").exists(), "{}", svg.stderr);
    f.run(&["activations", "--out", "act.jpg", "--backend", CPU]).bad_input();
    let out = f.run(&["activations", "--out", "act.png", "--backend", CPU]);
    out.ok();
    // The path as given, like every other command's output lines.
    assert!(out.stdout.lines().any(|l| l == "wrote act.png"), "{}", out.stdout);
    let (w, h) = png_size(&f.path("act.png"));
    assert!(w >= 600 && h >= 600, "{w}x{h}");
}

#[test]
fn export_import_round_trip_is_bit_identical() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "2"]).ok();
    let data = f.data();
    let d = data.to_str().unwrap();
    f.run(&["export", "--artifacts", "run", "--out", "w.safetensors", "--backend", CPU]).ok();
    let bytes = std::fs::read(f.path("w.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("1.weight").unwrap().shape(), &[32, 784]);
    assert_eq!(st.tensor("3.weight").unwrap().shape(), &[10, 32]);
    f.run(&["import", "w.safetensors", "--artifacts", "imported", "--backend", CPU]).ok();
    assert_eq!(weights(&f.path("run"), &f.path("run/model.bpk")), weights(&f.path("imported"), &f.path("imported/model.bpk")));
    let eval = |run: &str| {
        f.run(&["eval", "--artifacts", run, "--data-dir", d, "--skip-checksum", "--backend", CPU]).ok();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path(run).join("eval.json")).unwrap()).unwrap();
        v["accuracy"].as_f64().unwrap()
    };
    assert_eq!(eval("run"), eval("imported"));
    // Checkpoints export too; a mismatching config is refused naming the tensors' layers.
    f.run(&["export", "--artifacts", "run", "--checkpoint", "1", "--out", "e1.safetensors", "--backend", CPU]).ok();
    f.write_config("wide.toml", "hidden = [64]\n");
    let out = f.run(&["import", "w.safetensors", "--artifacts", "x", "--config", "wide.toml", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("[784, 32, 10]"), "{}", out.stderr);
    let out = f.run(&["import", "w.safetensors", "--artifacts", "imported", "--backend", CPU]);
    out.bad_input();
    std::fs::write(f.path("junk.safetensors"), "junk").unwrap();
    f.run(&["import", "junk.safetensors", "--artifacts", "y", "--backend", CPU]).bad_input();
    // train --init-from starts from the given weights: its first epoch beats a random start.
    let out = f.train("warm", &["--epochs", "1", "--init-from", "w.safetensors"]);
    out.ok();
    let cold = f.train("cold", &["--epochs", "1"]);
    cold.ok();
    assert!(metrics(&f.path("warm"))[0].train_loss < metrics(&f.path("cold"))[0].train_loss);
}

/// A safetensors file of the small recipe's shapes (hidden = [32]), `1.weight` holding `w0`.
fn torch_file(path: &std::path::Path, w0: &[f32]) {
    let shapes = [("1.weight", vec![32, 784]), ("1.bias", vec![32]), ("3.weight", vec![10, 32]), ("3.bias", vec![10])];
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(n, s)| {
            let len = s.iter().product::<usize>();
            let values: Vec<f32> = if *n == "1.weight" { w0.iter().copied().cycle().take(len).collect() } else { vec![0.01; len] };
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        })
        .collect();
    let views = shapes
        .iter()
        .zip(&data)
        .map(|((n, s), d)| (n.to_string(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap()));
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn non_finite_weights_are_refused_by_import_and_init_from() {
    let f = Fixture::new();
    torch_file(&f.path("nan.safetensors"), &[0.5, f32::NAN, -0.5, f32::INFINITY]);
    let out = f.run(&["import", "nan.safetensors", "--artifacts", "imported", "--backend", CPU]);
    out.bad_input();
    assert!(out.stderr.contains("tensor 1.weight has 12544 non-finite values"), "{}", out.stderr);
    assert!(!f.path("imported").exists(), "a refused import leaves no run folder");
    let out = f.train("warm", &["--epochs", "1", "--init-from", "nan.safetensors"]);
    out.bad_input();
    assert!(out.stderr.contains("nan.safetensors: tensor 1.weight has 12544 non-finite values"), "{}", out.stderr);
    // The same file with finite values imports.
    torch_file(&f.path("ok.safetensors"), &[0.5, -0.5]);
    f.run(&["import", "ok.safetensors", "--artifacts", "imported", "--backend", CPU]).ok();
}

#[test]
fn bench_prints_and_writes_its_figures() {
    let f = Fixture::new();
    let data = f.data();
    let out = f.run(&["bench", "--epochs", "1", "--backend", CPU, "--json", "bench.json", "--data-dir", data.to_str().unwrap(), "--skip-checksum"]);
    out.ok();
    for needle in ["train:", "test:", "images/s", "peak RSS", "burn 0.22", "threads", &*format!("backend {CPU}")] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("bench.json")).unwrap()).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["backend"], CPU);
    assert_eq!(r["train_images"].as_u64().unwrap(), N_TRAIN as u64);
    assert!(r["train_seconds"]["median"].as_f64().unwrap() > 0.0);
    assert!(r["test_images_per_second"].as_f64().unwrap() > 0.0);
    assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0);
    assert_eq!(v["synthetic_data"], false);
    assert!(!f.path("artifacts").exists(), "bench writes no run");
    assert_eq!(r["recipe"], "784-256-10 relu, batch 256, lr 0.1");
}

#[test]
fn bench_measures_the_recipe_it_is_given() {
    let f = Fixture::new();
    let data = f.data();
    f.write_config("r.toml", "hidden = [32, 16]\nactivation = \"tanh\"\nbatch_size = 64\nmomentum = 0.9\nepochs = 50\n");
    let d = data.to_str().unwrap();
    // Without --backend every backend runs in a child process, which gets the recipe too.
    let out = f.run(&["bench", "--epochs", "1", "--config", "r.toml", "--json", "b.json", "--data-dir", d, "--skip-checksum"]);
    out.ok();
    let recipe = "784-32-16-10 tanh, batch 64, lr 0.1, momentum 0.9";
    assert!(out.stdout.contains(&format!("bench: r.toml ({recipe}), 1 epoch(s) per backend")), "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("b.json")).unwrap()).unwrap();
    assert_eq!(v["batch_size"], 64);
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["recipe"], recipe, "{r}");
        assert_eq!(r["epochs"], 1, "--epochs replaces the recipe's");
    }
    f.write_config("bad.toml", "hidden = [32]\nactivaton = \"tanh\"\n");
    let o = f.run(&["bench", "--config", "bad.toml", "--data-dir", d, "--skip-checksum"]);
    o.bad_input();
    assert!(o.stderr.contains("bad.toml") && o.stderr.contains("activaton"), "{}", o.stderr);
}
