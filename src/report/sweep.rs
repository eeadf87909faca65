//! A sweep's part of the page: the leaderboard (a table that sorts by any column), the sweep's
//! pictures and search space, and the best run's sections.

use std::path::Path;

use super::html::{self, esc, figure, img, not_yet, section, unreadable};
use super::inputs::{self, Piece};
use crate::error::{Error, Result};

pub const SWEEP_FILE: &str = "sweep.toml";
pub const LEADERBOARD_FILE: &str = "leaderboard.csv";
pub const BEST_DIR: &str = "best";

/// The command that continues the sweep in `dir` (its trials, leaderboard, picture, best run).
fn sweep_command(dir: &Path) -> String {
    format!("d2l-mlp sweep --resume {}", html::shell_quote(&dir.to_string_lossy()))
}

/// Is `dir` a sweep folder?
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(SWEEP_FILE).is_file() || dir.join(LEADERBOARD_FILE).is_file()
}

/// The sweep's sections; `base` leads from the page to `dir`.
pub fn sections(dir: &Path, base: &str) -> String {
    let best = dir.join(BEST_DIR);
    let best_part = if crate::run::RunDir::new(&best).holds_run() {
        let intro = format!("<p>The best trial, trained again in <code>{}</code>.</p>", esc(&best.display().to_string()));
        section(2, "best", "Best run", &intro) + &super::run::sections(&best, &format!("{base}{BEST_DIR}/"), 3)
    } else {
        section(2, "best", "Best run", &not_yet("the best run (best/)", &sweep_command(dir)))
    };
    [leaderboard(dir), pictures(dir), texts(dir), best_part, super::files_section(dir, base, 2)].concat()
}

/// `leaderboard.csv`, read generically by its header.
#[derive(Debug)]
struct Board {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn parse_board(path: &Path, text: &str) -> Result<Board> {
    let split = |l: &str| l.split(',').map(|f| f.trim().to_string()).collect::<Vec<_>>();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().map(split).unwrap_or_default();
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let row = split(line);
        if row.len() != header.len() {
            let msg = format!(
                "row {} has {} fields, the header {}; restore the file or run the sweep again",
                i + 1,
                row.len(),
                header.len()
            );
            return Err(Error::data(path, msg));
        }
        rows.push(row);
    }
    Ok(Board { header, rows })
}

/// A number as the page shows it: at most 4 decimals, and no "-0".
fn short_number(s: &str) -> String {
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    match s.parse::<f64>() {
        Ok(0.0) => format!("{:.*}", decimals.min(4), 0.0),
        Ok(v) if decimals > 4 && v.is_finite() => format!("{v:.4}"),
        _ => s.to_string(),
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

fn leaderboard(dir: &Path) -> String {
    let path = dir.join(LEADERBOARD_FILE);
    let board = match inputs::bytes(&path) {
        Piece::Ready(b) => parse_board(&path, &String::from_utf8_lossy(&b)),
        Piece::Missing => return section(2, "leaderboard", "Leaderboard", &not_yet("no trial has finished (leaderboard.csv)", &sweep_command(dir))),
        Piece::Bad(m) => return section(2, "leaderboard", "Leaderboard", &unreadable(&m)),
    };
    let body = match board {
        Ok(b) if b.rows.is_empty() => not_yet("no trial has finished (leaderboard.csv)", &sweep_command(dir)),
        Ok(b) => board_table(&b),
        Err(e) => unreadable(&e.one_line()),
    };
    section(2, "leaderboard", "Leaderboard", &body)
}

/// The table sorts by a column when its heading is clicked (script at the page's end); without
/// the script it reads as it is, in the file's order.
fn board_table(b: &Board) -> String {
    let numeric: Vec<bool> = (0..b.header.len()).map(|c| b.rows.iter().all(|r| is_number(&r[c]))).collect();
    let best = best_row(b);
    let mut s = format!(
        "<div class=\"scroll\"><table class=\"sortable\"><caption>{} trial(s); click a heading to sort{}.</caption><thead><tr>",
        b.rows.len(),
        if best.is_some() { "; the highest val_acc is highlighted" } else { "" }
    );
    for (name, &num) in b.header.iter().zip(&numeric) {
        s.push_str(&format!("<th scope=\"col\"{}>{}</th>", if num { " data-num" } else { "" }, esc(name)));
    }
    s.push_str("</tr></thead><tbody>");
    for (i, row) in b.rows.iter().enumerate() {
        s.push_str(if best == Some(i) { "<tr class=\"best\">" } else { "<tr>" });
        for (v, &num) in row.iter().zip(&numeric) {
            match num {
                // Shown with 4 decimals so a wide study fits the page; sorted by the file's value.
                true => s.push_str(&format!("<td class=\"num\" data-v=\"{}\">{}</td>", esc(v), esc(&short_number(v)))),
                false => s.push_str(&format!("<td>{}</td>", esc(v))),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

/// The row with the highest `val_acc`, when there is such a column.
fn best_row(b: &Board) -> Option<usize> {
    let col = b.header.iter().position(|h| h == "val_acc")?;
    let acc = |i: usize| b.rows[i][col].parse::<f64>().ok().filter(|v| v.is_finite());
    (0..b.rows.len()).filter(|&i| acc(i).is_some()).max_by(|&x, &y| acc(x).partial_cmp(&acc(y)).unwrap_or(std::cmp::Ordering::Equal))
}

/// The study's charts, in the order shown, with their captions (SVG when there, else PNG).
const CHARTS: [(&str, &str); 4] = [
    ("sweep", "Validation accuracy against each swept field, and every trial's curve (best in red)"),
    ("history", "Optimisation history: each trial's validation accuracy in trial order, the best so far in red"),
    ("parallel", "Parallel coordinates: a line per trial through its values (darker = more accurate, best in red)"),
    ("slices", "Slices: validation accuracy against each swept field (darker = later trial)"),
];

/// The sweep's charts, then any other PNG at the top of the folder, inline (self-contained).
fn pictures(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") && !n.starts_with('.'))
        .filter(|n| !CHARTS.iter().any(|(stem, _)| *n == format!("{stem}.png")))
        .collect();
    names.sort();
    let charts = CHARTS.iter().map(|(stem, caption)| chart(dir, stem, caption));
    let others = names.iter().map(|n| png_figure(dir, n, n));
    let body: String = charts.chain(others).collect();
    let body = if body.is_empty() { not_yet("the sweep's chart (sweep.png)", &sweep_command(dir)) } else { body };
    section(2, "pictures", "Pictures", &body)
}

/// One chart: its SVG (text stays text), else its PNG, else nothing.
fn chart(dir: &Path, stem: &str, caption: &str) -> String {
    let svg = dir.join(format!("{stem}.svg"));
    match inputs::bytes(&svg) {
        Piece::Ready(b) if b.starts_with(b"<svg") => figure(&img(&b, "image/svg+xml", caption), &format!("{caption} ({stem}.svg)")),
        Piece::Ready(_) => unreadable(&format!("{}: not an SVG picture; make it again with `{}`", svg.display(), sweep_command(dir))),
        Piece::Bad(m) => unreadable(&m),
        Piece::Missing => png_figure(dir, &format!("{stem}.png"), caption),
    }
}

fn png_figure(dir: &Path, name: &str, caption: &str) -> String {
    match inputs::png(&dir.join(name), &sweep_command(dir)) {
        Piece::Ready(b) => figure(&img(&b, "image/png", &format!("The sweep's chart {name}: {caption}")), &format!("{caption} ({name})")),
        Piece::Missing => String::new(),
        Piece::Bad(m) => unreadable(&m),
    }
}

/// The search space and the best recipe, as written.
fn texts(dir: &Path) -> String {
    let body: String = [(SWEEP_FILE, "Search space"), ("best.toml", "Best recipe")]
        .iter()
        .map(|(file, title)| match inputs::bytes(&dir.join(file)) {
            Piece::Ready(b) => format!(
                "<details open><summary>{} ({})</summary><pre>{}</pre></details>",
                esc(title),
                esc(file),
                esc(&String::from_utf8_lossy(&b))
            ),
            Piece::Missing => not_yet(&format!("{title} ({file})"), &sweep_command(dir)),
            Piece::Bad(m) => unreadable(&m),
        })
        .collect();
    section(2, "space", "Search space", &body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_show_at_most_four_decimals_and_no_minus_zero() {
        assert_eq!(super::short_number("0.880200"), "0.8802");
        assert_eq!(super::short_number("-0.000"), "0.000");
        assert_eq!(super::short_number("0.15"), "0.15");
        assert_eq!(super::short_number("128"), "128");
        assert_eq!(super::short_number("NaN"), "NaN");
    }

    use super::*;

    #[test]
    fn the_leaderboard_is_read_by_its_header() {
        let text = "rank,trial,lr,hidden,epochs,val_loss,val_acc,train_loss,train_acc,seconds,status\n\
                    1,4,0.5,<b>,10,0.39,0.87,0.35,0.88,11,done\n2,0,0.1,256,10,0.41,0.85,0.38,0.86,12,done\n";
        let b = parse_board(Path::new("l.csv"), text).unwrap();
        assert_eq!(b.header.len(), 11);
        assert_eq!(best_row(&b), Some(0));
        let html = board_table(&b);
        assert!(html.contains("<th scope=\"col\" data-num>val_acc</th>"), "{html}");
        assert!(html.contains("<th scope=\"col\">hidden</th>"), "{html}");
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"), "{html}");
        assert!(html.contains("<tr class=\"best\"><td class=\"num\" data-v=\"1\">1</td>"), "{html}");
        assert!(html.contains("<th scope=\"col\">status</th>"), "{html}");
        let e = parse_board(Path::new("l.csv"), "a,b\n1\n").unwrap_err().to_string();
        assert!(e.starts_with("l.csv: row 1 has 1 fields") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn an_empty_sweep_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SWEEP_FILE), "lr = [0.1, 0.5]\n").unwrap();
        assert!(is_sweep(dir.path()));
        let s = sections(dir.path(), "");
        assert!(s.contains("no trial has finished") && s.contains("d2l-mlp sweep --resume"), "{s}");
        assert!(s.contains("the best run (best/)"), "{s}");
        assert!(s.contains("lr = [0.1, 0.5]"), "{s}");
    }
}
