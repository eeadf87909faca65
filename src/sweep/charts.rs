//! The study's pictures an HPO user expects (Optuna's three): the optimisation history (each
//! trial's validation accuracy in trial order, and the best so far), parallel coordinates (a
//! line per trial through an axis per swept field and the accuracy), and one slice per swept
//! field (accuracy against the field, coloured by trial number). Each is drawn by one function
//! into a PNG and an SVG (text stays text; the report inlines it).

use std::collections::BTreeSet;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use super::leaderboard::{Entry, Status};
use super::picture::{Scatter, log_ticks, number, panel, scatter, ticks, y_range};
use super::space::Study;
use crate::error::{Error, Result};

const FAMILY: &str = crate::plot::FONT;
const TRIAL: RGBColor = RGBColor(31, 119, 180);
const BEST: RGBColor = RGBColor(214, 39, 40);
const AXIS: RGBColor = RGBColor(90, 90, 90);
/// Light to dark: low to high accuracy (parallel coordinates), early to late trial (slices).
const LIGHT: (f64, f64, f64) = (198.0, 219.0, 239.0);
const DARK: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// The pictures, by file stem.
pub const CHARTS: [&str; 3] = ["history", "parallel", "slices"];

type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// Write `history`, `parallel` and `slices`, each as `.png` and `.svg`, into `dir`.
pub fn draw_all(dir: &Path, study: &Study, entries: &[Entry]) -> Result<()> {
    // Pruned trials too (halving and asha stop all but the best at a rung): history greys them.
    let done: Vec<&Entry> = entries.iter().filter(|e| matches!(e.status, Status::Done | Status::Pruned) && e.val_acc().is_finite()).collect();
    for name in CHARTS {
        let size = size(name, study);
        let png = dir.join(format!("{name}.png"));
        crate::plot::write_png(size, &png, |root| chart(name, root, study, &done))?;
        let mut svg = String::new();
        crate::plot::paint(&SVGBackend::with_string(&mut svg, size).into_drawing_area(), |root| chart(name, root, study, &done))
            .map_err(|e| Error::failure_with(format!("cannot draw the {name} chart"), e.to_string()))?;
        let path = dir.join(format!("{name}.svg"));
        crate::fsutil::atomic_write(&path, svg.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}

fn size(name: &str, study: &Study) -> (u32, u32) {
    let fields = study.space.len() as u32;
    match name {
        "history" => (900, 420),
        "parallel" => ((170 * (fields + 1)).max(700), 460),
        _ => {
            let cols = fields.clamp(1, 3);
            (400 * cols, 320 * fields.div_ceil(cols).max(1))
        }
    }
}

fn chart<DB: DrawingBackend>(name: &str, root: &DrawingArea<DB, Shift>, study: &Study, done: &[&Entry]) -> Drawn
where
    DB::ErrorType: 'static,
{
    match name {
        "history" => history(root, done),
        "parallel" => parallel(root, study, done),
        _ => slices(root, study, done),
    }
}

/// `t` in [0, 1] from light to dark blue.
fn shade(t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(LIGHT.0, DARK.0), mix(LIGHT.1, DARK.1), mix(LIGHT.2, DARK.2))
}

/// Each trial's validation accuracy against its number, and the best so far as a step line.
fn history<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, done: &[&Entry]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let all: Vec<(f64, f64)> = done.iter().map(|e| (e.trial.index as f64, e.val_acc())).collect();
    let pruned: Vec<(f64, f64)> = done.iter().filter(|e| e.status == Status::Pruned).map(|e| (e.trial.index as f64, e.val_acc())).collect();
    let mut points: Vec<(f64, f64)> = done.iter().filter(|e| e.status == Status::Done).map(|e| (e.trial.index as f64, e.val_acc())).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let y = y_range(all.iter().map(|p| p.1));
    let caption = if pruned.is_empty() {
        "optimisation history: validation accuracy per trial, best so far in red"
    } else {
        "optimisation history: validation accuracy per trial (pruned: grey), best so far in red"
    };
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..last + 0.5, y)?;
    chart
        .configure_mesh()
        .x_desc("trial")
        .y_desc("val acc")
        .x_label_formatter(&|v: &f64| if (v - v.round()).abs() < 1e-6 && *v >= 0.0 { format!("{v:.0}") } else { String::new() })
        .y_label_formatter(&|v: &f64| format!("{v:.3}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(pruned.iter().map(|&p| Circle::new(p, 4, AXIS.mix(0.5).stroke_width(1))))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, TRIAL.mix(0.7).filled())))?;
    let mut best = f64::NEG_INFINITY;
    let mut steps = Vec::new();
    for &(x, acc) in &points {
        if acc > best {
            if best.is_finite() {
                steps.push((x, best));
            }
            best = acc;
        }
        steps.push((x, best));
    }
    if let Some(&(_, b)) = steps.last() {
        steps.push((last + 0.5, b));
    }
    chart.draw_series(LineSeries::new(steps, BEST.stroke_width(2)))?;
    Ok(())
}

/// The height of a parallel axis's [0, 1] in pixels (460 less the caption and the margins).
const PARALLEL_AXIS_PX: f64 = 340.0;

/// One parallel axis: a field's values mapped to [0, 1], with labelled ticks.
struct Parallel {
    name: String,
    /// Each finished trial's position on the axis, in `done` order.
    at: Vec<f64>,
    ticks: Vec<(f64, String)>,
}

fn parallel_axis(s: &Scatter) -> Parallel {
    let xs: Vec<f64> = s.points.iter().map(|p| p.0).collect();
    if let Some(names) = &s.labels {
        let n = names.len().max(1) as f64;
        let pos = |i: f64| if n > 1.0 { i / (n - 1.0) } else { 0.5 };
        let ticks = names.iter().enumerate().map(|(i, t)| (pos(i as f64), t.clone())).collect();
        return Parallel { name: s.name.clone(), at: xs.iter().map(|&x| pos(x)).collect(), ticks };
    }
    let t = |x: f64| if s.log { x.ln() } else { x };
    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let pos = |x: f64| if hi > lo { (t(x) - t(lo)) / (t(hi) - t(lo)) } else { 0.5 };
    let mut tried = xs.clone();
    tried.sort_by(f64::total_cmp);
    tried.dedup();
    // Labels one above the other: a line of text and a little more apart.
    let clear = |a: f64, b: f64| (pos(b) - pos(a)) * PARALLEL_AXIS_PX >= 17.0;
    let keys = match (s.log, hi > lo) {
        (_, false) => tried,
        (true, true) => ticks(&tried, log_ticks(lo, hi), clear),
        (false, true) => ticks(&tried, RangedCoordf64::from(lo..hi).key_points(5), clear),
    };
    let mut ticks: Vec<(f64, String)> = keys.into_iter().filter(|k| k.is_finite()).map(|k| (pos(k), number(&k))).collect();
    if ticks.is_empty() && lo.is_finite() {
        ticks = vec![(pos(lo), number(&lo)), (pos(hi), number(&hi))];
    }
    Parallel { name: s.name.clone(), at: xs.iter().map(|&x| pos(x)).collect(), ticks }
}

/// A line per finished trial through an axis per swept field and one for the accuracy; darker
/// is more accurate, the best is red.
fn parallel<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, study: &Study, done: &[&Entry]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let mut axes: Vec<Parallel> = study.space.iter().map(|p| parallel_axis(&scatter(p, done))).collect();
    let accs: Vec<f64> = done.iter().map(|e| e.val_acc()).collect();
    let acc_range = y_range(accs.iter().copied());
    let acc_pos = |a: f64| (a - acc_range.start) / (acc_range.end - acc_range.start);
    let acc_ticks = RangedCoordf64::from(acc_range.clone()).key_points(6).into_iter().map(|k| (acc_pos(k), format!("{k:.3}"))).collect();
    axes.push(Parallel { name: "val acc".into(), at: accs.iter().map(|&a| acc_pos(a)).collect(), ticks: acc_ticks });
    let n = axes.len();
    let mut chart = ChartBuilder::on(root)
        .caption("parallel coordinates: a line per trial (darker = higher validation accuracy, best in red)", (FAMILY, 18))
        .margin(20)
        .margin_left(70)
        .margin_right(70)
        .margin_bottom(40)
        .build_cartesian_2d(-0.02..(n as f64 - 1.0) + 0.02, -0.04..1.04)?;
    // Worst first, so that the best lines lie on top; the best trial last, in red.
    let mut order: Vec<usize> = (0..done.len()).collect();
    order.sort_by(|&a, &b| accs[a].total_cmp(&accs[b]));
    let best = done.iter().enumerate().max_by(|a, b| a.1.val_acc().total_cmp(&b.1.val_acc()).then(b.1.trial.index.cmp(&a.1.trial.index))).map(|(i, _)| i);
    for i in order {
        let line: Vec<(f64, f64)> = axes.iter().enumerate().map(|(k, a)| (k as f64, a.at[i])).collect();
        let (color, width) = if Some(i) == best { (BEST, 3) } else { (shade(acc_pos(accs[i])), 1) };
        chart.draw_series(std::iter::once(PathElement::new(line, color.stroke_width(width))))?;
    }
    // The axes and their labels over the lines, each label on an opaque patch as large as its
    // text, so that no line crosses it.
    for (k, a) in axes.iter().enumerate() {
        let x = k as f64;
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, 1.0)], AXIS.stroke_width(1))))?;
        let right = plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Right, plotters::style::text_anchor::VPos::Center);
        for (y, label) in &a.ticks {
            let style = TextStyle::from((FAMILY, 12).into_font()).color(&AXIS).pos(right);
            let w = root.estimate_text_size(label, &style).map_or(7 * label.chars().count() as i32, |(w, _)| w as i32);
            let tick = EmptyElement::at((x, *y))
                + Rectangle::new([(-w - 8, -8), (-2, 8)], WHITE.filled())
                + PathElement::new(vec![(-3, 0), (3, 0)], AXIS.stroke_width(1))
                + Text::new(label.clone(), (-5, 0), style);
            chart.draw_series(std::iter::once(tick))?;
        }
        let style = TextStyle::from((FAMILY, 14).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        chart.draw_series(std::iter::once(Text::new(a.name.clone(), (x, -0.04), style)))?;
    }
    Ok(())
}

/// A panel per swept field: validation accuracy against its values, darker for later trials.
fn slices<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, study: &Study, done: &[&Entry]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let fields = study.space.len().max(1);
    let cols = fields.clamp(1, 3);
    let rows = fields.div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    let last = done.iter().map(|e| e.trial.index).max().unwrap_or(0).max(1) as f64;
    let when: Vec<f64> = done.iter().map(|e| e.trial.index as f64 / last).collect();
    for (area, p) in areas.iter().zip(&study.space) {
        let caption = format!("slice: {} (darker = later trial)", p.name);
        panel(area, &scatter(p, done), &caption, (16, 12), |i| shade(0.25 + 0.75 * when[i]).filled(), false)?;
    }
    Ok(())
}

/// The trade-off chart of a study of several objectives.
pub const PARETO: &str = "pareto.png";

/// Colours of 1, 2, 3, 4 and more hidden layers.
const DEPTHS: [RGBColor; 5] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];

/// `pareto.png` and `.svg`: each finished trial's validation accuracy against its parameter
/// count (log axis), coloured by depth, the Pareto front (`front`) joined in red.
pub fn pareto(png: &Path, study: &Study, entries: &[Entry], front: &BTreeSet<usize>) -> Result<()> {
    let points: Vec<(f64, f64, usize, bool)> = entries
        .iter()
        .filter(|e| e.status == Status::Done && e.val_acc().is_finite())
        .map(|e| (super::objectives::params(&e.trial.config) as f64, e.val_acc(), e.trial.config.hidden.len(), front.contains(&e.trial.index)))
        .collect();
    let size = (900, 520);
    crate::plot::write_png(size, png, |root| trade_off(root, study, &points))?;
    let mut svg = String::new();
    crate::plot::paint(&SVGBackend::with_string(&mut svg, size).into_drawing_area(), |root| trade_off(root, study, &points))
        .map_err(|e| Error::failure_with("cannot draw the pareto chart", e.to_string()))?;
    let path = png.with_extension("svg");
    crate::fsutil::atomic_write(&path, svg.as_bytes()).map_err(|e| Error::io("cannot write", &path, e))
}

fn trade_off<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, study: &Study, points: &[(f64, f64, usize, bool)]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (lo, hi) = if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (1e3, 1e6) };
    let y = y_range(points.iter().map(|p| p.1));
    let names: Vec<&str> = study.objectives.iter().map(|o| o.name()).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(format!("trade-off: validation accuracy against parameters ({}), Pareto front in red", names.join(" vs ")), (FAMILY, 17))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), y)?;
    chart
        .configure_mesh()
        .x_desc("parameters (log scale)")
        .y_desc("val acc")
        .x_label_formatter(&|v: &f64| match *v {
            x if x >= 1e6 => format!("{}M", number(&(x / 1e6))),
            x if x >= 1e3 => format!("{}k", number(&(x / 1e3))),
            x => number(&x),
        })
        .y_label_formatter(&|v: &f64| format!("{v:.3}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let mut on: Vec<(f64, f64)> = points.iter().filter(|p| p.3).map(|p| (p.0, p.1)).collect();
    on.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart.draw_series(LineSeries::new(on.clone(), BEST.stroke_width(2)))?;
    for depth in 1..=DEPTHS.len() {
        let colour = DEPTHS[depth - 1];
        let these: Vec<(f64, f64)> = points.iter().filter(|p| p.2.clamp(1, DEPTHS.len()) == depth).map(|p| (p.0, p.1)).collect();
        if these.is_empty() {
            continue;
        }
        let label = if depth == DEPTHS.len() { format!("{depth}+ layers") } else { format!("{depth} layer{}", if depth > 1 { "s" } else { "" }) };
        chart
            .draw_series(these.into_iter().map(move |p| Circle::new(p, 5, colour.filled())))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
    }
    chart.draw_series(on.iter().map(|&p| Circle::new(p, 8, BEST.stroke_width(2))))?;
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).label_font((FAMILY, 13)).background_style(WHITE.mix(0.9)).border_style(AXIS).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::leaderboard::tests::{entries, ranked_grid, study};

    #[test]
    fn three_charts_as_png_and_svg_with_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let (s, e) = ranked_grid();
        draw_all(dir.path(), &s, &e).unwrap();
        for name in CHARTS {
            let img = image::open(dir.path().join(format!("{name}.png"))).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), size(name, &s), "{name}");
            let reds = img.pixels().filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80).count();
            let blues = img.pixels().filter(|p| p[2] > 90 && p[0] < 120).count();
            assert!(blues > 100, "{name}: trials drawn ({blues} blue pixels)");
            if name != "slices" {
                assert!(reds > 100, "{name}: the best in red ({reds})");
            }
            let svg = std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{name}");
        }
        let text = |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.svg"))).unwrap();
        for t in ["lr", "activation", "hidden", "val acc", "relu", "tanh", "4-4", "0.01", "1"] {
            assert!(text("parallel").contains(&format!(">\n{t}\n</text>")), "parallel: no axis text {t}");
        }
        assert!(text("slices").contains("slice: activation (darker = later trial)") && text("history").contains(">\ntrial\n</text>"));
    }

    #[test]
    fn no_line_crosses_a_parallel_axis_label() {
        let dir = tempfile::tempdir().unwrap();
        let (s, e) = ranked_grid();
        draw_all(dir.path(), &s, &e).unwrap();
        let png = image::open(dir.path().join("parallel.png")).unwrap().to_rgb8();
        let svg = std::fs::read_to_string(dir.path().join("parallel.svg")).unwrap();
        // The labels' patches: opaque white rectangles smaller than the picture (same geometry in both files).
        let attr = |r: &str, name: &str| -> u32 { r.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next()).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let patches: Vec<&str> = svg.split("<rect").skip(1).filter(|r| r.contains("opacity=\"1\" fill=\"#FFFFFF\"") && attr(r, "width") < 200).collect();
        let ticks = svg.matches("<text").count() - 1 - (s.space.len() + 1);
        assert!(ticks > 0 && patches.len() == ticks, "{} opaque label patches for {ticks} tick labels", patches.len());
        for r in patches {
            let (x, y, w, h) = (attr(r, "x"), attr(r, "y"), attr(r, "width"), attr(r, "height"));
            for py in y..y + h {
                for px in x..x + w {
                    let [r, g, b] = png.get_pixel(px, py).0.map(i32::from);
                    assert!(b <= r + 30 && !(r > 150 && g < 100), "a line crosses the label patch at {x},{y} {w}x{h}: pixel {px},{py} = {r},{g},{b}");
                }
            }
        }
    }

    #[test]
    fn the_best_so_far_only_rises_and_nothing_finished_still_draws() {
        let dir = tempfile::tempdir().unwrap();
        let s = study("[space]\nwidth = [64]\n");
        draw_all(dir.path(), &s, &entries(&s, &[f64::NAN], &[1])).unwrap();
        let s = study("method = \"random\"\ntrials = 1\n[space]\nlr = { log_uniform = [0.01, 1.0] }\n");
        draw_all(dir.path(), &s, &entries(&s, &[0.8], &[2])).unwrap();
        assert!(dir.path().join("parallel.svg").exists());
    }
}
