//! A run's part of the page: what ran where, the final figures beside the book's, the recipe,
//! the curves, the confusion heat map, the most confident mistakes, the prediction grid, the files.

use std::path::Path;

use crate::plot::curves_svg;
use super::html::{command, esc, figure, img, kv_table, link, not_yet, section, unreadable};
use super::inputs::{self, EvalFile, Mistake, Piece};
use crate::config::TrainConfig;
use crate::data::{CLASS_NAMES, NUM_CLASSES};
use crate::run::info::RunInfo;
use crate::run::metrics::{EpochRow, HeldOut};
use crate::run::{EVAL_FILE, MISTAKES_FILE, MODEL_FILE, PREDICTIONS_FILE};

/// The book's section with the figures below (a plain link; the page fetches nothing).
pub const BOOK_URL: &str = "https://d2l.ai/chapter_multilayer-perceptrons/mlp-implementation.html";
/// The book's final train loss, train accuracy and test accuracy for its recipe (10 epochs).
const BOOK_TRAIN_LOSS: (f64, f64) = (0.382, 0.385);
const BOOK_TRAIN_ACC: (f64, f64) = (0.864, 0.865);
const BOOK_TEST_ACC: (f64, f64) = (0.830, 0.855);

/// Everything the page shows of one run folder.
struct Run<'a> {
    dir: &'a Path,
    /// Links to the folder's files start with this (relative to the page).
    base: &'a str,
    level: u8,
    config: Piece<TrainConfig>,
    rows: Piece<Vec<EpochRow>>,
    info: Piece<RunInfo>,
    eval: Piece<EvalFile>,
    /// `eval --checkpoint N`'s evaluations, by epoch, with their file names.
    checkpoints: Vec<(usize, String, Piece<EvalFile>)>,
}

/// The run's sections, headings at `level`, links relative to the page through `base`.
pub fn sections(dir: &Path, base: &str, level: u8) -> String {
    let r = Run {
        dir,
        base,
        level,
        config: inputs::config(dir),
        rows: inputs::epochs(dir),
        info: inputs::run_info(dir),
        eval: inputs::eval(dir, &command("eval", dir)),
        checkpoints: inputs::checkpoint_evals(dir),
    };
    [
        format!("<div class=\"cols\">{}{}</div>", overview(&r), recipe(&r)),
        final_figures(&r),
        curves_section(&r),
        confusion(&r),
        mistakes(&r),
        predictions(&r),
        super::files_section(dir, base, level),
    ]
    .concat()
}

fn muted(text: &str) -> String {
    format!("<span class=\"muted\">{}</span>", esc(text))
}

fn recorded(v: Option<&str>) -> String {
    v.map(esc).unwrap_or_else(|| muted("not recorded"))
}

fn overview(r: &Run) -> String {
    let problem = match &r.info {
        Piece::Bad(m) => unreadable(m),
        _ => String::new(),
    };
    let info = r.info.ready();
    let field = |f: fn(&RunInfo) -> Option<&str>| recorded(info.and_then(f));
    let rows = [
        ("Folder", format!("<code>{}</code>", esc(&r.dir.display().to_string()))),
        ("Model", recorded(r.config.ready().map(|c| c.describe_model()).as_deref())),
        ("Backend", field(|i| Some(&i.backend))),
        ("Device", recorded(info.map(|i| device_only(&i.backend, &i.device)).as_deref())),
        ("Burn version", field(|i| Some(&i.burn_version))),
        ("Started", field(|i| Some(&i.started))),
        ("Finished", field(|i| i.finished.as_deref())),
        ("Epochs", epochs_cell(r)),
        ("Seconds per epoch", seconds_cell(r, info.and_then(|i| i.seconds_per_epoch))),
    ];
    section(r.level, "overview", "Run", &format!("{problem}{}", kv_table(&rows)))
}

/// The device without the backend the row above names: `backend flex (CPU, 2 threads)` -> `CPU, 2 threads`.
fn device_only(backend: &str, device: &str) -> String {
    let prefix = format!("backend {backend} (");
    let Some(rest) = device.strip_prefix(prefix.as_str()) else {
        return device.to_string();
    };
    // A note may follow the parenthesis (`... (CPU, 2 threads) | Burn's reference ops`).
    match rest.split_once(") | ") {
        Some((inner, note)) => format!("{inner} | {note}"),
        None => rest.strip_suffix(')').unwrap_or(rest).to_string(),
    }
}

fn epochs_cell(r: &Run) -> String {
    let done = r.rows.ready().and_then(|rows| rows.last()).map_or(0, |row| row.epoch);
    let info = r.info.ready();
    if let Some(best) = info.and_then(|i| i.best_epoch) {
        let stop = match info.and_then(|i| i.stopped_early_after) {
            Some(last) => format!(", stopped early after epoch {last} ({} without a better one)", last - best),
            None => String::new(),
        };
        let planned = r.config.ready().map(|c| format!(" of {}", c.epochs)).unwrap_or_default();
        return format!("{done}{planned}{stop}<br>model.bpk is epoch {best}'s {}", muted("(the best validation accuracy)"));
    }
    match r.config.ready().map(|c| c.epochs) {
        Some(planned) if done < planned => format!(
            "{done} of {planned} {}<br>continue with <code>{}</code>",
            muted("(still training, or stopped)"),
            esc(&command("train --resume", r.dir))
        ),
        _ if done == 0 => muted("none finished yet"),
        _ => done.to_string(),
    }
}

fn seconds_cell(r: &Run, recorded: Option<f64>) -> String {
    let rows = r.rows.ready().filter(|rows| !rows.is_empty());
    match (recorded, rows) {
        (Some(s), _) => format!("{s:.2}"),
        (None, Some(rows)) => {
            let mean = rows.iter().map(|r| r.seconds).sum::<f64>() / rows.len() as f64;
            format!("{mean:.2} {}", muted("(mean of metrics.csv)"))
        }
        (None, None) => muted("not recorded"),
    }
}

/// Config fields (names) where `c` differs from the book's recipe; the seed and what the run
/// writes (`tensorboard`) do not count.
fn differs_from_book(c: &TrainConfig) -> Vec<String> {
    let book = TrainConfig { seed: c.seed, tensorboard: c.tensorboard, ..TrainConfig::default() }.to_toml();
    let book: Vec<&str> = book.lines().collect();
    let ours = c.to_toml();
    ours.lines()
        .filter(|l| !book.contains(l))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_string()))
        .collect()
}

/// Where `v` lies against the book's range: within, or on the better or the worse side (a
/// lower loss is better, a higher accuracy).
fn verdict(v: f64, (lo, hi): (f64, f64), higher_is_better: bool) -> String {
    // The book gives three decimals: compare at that precision.
    let v = (v * 1000.0).round() / 1000.0;
    let (class, word) = match (v < lo, v > hi, higher_is_better) {
        (true, _, false) => ("ok", "below (better)"),
        (_, true, true) => ("ok", "above (better)"),
        (true, _, true) => ("off", "below"),
        (_, true, false) => ("off", "above"),
        _ => ("ok", "within"),
    };
    format!("{lo:.3}–{hi:.3} <span class=\"{class}\">{word}</span>")
}

/// The epoch whose model is the run's: run.json's best epoch (a validation split), else the last.
fn model_row<'r>(r: &'r Run) -> Option<&'r EpochRow> {
    let rows = r.rows.ready()?;
    let best = r.info.ready().and_then(|i| i.best_epoch);
    best.and_then(|b| rows.iter().find(|row| row.epoch == b)).or(rows.last())
}

fn final_figures(r: &Run) -> String {
    let last = model_row(r);
    // Test figures: eval.json's (the whole test set, the final model) when there, else the last epoch's.
    let test = match (r.eval.ready(), last) {
        (Some(e), _) => Some((e.accuracy, e.loss, format!("eval.json (the final model), {} test images", e.samples), HeldOut::Test)),
        (None, Some(l)) => Some((l.test_acc, l.test_loss, format!("metrics.csv, epoch {}", l.epoch), held_out(r))),
        (None, None) => None,
    };
    let Some((acc, loss, from, held)) = test else {
        return section(r.level, "figures", "Final figures", &not_yet("no epoch has finished", &command("train", r.dir)));
    };
    let differs = r.config.ready().map(differs_from_book);
    let book = differs.as_ref().is_some_and(|d| d.is_empty());
    let reference = |v: f64, range, higher| if book { verdict(v, range, higher) } else { "—".to_string() };
    let mut rows = Vec::new();
    if let Some(l) = last {
        let epoch = format!("metrics.csv, epoch {}", l.epoch);
        rows.push(("Train loss", l.train_loss, epoch.clone(), reference(l.train_loss, BOOK_TRAIN_LOSS, false)));
        rows.push(("Train accuracy", l.train_acc, epoch, reference(l.train_acc, BOOK_TRAIN_ACC, true)));
    }
    if let Some(l) = last.filter(|_| held == HeldOut::Test && held_out(r) == HeldOut::Validation) {
        let epoch = format!("metrics.csv, epoch {}", l.epoch);
        rows.push(("Validation accuracy", l.test_acc, epoch, "—".to_string()));
    }
    let (acc_name, loss_name) = match held {
        HeldOut::Test => ("Test accuracy", "Test loss"),
        HeldOut::Validation => ("Validation accuracy", "Validation loss"),
    };
    rows.push((acc_name, acc, from.clone(), reference(acc, BOOK_TEST_ACC, true)));
    rows.push((loss_name, loss, from, "—".to_string()));
    let mut s = String::from("<table><thead><tr><th>Figure</th><th>This run</th><th>From</th><th>The book</th></tr></thead><tbody>");
    for (name, value, from, reference) in rows {
        s.push_str(&format!(
            "<tr><th scope=\"row\">{name}</th><td class=\"num big\">{value:.4}</td><td>{}</td><td>{reference}</td></tr>",
            esc(&from)
        ));
    }
    s.push_str("</tbody></table>");
    s.push_str(&book_note(differs.as_deref()));
    s.push_str(&checkpoint_table(r));
    section(r.level, "figures", "Final figures", &s)
}

/// The checkpoints `eval --checkpoint N` evaluated, each beside its own epoch's training
/// figures (never the final model's), with links to its files.
fn checkpoint_table(r: &Run) -> String {
    if r.checkpoints.is_empty() {
        return String::new();
    }
    let rows = r.rows.ready().map_or(&[][..], |v| v.as_slice());
    let mut s = String::from(
        "<table><caption>Checkpoints evaluated (<code>eval --checkpoint N</code>), each with its own epoch's figures</caption>\
         <thead><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>test loss</th><th>test acc</th><th>files</th></tr></thead><tbody>",
    );
    for (epoch, name, piece) in &r.checkpoints {
        let train = rows.iter().find(|row| row.epoch == *epoch);
        let cell = |v: Option<f64>| v.map_or_else(|| muted("—"), |v| format!("{v:.4}"));
        let figures = match piece {
            Piece::Ready(e) => format!("<td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td>", e.loss, e.accuracy),
            Piece::Bad(m) => format!("<td colspan=\"2\">{}</td>", unreadable(m)),
            Piece::Missing => "<td></td><td></td>".to_string(),
        };
        let mistakes = crate::run::checkpoint_name(MISTAKES_FILE, *epoch);
        let mut files = link(r.base, name, name);
        if r.dir.join(&mistakes).is_file() {
            files.push_str(&format!(", {}", link(r.base, &mistakes, &mistakes)));
        }
        s.push_str(&format!(
            "<tr><td class=\"num\">{epoch}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{figures}<td>{files}</td></tr>",
            cell(train.map(|t| t.train_loss)),
            cell(train.map(|t| t.train_acc))
        ));
    }
    s.push_str("</tbody></table>");
    s
}

fn book_note(differs: Option<&[String]>) -> String {
    let book = format!("<a href=\"{BOOK_URL}\">Dive into Deep Learning, “Concise Implementation of Multilayer Perceptrons”</a>");
    match differs {
        Some([]) => format!("<p>The book's range for this recipe: {book}.</p>"),
        Some(d) => format!(
            "<p class=\"muted\">No reference: the book's figures ({book}) are for its recipe; this one differs in {}.</p>",
            esc(&d.join(", "))
        ),
        None => "<p class=\"muted\">No reference: the recipe (config.toml) is unknown.</p>".to_string(),
    }
}

fn recipe(r: &Run) -> String {
    let body = match &r.config {
        Piece::Ready(c) => {
            let text = c.to_toml();
            let rows: Vec<(&str, String)> = text
                .lines()
                .filter_map(|l| l.split_once(" = "))
                .map(|(k, v)| (k, format!("<code>{}</code>", esc(v))))
                .collect();
            kv_table(&rows)
        }
        Piece::Missing => not_yet("the recipe (config.toml)", &command("train", r.dir)),
        Piece::Bad(m) => unreadable(m),
    };
    section(r.level, "recipe", "Recipe", &body)
}

fn curves_section(r: &Run) -> String {
    let body = match &r.rows {
        Piece::Ready(rows) => match curves_svg(&[(crate::run::RunDir::new(r.dir).name(), rows.clone())], held_out(r)) {
            Ok(svg) => {
                let alt = format!("Training curves over {} epoch(s): train loss, train accuracy and {} accuracy", rows.len(), held_out(r).name());
                figure(&img(svg.as_bytes(), "image/svg+xml", &alt), "Training curves (from metrics.csv)") + &epoch_table(rows, held_out(r))
            }
            Err(e) => unreadable(&e.one_line()),
        },
        Piece::Missing => not_yet("no epoch has finished (metrics.csv)", &command("train", r.dir)),
        Piece::Bad(m) => unreadable(m),
    };
    section(r.level, "curves", "Training curves", &body)
}

/// What the run's held-out figures measure (a sweep's trial: the validation split).
fn held_out(r: &Run) -> HeldOut {
    crate::run::metrics::held_out(&r.dir.join(crate::run::METRICS_FILE))
}

fn epoch_table(rows: &[EpochRow], held: HeldOut) -> String {
    let h = held.short();
    let mut s = format!(
        "<details><summary>Figures per epoch</summary><table><thead><tr><th>epoch</th><th>train loss</th>\
         <th>train acc</th><th>{h} loss</th><th>{h} acc</th><th>seconds</th></tr></thead><tbody>"
    );
    for r in rows {
        s.push_str(&format!(
            "<tr><td class=\"num\">{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.4}</td>\
             <td class=\"num\">{:.4}</td><td class=\"num\">{:.2}</td></tr>",
            r.epoch, r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.seconds
        ));
    }
    s.push_str("</tbody></table></details>");
    s
}

fn eval_body(r: &Run, what: &str, ready: impl FnOnce(&EvalFile) -> String) -> String {
    match &r.eval {
        Piece::Ready(e) => ready(e),
        Piece::Missing => not_yet(what, &command("eval", r.dir)),
        Piece::Bad(m) => unreadable(m),
    }
}

fn confusion(r: &Run) -> String {
    let body = eval_body(r, "the test-set evaluation (eval.json)", |e| {
        let summary = format!(
            "<p>Accuracy <strong>{:.4}</strong>, loss {:.4}, on {} test images.{}</p>",
            e.accuracy,
            e.loss,
            e.samples,
            stale_note(r)
        );
        summary + &heat_map(&e.confusion)
    });
    section(r.level, "confusion", "Confusion matrix", &body)
}

/// eval.json older than the model: the figures are for an earlier model.
fn stale_note(r: &Run) -> String {
    let modified = |f: &str| std::fs::metadata(r.dir.join(f)).and_then(|m| m.modified()).ok();
    match (modified(EVAL_FILE), modified(MODEL_FILE)) {
        (Some(e), Some(m)) if e < m => format!(
            " <span class=\"off\">Older than model.bpk: refresh with <code>{}</code></span>",
            esc(&command("eval", r.dir))
        ),
        _ => String::new(),
    }
}

fn heat_map(m: &[Vec<u64>]) -> String {
    let mut s = String::from(
        "<div class=\"scroll\"><table class=\"confusion\"><caption>Rows: true class; columns: predicted class; \
         colour: share of the true class's images.</caption><thead><tr><th scope=\"col\">true \\ predicted</th>",
    );
    for name in CLASS_NAMES {
        s.push_str(&format!("<th scope=\"col\">{}</th>", esc(name)));
    }
    s.push_str("<th scope=\"col\">accuracy</th></tr></thead><tbody>");
    for (t, row) in m.iter().enumerate().take(NUM_CLASSES) {
        let total: u64 = row.iter().sum();
        s.push_str(&format!("<tr><th scope=\"row\">{}</th>", esc(CLASS_NAMES[t])));
        for (p, &v) in row.iter().enumerate() {
            let share = v as f64 / total.max(1) as f64;
            // sqrt: the few off-diagonal shares of a good model stay visible.
            let shade = share.sqrt();
            let class = match (t == p, shade > 0.6) {
                (true, true) => "cm d hi",
                (true, false) => "cm d",
                (false, true) => "cm hi",
                (false, false) => "cm",
            };
            let title = format!("true {}, predicted {}: {v} ({:.1}%)", CLASS_NAMES[t], CLASS_NAMES[p], share * 100.0);
            s.push_str(&format!("<td class=\"{class}\" style=\"--f:{shade:.3}\" title=\"{}\">{v}</td>", esc(&title)));
        }
        let acc = row.get(t).copied().unwrap_or(0) as f64 / total.max(1) as f64;
        s.push_str(&format!("<td class=\"num\">{acc:.3} <small>({}/{total})</small></td></tr>", row.get(t).copied().unwrap_or(0)));
    }
    s.push_str("</tbody></table></div>");
    s
}

fn mistakes(r: &Run) -> String {
    let eval_cmd = command("eval", r.dir);
    let list = r.eval.ready().and_then(|e| e.mistakes.as_deref());
    let picture = match inputs::png(&r.dir.join(MISTAKES_FILE), &eval_cmd) {
        // eval draws no picture when the model got every test image right.
        _ if list.is_some_and(|l| l.is_empty()) => "<p>No mistakes on the test set.</p>".to_string(),
        // The picture belongs to eval.json, which the page cannot vouch for.
        _ if matches!(r.eval, Piece::Bad(_)) => not_yet("the final model's most confident mistakes (mistakes.png)", &eval_cmd),
        Piece::Ready(b) => figure(&img(&b, "image/png", &mistakes_alt(list)), "The most confident mistakes on the test set"),
        Piece::Missing => not_yet("the pictures of the most confident mistakes (mistakes.png)", &eval_cmd),
        Piece::Bad(m) => unreadable(&m),
    };
    let table = list.map(mistakes_table).unwrap_or_default();
    section(r.level, "mistakes", "Most confident mistakes", &(picture + &table))
}

fn describe(m: &Mistake) -> String {
    format!(
        "test image {}: a {} taken for a {} ({:.1}% sure)",
        m.index,
        CLASS_NAMES[m.true_label],
        CLASS_NAMES[m.predicted],
        m.confidence * 100.0
    )
}

fn mistakes_alt(list: Option<&[Mistake]>) -> String {
    match list {
        Some(l) if !l.is_empty() => format!(
            "The {} test images the model got wrong most confidently: {}",
            l.len(),
            l.iter().map(describe).collect::<Vec<_>>().join("; ")
        ),
        _ => "The test images the model got wrong most confidently, each with its true and predicted class".to_string(),
    }
}

fn mistakes_table(list: &[Mistake]) -> String {
    let mut s = String::from(
        "<details><summary>The mistakes as a table</summary><table><thead><tr><th>test image</th><th>true class</th>\
         <th>predicted</th><th>confidence</th></tr></thead><tbody>",
    );
    for m in list {
        s.push_str(&format!(
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1}%</td></tr>",
            m.index,
            esc(CLASS_NAMES[m.true_label]),
            esc(CLASS_NAMES[m.predicted]),
            m.confidence * 100.0
        ));
    }
    s.push_str("</tbody></table></details>");
    s
}

fn predictions(r: &Run) -> String {
    let predict = command("predict", r.dir);
    let body = match inputs::png(&r.dir.join(PREDICTIONS_FILE), &predict) {
        Piece::Ready(b) => {
            let alt = "Grid of test images, each with its true class and the model's predicted class";
            figure(&img(&b, "image/png", alt), "Predictions on test images (from predict)")
        }
        Piece::Missing => not_yet("the prediction grid (predictions.png)", &predict),
        Piece::Bad(m) => unreadable(&m),
    };
    section(r.level, "predictions", "Predictions", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_books_recipe_has_a_reference() {
        assert!(differs_from_book(&TrainConfig::default()).is_empty());
        assert!(differs_from_book(&TrainConfig { seed: 7, ..TrainConfig::default() }).is_empty());
        let c = TrainConfig { epochs: 3, hidden: vec![32], ..TrainConfig::default() };
        assert_eq!(differs_from_book(&c), vec!["epochs", "hidden"]);
    }

    #[test]
    fn verdicts_name_the_side_and_which_side_is_better() {
        assert!(verdict(0.383, BOOK_TRAIN_LOSS, false).contains("\"ok\">within"));
        assert!(verdict(0.39, BOOK_TRAIN_LOSS, false).contains("\"off\">above"));
        // A lower loss than the book's is better, not a warning.
        assert!(verdict(0.3794, BOOK_TRAIN_LOSS, false).contains("\"ok\">below (better)"));
        // At the book's precision (three decimals), the README's 0.3816 and 0.8639 are within.
        assert!(verdict(0.3816, BOOK_TRAIN_LOSS, false).contains("within"));
        assert!(verdict(0.8639, BOOK_TRAIN_ACC, true).contains("within"));
        assert!(verdict(0.80, BOOK_TEST_ACC, true).contains("\"off\">below"));
        assert!(verdict(0.86, BOOK_TEST_ACC, true).contains("\"ok\">above (better)"));
    }

    #[test]
    fn the_device_row_does_not_repeat_the_backend() {
        assert_eq!(device_only("flex", "backend flex (CPU, 2 threads)"), "CPU, 2 threads");
        assert_eq!(device_only("wgpu", "backend wgpu (llvmpipe (LLVM 19.1.7, 256 bits), Vulkan)"), "llvmpipe (LLVM 19.1.7, 256 bits), Vulkan");
        assert_eq!(device_only("flex", "backend flex (CPU, 2 threads) | Burn's reference ops (--reference-ops)"), "CPU, 2 threads | Burn's reference ops (--reference-ops)");
        assert_eq!(device_only("flex", "something else"), "something else");
    }

    #[test]
    fn heat_map_has_a_cell_per_pair_and_the_row_accuracy() {
        let mut m = vec![vec![0u64; 10]; 10];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = 9;
            row[(i + 1) % 10] = 1;
        }
        let s = heat_map(&m);
        assert_eq!(s.matches("<td class=\"cm").count(), 100);
        assert_eq!(s.matches("class=\"cm d hi\"").count(), 10);
        assert!(s.contains("0.900 <small>(9/10)</small>"));
        assert!(s.contains("T-shirt/top"));
    }
}
