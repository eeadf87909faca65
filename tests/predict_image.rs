//! `predict --image` on pictures saved from the test set agrees with `predict` on the same
//! images; transparent pictures say how they were read; `eval` lists its most confident mistakes.

mod common;
use common::*;

/// The generated test split read straight from its gzipped IDX files: (images, labels).
fn test_split(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let read = |name: &str, header: usize| {
        let gz = std::fs::read(dir.join(name)).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        raw.split_off(header)
    };
    (read("t10k-images-idx3-ubyte.gz", 16), read("t10k-labels-idx1-ubyte.gz", 8))
}

/// The first entry of an `--image` line, e.g. `t3.png: Bag 0.912, Shirt 0.050, ...` -> ("Bag", 0.912).
fn top_of_image_line<'a>(stdout: &'a str, file: &str) -> (&'a str, f64) {
    let line = stdout.lines().find(|l| l.starts_with(file)).unwrap_or_else(|| panic!("no line for {file}:\n{stdout}"));
    assert!(!line.contains("inverted"), "{line}");
    let (_, preds) = line.split_once(": ").unwrap();
    let first = preds.split(", ").next().unwrap();
    let (name, p) = first.rsplit_once(' ').unwrap();
    (name, p.parse().unwrap())
}

#[test]
fn saved_test_images_get_predicts_own_probabilities() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let data = f.data();
    let d = data.to_str().unwrap();
    let (images, labels) = test_split(&data);
    let n = 12;
    let mut files = Vec::new();
    for i in 0..n {
        let img = image::GrayImage::from_raw(28, 28, images[i * 784..(i + 1) * 784].to_vec()).unwrap();
        let file = format!("t{i}.png");
        // Grayscale and RGB files alike reach the model unchanged.
        let img = if i % 2 == 0 { image::DynamicImage::ImageLuma8(img) } else { image::DynamicImage::ImageLuma8(img).to_rgb8().into() };
        img.save(f.path(&file)).unwrap();
        files.push(file);
    }
    // A bright cut-out on a transparent background (white underneath).
    let mut cutout = image::RgbaImage::from_pixel(60, 40, image::Rgba([255, 255, 255, 0]));
    for (x, y, p) in cutout.enumerate_pixels_mut() {
        if (20..40).contains(&x) && (5..35).contains(&y) {
            *p = image::Rgba([220, 220, 220, 255]);
        }
    }
    cutout.save(f.path("cutout.png")).unwrap();
    let table = f.run(&["predict", "--artifacts", "run", "--count", &n.to_string(), "--data-dir", d, "--skip-checksum", "--backend", CPU]);
    table.ok();
    let mut args = vec!["predict", "--artifacts", "run", "--backend", CPU, "--image"];
    args.extend(files.iter().map(String::as_str));
    args.push("cutout.png");
    let pictures = f.run(&args);
    pictures.ok();
    assert!(pictures.stdout.contains("cutout.png (transparent background treated as background; cropped from 60x40 to the object's 20x30; scaled from 20x30 to 19x28 and centred on 28x28):"), "{}", pictures.stdout);
    for (i, file) in files.iter().enumerate() {
        let (name, p) = top_of_image_line(&pictures.stdout, file);
        // Table row: index, true class, predicted class, confidence[, "wrong"].
        let row = table.stdout.lines().find(|l| l.split_whitespace().next() == Some(&i.to_string())).unwrap();
        let row = row.trim_end().trim_end_matches("wrong").trim_end();
        let (before, conf) = row.rsplit_once(' ').unwrap();
        assert!(before.trim_end().ends_with(name), "{file}: {name} vs row {row}");
        let conf: f64 = conf.parse().unwrap();
        assert!((conf - p).abs() <= 6e-4, "{file}: {p} vs predict's {conf}");
    }

    // eval.json: the most confident mistakes, best first, at most 16.
    f.run(&["eval", "--artifacts", "run", "--data-dir", d, "--skip-checksum", "--backend", CPU]).ok();
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("run/eval.json")).unwrap()).unwrap();
    let correct: u64 = rep["per_class"].as_array().unwrap().iter().map(|c| c["correct"].as_u64().unwrap()).sum();
    let mistakes = rep["mistakes"].as_array().unwrap();
    assert_eq!(mistakes.len() as u64, (N_TEST as u64 - correct).min(16));
    let confidences: Vec<f64> = mistakes.iter().map(|m| m["confidence"].as_f64().unwrap()).collect();
    assert!(confidences.windows(2).all(|w| w[0] >= w[1]), "{confidences:?}");
    for m in mistakes {
        let i = m["index"].as_u64().unwrap() as usize;
        assert_eq!(m["true_label"].as_u64().unwrap(), labels[i] as u64);
        assert_ne!(m["predicted"], m["true_label"]);
    }
}
