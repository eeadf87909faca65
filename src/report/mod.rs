//! The report page: ONE self-contained HTML file for a run or a sweep folder. Pictures are inline
//! (SVG or PNG as data URIs), nothing is fetched, and a Content-Security-Policy forbids fetching
//! and every script but the page's own. Every piece may be missing ("not yet" + the command that
//! makes it) or damaged ("unreadable" + the fix); neither stops the page.

mod html;
mod inputs;
mod run;
mod sweep;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::run::{REPORT_FILE, RunDir};
use html::{esc, link, section, size};


const STYLE: &str = include_str!("style.css");
/// Sorts the leaderboard by a clicked heading (only on a sweep's page).
const SORT_SCRIPT: &str = include_str!("sort.js");

/// Write the report of the run or sweep in `dir` to `out` (default `dir/report.html`) and return
/// its path. Cheap (reads a few small files); fails only when `dir` is neither a run nor a
/// sweep, or the page cannot be written.
pub fn write_report(dir: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let is_sweep = sweep::is_sweep(dir);
    if !dir.is_dir() || !(is_sweep || RunDir::new(dir).holds_run()) {
        return Err(Error::input(format!(
            "{}: neither a run folder (config.toml, metrics.csv) nor a sweep folder (sweep.toml, leaderboard.csv); \
             pass one with --artifacts",
            dir.display()
        )));
    }
    let out = out.map_or_else(|| dir.join(REPORT_FILE), Path::to_path_buf);
    if out.is_dir() {
        return Err(Error::input(format!("{}: is a folder; pass a file name such as report.html to --out", out.display())));
    }
    let page_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = html::relative_base(&page_dir, dir);
    let title = dir.display().to_string();
    let page = if is_sweep {
        page(&format!("Sweep {title}"), &sweep::sections(dir, &base), Some(SORT_SCRIPT))
    } else {
        page(&format!("Run {title}"), &run::sections(dir, &base, 2), None)
    };
    atomic_write(&out, page.as_bytes()).map_err(|e| Error::io("cannot write", &out, e))?;
    Ok(out)
}

/// The whole document around `body`.
fn page(title: &str, body: &str, script: Option<&str>) -> String {
    // Only this page's own script may run: an injected one would not match the hash.
    let script_src = script.map_or("'none'".to_string(), |s| format!("'sha256-{}'", html::base64(&Sha256::digest(s))));
    let csp = format!(
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {script_src}; base-uri 'none'; form-action 'none'"
    );
    let script = script.map(|s| format!("<script>{s}</script>")).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>d2l-mlp: {t}</title><style>{STYLE}</style></head>\n\
         <body><header><p class=\"muted\">d2l-mlp report · the Dive into Deep Learning MLP on Fashion-MNIST</p>\
         <h1>{t}</h1></header><main>\n{body}</main>{script}</body></html>\n",
        t = esc(title)
    )
}

/// What a file in a run or sweep folder is, for the file list.
fn describe(name: &str) -> &'static str {
    match name {
        "config.toml" => "the recipe",
        "metrics.csv" => "figures per epoch",
        "run.json" => "backend, device, times",
        "eval.json" => "the test-set evaluation",
        "model.bpk" => "the trained model (Burn)",
        "model.safetensors" => "the model in the book's PyTorch layout",
        "curves.png" => "training curves",
        "predictions.png" => "prediction grid",
        "mistakes.png" => "most confident mistakes",
        "experiment.log" => "the training log",
        "sweep.toml" => "the search space",
        "leaderboard.csv" => "every trial's figures",
        "best.toml" => "the best trial's recipe",
        n if crate::run::checkpoint_of(n, "eval.json").is_some() => "a checkpoint's test-set evaluation",
        n if crate::run::checkpoint_of(n, "mistakes.png").is_some() => "a checkpoint's most confident mistakes",
        n if crate::run::checkpoint_of(n, "predictions.png").is_some() => "a checkpoint's prediction grid",
        _ => "",
    }
}

/// Relative links to the files at the top of `dir` (only files that exist; not this page).
fn files_section(dir: &Path, base: &str, level: u8) -> String {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map_or(0, |m| m.len())))
        .filter(|(n, _)| !n.starts_with('.') && n != REPORT_FILE)
        .collect();
    files.sort();
    let items: String = files
        .iter()
        .map(|(n, bytes)| {
            let what = [size(*bytes), describe(n).to_string()].join(" · ");
            format!("<li>{} <span class=\"muted\">{}</span></li>", link(base, n, n), esc(what.trim_end_matches(" · ")))
        })
        .collect();
    let body = if items.is_empty() { "<p class=\"muted\">No files yet.</p>".to_string() } else { format!("<ul class=\"files\">{items}</ul>") };
    let id = if level == 2 { "files" } else { "best-files" };
    section(level, id, "Files", &body)
}

#[cfg(test)]
mod tests;
