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

/// Where the enlarged 28x28 `input` (5 pixels a pixel) sits in the picture, if it does.
fn find_enlarged(img: &image::RgbImage, input: &[u8]) -> Option<(u32, u32)> {
    let (w, h) = img.dimensions();
    let fits = |x: u32, y: u32| (0..28u32).all(|j| (0..28u32).all(|i| (0..5).all(|d| img.get_pixel(x + 5 * i + d, y + 5 * j + d).0 == [input[(j * 28 + i) as usize]; 3])));
    (0..h.saturating_sub(140)).flat_map(|y| (0..w.saturating_sub(140)).map(move |x| (x, y))).find(|&(x, y)| fits(x, y))
}

#[test]
fn a_folder_of_pictures_gives_lines_a_csv_and_a_grid_with_the_models_input() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let (images, _) = test_split(&f.data());
    std::fs::create_dir(f.path("pics")).unwrap();
    for (i, name) in ["c.png", "a.png", "b.jpg"].iter().enumerate() {
        let img = image::GrayImage::from_raw(28, 28, images[i * 784..(i + 1) * 784].to_vec()).unwrap();
        image::DynamicImage::ImageLuma8(img).to_rgb8().save(f.path(&format!("pics/{name}"))).unwrap();
    }
    // A blank white page, and a file that is no picture (skipped: not .png/.jpg).
    image::GrayImage::from_pixel(200, 150, image::Luma([255])).save(f.path("pics/blank.png")).unwrap();
    std::fs::write(f.path("pics/notes.txt"), "not a picture").unwrap();
    let out = f.run(&["predict", "--artifacts", "run", "--backend", CPU, "--image", "pics", "--out", "grid.png", "--csv", "table.csv"]);
    out.ok();
    let order: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("pics/")).map(|l| l.split(':').next().unwrap()).collect();
    let order: Vec<&str> = order.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(order, ["pics/a.png", "pics/b.jpg", "pics/blank.png", "pics/c.png"], "{}", out.stdout);
    // The blank page is flagged; the garments are not.
    let warnings: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{}", out.stdout);
    assert!(warnings[0].starts_with("warning: pics/blank.png: nothing stands out from the background (fewer than 8 of the model input's 784 pixels are above 30 of 255"), "{}", warnings[0]);
    // The CSV: a header and a row per picture, the blank one marked.
    let csv = std::fs::read_to_string(f.path("table.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "file,top1,prob1,top2,prob2,top3,prob3,blank,notes");
    assert_eq!(lines.len(), 5);
    assert!(lines[3].starts_with("pics/blank.png,") && lines[3].contains(",true,"), "{}", lines[3]);
    assert!(lines[1].starts_with("pics/a.png,") && lines[1].contains(",false,"), "{}", lines[1]);
    let top1 = lines[1].split(',').nth(1).unwrap();
    let line_a = out.stdout.lines().find(|l| l.starts_with("pics/a.png")).unwrap();
    assert!(line_a.contains(&format!(": {top1} ")), "{line_a} vs {top1}");
    // The grid shows each picture's 28x28 input as the model got it: a.png is test image 1, as is.
    let grid = image::open(f.path("grid.png")).unwrap().to_rgb8();
    assert!(out.stdout.contains("wrote grid.png ("), "{}", out.stdout);
    let at = find_enlarged(&grid, &images[784..2 * 784]).expect("a.png's input, enlarged 5x, in grid.png");
    let at_c = find_enlarged(&grid, &images[..784]).expect("c.png's input in grid.png");
    assert!(at.1 < at_c.1 && at.0 == at_c.0, "a above c, in the same column: {at:?} {at_c:?}");

    // --count takes the first N; the grid has a row fewer per picture fewer.
    let two = f.run(&["predict", "--artifacts", "run", "--backend", CPU, "--image", "pics", "--count", "2", "--out", "two.png"]);
    two.ok();
    assert_eq!(two.stdout.lines().filter(|l| l.starts_with("pics/")).count(), 2, "{}", two.stdout);
    let (w4, h4) = grid.dimensions();
    let (w2, h2) = image::open(f.path("two.png")).unwrap().to_rgb8().dimensions();
    assert_eq!(w2, w4);
    assert_eq!((h4 - h2) % 2, 0);
    assert!(h2 < h4);
}

#[test]
fn picture_flags_that_cannot_apply_are_refused() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    std::fs::create_dir(f.path("empty")).unwrap();
    std::fs::write(f.path("empty/readme.txt"), "x").unwrap();
    image::GrayImage::new(28, 28).save(f.path("p.png")).unwrap();
    for i in 0..65 {
        image::GrayImage::new(28, 28).save(f.path(&format!("many-{i:02}.png"))).unwrap();
    }
    let many: Vec<String> = (0..65).map(|i| format!("many-{i:02}.png")).collect();
    let base = ["predict", "--artifacts", "run", "--backend", CPU];
    for (extra, want) in [
        (vec!["--image", "p.png", "--seed", "3"], "--seed picks random test images"),
        (vec!["--image", "p.png", "--count", "0"], "--count 0: pass at least 1"),
        (vec!["--image", "empty"], "empty: no PNG or JPEG files in this folder"),
        (vec!["--image", "p.png", "--out", "x.svg"], "x.svg: pictures are written as PNG"),
        (vec!["--image", "p.png", "--csv", "nowhere/t.csv"], "no such folder for --csv"),
        ([vec!["--out", "g.png", "--image"], many.iter().map(String::as_str).collect()].concat(), "the picture grid holds at most 64 pictures and 65 were given; pass --count 64"),
    ] {
        let out = f.run(&[&base[..], &extra].concat());
        out.bad_input();
        assert!(out.stderr.contains(want), "{extra:?}: {}", out.stderr);
    }
    // A blank picture alone: its line, and the warning.
    let out = f.run(&[&base[..], &["--image", "p.png"]].concat());
    out.ok();
    assert!(out.stdout.contains("warning: p.png: nothing stands out"), "{}", out.stdout);
}

#[test]
fn the_test_image_table_goes_to_csv_too() {
    let f = Fixture::new();
    f.train("run", &["--epochs", "1"]).ok();
    let d = f.data();
    let out = f.run(&["predict", "--artifacts", "run", "--count", "5", "--csv", "t.csv", "--data-dir", d.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    out.ok();
    let csv = std::fs::read_to_string(f.path("t.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "index,true,predicted,confidence,correct");
    assert_eq!(lines.len(), 6);
    let wrong = out.stdout.lines().filter(|l| l.ends_with("wrong")).count();
    assert_eq!(lines.iter().filter(|l| l.ends_with(",false")).count(), wrong);
}
