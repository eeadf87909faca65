//! The page from generated run and sweep folders: pieces present, missing, damaged, hostile.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::TrainConfig;
use crate::run::metrics::{self, EpochRow};

fn row(epoch: usize, train_loss: f64, test_acc: f64) -> EpochRow {
    EpochRow { epoch, train_loss, train_acc: 0.86, test_loss: 0.45, test_acc, seconds: 1.5 }
}

/// A run folder as `train` leaves it: config.toml and metrics.csv.
fn make_run(dir: &Path, cfg: &TrainConfig, rows: &[EpochRow]) {
    std::fs::create_dir_all(dir).unwrap();
    cfg.save(&dir.join("config.toml")).unwrap();
    metrics::write(&dir.join("metrics.csv"), rows).unwrap();
}

/// A temp folder holding the run folder `run`.
fn temp_run(cfg: &TrainConfig, rows: &[EpochRow]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    make_run(&run, cfg, rows);
    (tmp, run)
}

fn eval_json(mistakes: bool) -> String {
    let confusion: Vec<Vec<u64>> = (0..10).map(|t| (0..10).map(|p| if t == p { 90 } else { 1 + (t + p) as u64 % 2 }).collect()).collect();
    let mistakes = if mistakes { r#""mistakes":[{"index":17,"true_label":6,"predicted":0,"confidence":0.97}],"# } else { "" };
    format!(r#"{{{mistakes}"model":"model.bpk","samples":1000,"loss":0.4321,"accuracy":0.8512,"per_class":[],"confusion":{confusion:?}}}"#)
}

fn png() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(4, 4, image::Luma([200])).write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

fn report(dir: &Path) -> String {
    let out = write_report(dir, None).unwrap();
    assert_eq!(out, dir.join(REPORT_FILE));
    std::fs::read_to_string(out).unwrap()
}

/// Every `http(s)://` in the page is a plain link to the book.
fn assert_self_contained(page: &str) {
    for (i, _) in page.match_indices("http") {
        let rest = &page[i..];
        if rest.starts_with("http://") || rest.starts_with("https://") {
            assert!(page[..i].ends_with("<a href=\"") && rest.starts_with("https://d2l.ai/"), "{}", &rest[..60.min(rest.len())]);
        }
    }
    assert!(!page.contains(" src=\"http") && !page.contains("url("), "fetches something");
}

#[test]
fn a_run_still_training_says_what_is_not_there_yet() {
    let (_tmp, run) = temp_run(&TrainConfig::default(), &[row(1, 0.9, 0.7), row(2, 0.6, 0.78)]);
    let page = report(&run);
    assert_self_contained(&page);
    assert!(page.contains("2 of 10"), "epochs done of planned");
    assert!(page.contains(&format!("d2l-mlp train --resume --artifacts {}", run.display())));
    assert!(page.contains(&format!("Not yet:</strong> the test-set evaluation (eval.json). Make it with <code>d2l-mlp eval --artifacts {}</code>", run.display())));
    assert!(page.contains("Not yet:</strong> the prediction grid"));
    assert!(page.contains("Not yet:</strong> the pictures of the most confident mistakes"));
    // Backend, device, times: not recorded without run.json.
    assert!(page.matches("not recorded").count() >= 5);
    // Every config field, and the curves inline.
    for field in ["epochs", "lr", "batch_size", "seed", "hidden", "activation", "init_std", "shuffle"] {
        assert!(page.contains(&format!("<th scope=\"row\">{field}</th>")), "{field}");
    }
    assert!(page.contains("<img src=\"data:image/svg+xml;base64,"));
    // Links only to files that exist, relative.
    assert!(page.contains("<a href=\"config.toml\">") && page.contains("<a href=\"metrics.csv\">"));
    assert!(!page.contains("href=\"eval.json\"") && !page.contains("href=\"model.bpk\""));
    // The book's reference for the book's recipe: test accuracy 0.78 is below its range.
    assert!(page.contains("0.830–0.855 <span class=\"off\">below</span>"), "reference");
}

#[test]
fn a_finished_run_shows_the_heat_map_mistakes_and_pictures() {
    let cfg = TrainConfig { epochs: 2, hidden: vec![32], ..TrainConfig::default() };
    let (_tmp, run) = temp_run(&cfg, &[row(1, 0.9, 0.7), row(2, 0.383, 0.84)]);
    std::fs::write(run.join("eval.json"), eval_json(true)).unwrap();
    std::fs::write(run.join("predictions.png"), png()).unwrap();
    std::fs::write(run.join("mistakes.png"), png()).unwrap();
    let info = r#"{"backend":"ndarray","device":"Cpu","burn_version":"0.22.1","started":"2025-01-02T03:04:05Z","finished":"2025-01-02T03:05:05Z","seconds_per_epoch":1.25}"#;
    std::fs::write(run.join("run.json"), info).unwrap();
    let page = report(&run);
    assert_self_contained(&page);
    assert_eq!(page.matches("<td class=\"cm").count(), 100);
    assert!(page.contains("Accuracy <strong>0.8512</strong>"));
    assert!(page.contains("test image 17: a Shirt taken for a T-shirt/top (97.0% sure)"));
    assert_eq!(page.matches("<img src=\"data:image/png;base64,").count(), 2);
    assert!(page.matches("<img ").count() == page.matches(" alt=\"").count());
    for v in ["ndarray", "0.22.1", "2025-01-02T03:04:05Z", "1.25"] {
        assert!(page.contains(&format!("<td>{v}</td>")), "{v}");
    }
    // Not the book's recipe: no reference range, and why.
    assert!(!page.contains("0.830–0.855") && page.contains("this one differs in epochs, hidden"));
    assert!(!page.contains("<script"), "a run's page needs no script");
}

#[test]
fn hostile_folder_names_and_values_render_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("<script>alert(1)</script>");
    make_run(&run, &TrainConfig::default(), &[row(1, 0.5, 0.8)]);
    let info = r#"{"backend":"flex","device":"<img src=x onerror=alert(2)>","burn_version":"0.22.1","started":"x"}"#;
    std::fs::write(run.join("run.json"), info).unwrap();
    std::fs::write(run.join("a\"b<c>.txt"), "x").unwrap();
    let page = report(&run);
    assert!(!page.contains("<script") && !page.contains("<img src=x"), "injected markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("<a href=\"a%22b%3Cc%3E.txt\">a&quot;b&lt;c&gt;.txt</a>"));
}

#[test]
fn damaged_pieces_are_named_and_the_page_still_renders() {
    let (_tmp, run) = temp_run(&TrainConfig::default(), &[row(1, 0.5, 0.8)]);
    std::fs::write(run.join("eval.json"), "{\"accuracy\": 1").unwrap();
    std::fs::write(run.join("predictions.png"), "not a png").unwrap();
    let page = report(&run);
    assert!(page.contains("Unreadable:</strong> ") && page.contains("eval.json: EOF"), "eval.json");
    assert!(page.contains("predictions.png: not a PNG image; make it again with `d2l-mlp predict"));
    assert!(page.ends_with("</html>\n"));
}

#[test]
fn a_perfect_model_has_no_mistakes_to_show() {
    let (_tmp, run) = temp_run(&TrainConfig::default(), &[row(1, 0.5, 1.0)]);
    std::fs::write(run.join("eval.json"), eval_json(false).replacen('{', r#"{"mistakes":[],"#, 1)).unwrap();
    let page = report(&run);
    assert!(page.contains("No mistakes on the test set.") && !page.contains("Not yet:</strong> the pictures"));
}

#[test]
fn the_page_may_live_elsewhere_and_links_still_lead_to_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("runs").join("a");
    make_run(&run, &TrainConfig::default(), &[row(1, 0.5, 0.8)]);
    std::fs::create_dir(tmp.path().join("pages")).unwrap();
    let out = tmp.path().join("pages").join("a.html");
    assert_eq!(write_report(&run, Some(&out)).unwrap(), out);
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains("<a href=\"../runs/a/config.toml\">"), "relative link");
    // A folder as --out, or a folder that is no run, is bad input.
    assert_eq!(write_report(&run, Some(tmp.path())).unwrap_err().exit_code(), 2);
    let e = write_report(tmp.path(), None).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--artifacts") && !e.to_string().contains('\n'));
    assert_eq!(write_report(&tmp.path().join("none"), None).unwrap_err().exit_code(), 2);
}

#[test]
fn a_sweep_shows_its_leaderboard_pictures_and_best_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("sweep.toml"), "lr = [0.1, 0.5]\n").unwrap();
    let board = "rank,trial,lr,epochs,val_loss,val_acc,train_loss,train_acc,seconds,status\n\
                 1,1,0.5,2,0.4,0.86,0.4,0.85,3,done\n2,0,0.1,2,0.5,0.81,0.5,0.8,3,done\n3,2,9.0,2,NaN,NaN,NaN,NaN,1,failed\n";
    std::fs::write(dir.join("leaderboard.csv"), board).unwrap();
    std::fs::write(dir.join("sweep.png"), png()).unwrap();
    make_run(&dir.join("best"), &TrainConfig::default(), &[row(1, 0.5, 0.86)]);
    std::fs::write(dir.join("best/eval.json"), eval_json(false)).unwrap();
    let page = report(dir);
    assert_self_contained(&page);
    assert!(page.contains("<table class=\"sortable\">") && page.contains("<th scope=\"col\" data-num>val_acc</th>"));
    assert!(page.contains("<tr class=\"best\"><td class=\"num\" data-v=\"1\">1</td><td class=\"num\" data-v=\"1\">1</td><td class=\"num\" data-v=\"0.5\">0.5</td>"));
    assert!(page.contains("alt=\"The sweep&#39;s chart sweep.png"));
    assert_eq!(page.matches("<td class=\"cm").count(), 100, "the best run's heat map");
    assert!(page.contains("<a href=\"best/config.toml\">") && page.contains("<a href=\"leaderboard.csv\">"));
    // The one script is allowed by its hash and nothing else is.
    let hash = html::base64(&Sha256::digest(SORT_SCRIPT));
    assert!(page.contains(&format!("script-src 'sha256-{hash}'")));
    assert_eq!(page.matches("<script>").count(), 1);
}
