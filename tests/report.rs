//! `report` end to end: a small trained run, evaluated, reported, and opened in headless Chromium
//! (DOM, screenshot, nothing fetched, hostile folder names). Skipped when Chromium is missing.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser, or `None` after saying the test is skipped (a failure where CI requires all).
fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        skip(test, "chromium not installed (apt-get install chromium)");
    }
    found
}

/// Run headless Chromium on `page` with `extra` flags; stdout goes to the returned string.
/// Killed after two minutes so a hang fails the test instead of stalling CI.
fn headless(browser: &Path, page: &Path, extra: &[String]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = tmp.path().join("stdout");
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", tmp.path().join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium did not finish within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&stdout).unwrap()
}

fn dump_dom(browser: &Path, page: &Path) -> String {
    headless(browser, page, &["--dump-dom".to_string()])
}

/// `eval` / `predict` on the fixture's data, on the default CPU backend.
fn use_run(f: &Fixture, sub: &str, run: &str) {
    let data = f.data();
    f.run(&[sub, "--artifacts", run, "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU])
        .ok();
}

#[test]
fn a_trained_runs_report_renders_offline_with_its_figures() {
    let Some(browser) = chromium("a_trained_runs_report_renders_offline_with_its_figures") else { return };
    let f = Fixture::new();
    f.train("run", &[]).ok();
    use_run(&f, "eval", "run");
    use_run(&f, "predict", "run");
    let out = f.run(&["report", "--artifacts", "run"]);
    out.ok();
    let page = f.path("run/report.html");
    assert!(out.stdout.contains("report.html"), "{}", out.stdout);

    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("run/eval.json")).unwrap()).unwrap();
    let accuracy = format!("{:.4}", eval["accuracy"].as_f64().unwrap());
    let dom = dump_dom(&browser, &page);
    assert!(dom.contains(&format!("Accuracy <strong>{accuracy}</strong>")), "final test accuracy {accuracy}");
    assert_eq!(dom.matches("<td class=\"cm").count(), 100, "confusion cells");
    // The recipe (fixture's small.toml), every field.
    for (field, value) in [("batch_size", "32"), ("hidden", "[32]"), ("lr", "0.1"), ("epochs", "3"), ("init_std", "0.1")] {
        assert!(dom.contains(&format!("<th scope=\"row\">{field}</th><td><code>{value}</code></td>")), "{field}");
    }
    assert!(dom.contains("<img src=\"data:image/png;base64,"), "prediction grid inline");
    let mistakes = eval["mistakes"].as_array().unwrap();
    if let Some(m) = mistakes.first() {
        assert!(dom.contains(&format!("The {} test images the model got wrong most confidently: test image {}", mistakes.len(), m["index"])));
    } else {
        assert!(dom.contains("No mistakes on the test set."));
    }

    // Nothing fetched: the only URLs are plain links to the book.
    let source = std::fs::read_to_string(&page).unwrap();
    for (i, _) in source.match_indices("http") {
        let rest = &source[i..];
        if rest.starts_with("http://") || rest.starts_with("https://") {
            assert!(source[..i].ends_with("<a href=\"") && rest.starts_with("https://d2l.ai/"), "{}", &rest[..80.min(rest.len())]);
        }
    }

    // A screenshot of the right size that is not blank.
    let png = f.path("shot.png");
    headless(&browser, &page, &[format!("--screenshot={}", png.display()), "--window-size=1200,1600".to_string()]);
    let shot = image::open(&png).unwrap().to_rgb8();
    assert_eq!(shot.dimensions(), (1200, 1600));
    let first = shot.get_pixel(0, 0);
    assert!(shot.pixels().any(|p| p != first), "blank screenshot");
}

#[test]
fn a_run_folder_named_like_a_script_renders_as_text() {
    let Some(browser) = chromium("a_run_folder_named_like_a_script_renders_as_text") else { return };
    let f = Fixture::new();
    let name = "<script>alert(1)</script>";
    f.train(name, &["--epochs", "1"]).ok();
    f.run(&["report", "--artifacts", name]).ok();
    let dom = dump_dom(&browser, &f.path(name).join("report.html"));
    assert!(dom.contains("<h1>Run &lt;script&gt;alert(1)&lt;/script&gt;</h1>"), "the name as text");
    assert!(!dom.contains("<script"), "an injected script element");
}

#[test]
fn a_sweeps_leaderboard_becomes_sortable_in_the_browser() {
    let Some(browser) = chromium("a_sweeps_leaderboard_becomes_sortable_in_the_browser") else { return };
    let f = Fixture::new();
    std::fs::create_dir(f.path("sweep")).unwrap();
    std::fs::write(f.path("sweep/sweep.toml"), "lr = [0.05, 0.1]\n").unwrap();
    let board = "rank,trial,lr,activation,epochs,val_loss,val_acc,train_loss,train_acc,seconds,status\n\
                 1,1,0.1,tanh,3,0.42,0.86,0.4,0.87,2,done\n2,0,0.05,relu,3,0.61,0.79,0.6,0.8,2,done\n";
    std::fs::write(f.path("sweep/leaderboard.csv"), board).unwrap();
    f.train("sweep/best", &[]).ok();
    f.run(&["report", "--artifacts", "sweep"]).ok();
    let dom = dump_dom(&browser, &f.path("sweep/report.html"));
    // The page's script ran (its CSP hash matched): every heading became a sort button.
    assert_eq!(dom.matches("<th scope=\"col\" data-num=\"\"><button>").count(), 9, "numeric headings");
    assert!(dom.contains("<th scope=\"col\"><button>activation</button></th>"));
    assert!(dom.contains("<th scope=\"col\"><button>status</button></th>"));
    assert!(dom.contains("<td class=\"num\" data-v=\"0.86\">0.86</td>"), "the value shown and the one sorted by");
    // The best run's part, with links into best/.
    assert!(dom.contains("<a href=\"best/config.toml\">"));
    assert!(dom.contains("Not yet:</strong> the test-set evaluation"));
}

#[test]
fn a_sweeps_charts_are_in_its_page_and_render_in_the_browser() {
    let Some(browser) = chromium("a_sweeps_charts_are_in_its_page_and_render_in_the_browser") else { return };
    let f = Fixture::new();
    let study = "val_size = 128\n[fixed]\nepochs = 1\nbatch_size = 32\nhidden = [16]\ninit_std = 0.1\n[space]\nlr = [0.02, 0.1, 0.5]\nactivation = [\"relu\", \"tanh\"]\n";
    f.write_config("s.toml", study);
    let data = f.data();
    f.run(&["sweep", "s.toml", "--out", "sweep", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]).ok();
    let dom = dump_dom(&browser, &f.path("sweep/report.html"));
    for (stem, caption) in [("history", "Optimisation history"), ("parallel", "Parallel coordinates"), ("slices", "Slices")] {
        assert!(dom.contains("<img src=\"data:image/svg+xml;base64,") && dom.contains(caption), "{stem}");
        assert!(dom.contains(&format!("({stem}.svg)</figcaption>")), "{stem} inlined as SVG");
        // Each SVG renders: drawn, with the best trial in red where the chart marks it.
        let shot = f.path(&format!("{stem}-shot.png"));
        headless(&browser, &f.path(&format!("sweep/{stem}.svg")), &[format!("--screenshot={}", shot.display()), "--window-size=1400,800".to_string()]);
        let img = image::open(&shot).unwrap().to_rgb8();
        let blue = img.pixels().filter(|p| p[2] > 90 && p[0] < 120).count();
        let red = img.pixels().filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80).count();
        assert!(blue > 50, "{stem}: trials drawn in the browser ({blue})");
        assert!(stem == "slices" || red > 50, "{stem}: the best in red ({red})");
    }
    assert!(dom.contains("(sweep.png)</figcaption>"), "the scatter stays");
}

/// The page's text without its tags, on one line.
fn page_text(page: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace("&#39;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_checkpoints_evaluation_goes_beside_the_final_one_and_the_page_names_its_epoch() {
    let f = Fixture::new();
    f.train("run", &[]).ok();
    use_run(&f, "eval", "run");
    let final_eval = std::fs::read(f.path("run/eval.json")).unwrap();
    let final_mistakes = std::fs::read(f.path("run/mistakes.png")).ok();
    let data = f.data();
    let out = f.run(&["eval", "--artifacts", "run", "--checkpoint", "1", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]);
    out.ok();
    assert!(out.stdout.contains("wrote run/eval-epoch-001.json"), "{}", out.stdout);
    // The final model's files are untouched.
    assert_eq!(std::fs::read(f.path("run/eval.json")).unwrap(), final_eval, "eval --checkpoint overwrote eval.json");
    assert_eq!(std::fs::read(f.path("run/mistakes.png")).ok(), final_mistakes, "eval --checkpoint overwrote mistakes.png");
    let ckpt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path("run/eval-epoch-001.json")).unwrap()).unwrap();
    assert_eq!(ckpt["checkpoint"], 1);
    assert_eq!(ckpt["mistakes"].as_array().unwrap().is_empty(), !f.path("run/mistakes-epoch-001.png").exists());

    // The page: the final figures are the final model's; the checkpoint is named with its own epoch's figures.
    let text = page_text(&f.path("run/report.html"));
    let fin: serde_json::Value = serde_json::from_slice(&final_eval).unwrap();
    let row1 = &metrics(&f.path("run"))[0];
    assert!(text.contains(&format!("Accuracy {:.4}", fin["accuracy"].as_f64().unwrap())), "{text}");
    assert!(text.contains("eval.json (the final model)"), "{text}");
    let checkpoint_row = format!(
        "1 {:.4} {:.4} {:.4} {:.4} eval-epoch-001.json",
        row1.train_loss,
        row1.train_acc,
        ckpt["loss"].as_f64().unwrap(),
        ckpt["accuracy"].as_f64().unwrap()
    );
    assert!(text.contains("Checkpoints evaluated ( eval --checkpoint N )") && text.contains(&checkpoint_row), "no row `{checkpoint_row}` in:\n{text}");

    // --overwrite replaces the checkpoint's files with the rest of the run.
    f.train("run", &["--overwrite", "--epochs", "1"]).ok();
    assert!(!f.path("run/eval-epoch-001.json").exists() && !f.path("run/mistakes-epoch-001.png").exists());
}

#[test]
fn an_eval_json_of_a_checkpoint_is_not_shown_as_the_final_models() {
    // What `eval --checkpoint 1` of an older version left: the checkpoint's figures in eval.json.
    let f = Fixture::new();
    f.train("run", &[]).ok();
    use_run(&f, "eval", "run");
    let path = f.path("run/eval.json");
    let mut eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    eval["model"] = "run/checkpoint/model-1.bpk".into();
    eval["accuracy"] = 0.1234.into();
    std::fs::write(&path, eval.to_string()).unwrap();
    f.run(&["report", "--artifacts", "run"]).ok();
    let text = page_text(&f.path("run/report.html"));
    assert!(!text.contains("0.1234"), "{text}");
    assert!(text.contains("holds the evaluation of the checkpoint of epoch 1, not of the final model"), "{text}");
    assert!(text.contains("Not yet: the final model's most confident mistakes"), "{text}");
}

#[test]
fn predict_and_export_refresh_the_page() {
    let f = Fixture::new();
    f.train("run", &[]).ok();
    assert!(page_text(&f.path("run/report.html")).contains("Not yet: the prediction grid (predictions.png)"));
    use_run(&f, "predict", "run");
    let text = page_text(&f.path("run/report.html"));
    assert!(!text.contains("Not yet: the prediction grid") && text.contains("Predictions on test images"), "{text}");
    f.run(&["export", "--artifacts", "run", "--backend", CPU]).ok();
    assert!(page_text(&f.path("run/report.html")).contains("model.safetensors"));
    // A grid written elsewhere leaves the run folder (and its page) alone.
    let before = std::fs::read(f.path("run/report.html")).unwrap();
    let data = f.data();
    f.run(&["predict", "--artifacts", "run", "--out", "p.png", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]).ok();
    assert_eq!(std::fs::read(f.path("run/report.html")).unwrap(), before);
}

#[test]
fn the_final_figures_compare_each_figure_the_right_way_round() {
    let f = Fixture::new();
    // The book's recipe (no --config) on the fixture's few images: only the rows matter here.
    let data = f.data();
    f.run(&["train", "--artifacts", "run", "--data-dir", data.to_str().unwrap(), "--skip-checksum", "--backend", CPU]).ok();
    let text = page_text(&f.path("run/report.html"));
    for name in ["Train loss", "Train accuracy", "Test accuracy", "Test loss"] {
        assert!(text.contains(&format!("{name} ")), "no {name} row: {text}");
    }
    assert!(text.contains("0.864–0.865"), "train accuracy against the book's range: {text}");
    assert!(text.contains("Device CPU,") && !text.contains("Device backend"), "the device row repeats the backend: {text}");
}
