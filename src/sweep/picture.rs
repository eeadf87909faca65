//! `sweep.png`: validation accuracy against each swept field (a log axis for rates and sizes,
//! one column per value for words and layer lists), and every trial's validation curve with
//! the best one highlighted.

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use toml::Value;

use super::leaderboard::{Entry, Status};
use super::space::{Param, Study};
use super::trials::value_text;
use crate::error::Result;

const FAMILY: &str = crate::plot::FONT;
/// One panel's size in pixels.
const PANEL: (u32, u32) = (480, 340);
const TRIAL: RGBColor = RGBColor(31, 119, 180);
const BEST: RGBColor = RGBColor(214, 39, 40);
/// Fields drawn on a log axis (when all their values are positive).
const LOG_FIELDS: [&str; 5] = ["lr", "weight_decay", "init_std", "width", "batch_size"];

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// One scatter panel: a point per finished trial.
pub(super) struct Scatter {
    pub name: String,
    /// x and validation accuracy, a point per entry given; the best trial's point is `best`.
    pub points: Vec<(f64, f64)>,
    pub best: Option<(f64, f64)>,
    /// Names of the columns for a field of words or lists (x is then the column).
    pub labels: Option<Vec<String>>,
    pub log: bool,
}

/// Draw the picture of `entries` (ranked, best first) into `out`.
pub fn draw(out: &Path, study: &Study, entries: &[Entry]) -> Result<()> {
    let done: Vec<&Entry> = entries.iter().filter(|e| matches!(e.status, Status::Done | Status::Pruned) && e.val_acc().is_finite()).collect();
    let panels: Vec<Scatter> = study.space.iter().map(|p| scatter(p, &done)).collect();
    let n = panels.len() + 1;
    let cols = if n <= 4 { 2 } else { 3 }.min(n) as u32;
    let rows = (n as u32).div_ceil(cols);
    let size = (PANEL.0 * cols, PANEL.1 * rows);
    let y = y_range(done.iter().flat_map(|e| e.rows.iter().map(|r| r.test_acc)));
    crate::plot::write_png(size, out, |root| {
        let areas = root.split_evenly((rows as usize, cols as usize));
        for (area, p) in areas.iter().zip(&panels) {
            draw_scatter(area, p)?;
        }
        draw_curves(&areas[panels.len()], &done, y)
    })
}

pub(super) fn scatter(p: &Param, done: &[&Entry]) -> Scatter {
    let values: Vec<&Value> = done.iter().filter_map(|e| e.trial.params.iter().find(|(k, _)| *k == p.name).map(|(_, v)| v)).collect();
    let numeric: Option<Vec<f64>> = values.iter().map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))).collect();
    let (xs, labels) = match numeric {
        Some(xs) => (xs, None),
        None => {
            // Words and layer lists: one column per value, in order of first appearance.
            let mut names: Vec<String> = Vec::new();
            let xs = values
                .iter()
                .map(|v| {
                    let t = value_text(v);
                    let i = names.iter().position(|n| *n == t).unwrap_or_else(|| {
                        names.push(t);
                        names.len() - 1
                    });
                    i as f64
                })
                .collect();
            (xs, Some(names))
        }
    };
    let log = labels.is_none() && (LOG_FIELDS.contains(&p.name.as_str()) || p.domain.is_log()) && !xs.is_empty() && xs.iter().all(|&x| x > 0.0);
    let points: Vec<(f64, f64)> = xs.into_iter().zip(done.iter().map(|e| e.val_acc())).collect();
    let best = points.first().copied();
    Scatter { name: p.name.clone(), points, best, labels, log }
}

fn draw_scatter(area: &Area, p: &Scatter) -> Drawn {
    let caption = format!("validation accuracy vs {}", p.name);
    panel(area, p, &caption, (18, 13), |_| TRIAL.mix(0.6).filled(), true)
}

/// A scatter panel: validation accuracy against one swept field, point `i` in `style(i)`, the
/// best in red when `best`; `fonts`: the caption's and the labels' sizes.
pub(super) fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Scatter,
    caption: &str,
    fonts: (u32, u32),
    style: impl Fn(usize) -> ShapeStyle,
    best: bool,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let y = y_range(p.points.iter().map(|q| q.1));
    // The plot's width: the panel less its margins and the y labels' area (below).
    let px = f64::from(area.dim_in_pixel().0).max(100.0) - 2.0 * 12.0 - 52.0;
    let axis = Axis::for_points(p, px, fonts.1);
    let label = axis.formatter(p);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, fonts.0))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(axis, y)?;
    chart
        .configure_mesh()
        .x_desc(p.name.as_str())
        .y_desc("val acc")
        .x_label_formatter(&*label)
        .y_label_formatter(&|v: &f64| format!("{v:.3}"))
        .label_style((FAMILY, fonts.1))
        .axis_desc_style((FAMILY, fonts.1 + 1))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(p.points.iter().enumerate().map(|(i, &q)| Circle::new(q, 4, style(i))))?;
    if let Some(b) = p.best.filter(|_| best) {
        chart.draw_series(std::iter::once(Circle::new(b, 7, BEST.filled())))?;
    }
    Ok(())
}

/// An x axis, linear or logarithmic, with its ticks where we put them.
pub(super) struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    keys: Vec<f64>,
}

impl Axis {
    /// The axis of a panel's points: a column per word, else a (log) range around the values,
    /// `px` pixels wide, its tick labels in a font of `font` pixels.
    pub(super) fn for_points(p: &Scatter, px: f64, font: u32) -> Axis {
        if let Some(names) = &p.labels {
            let columns = (0..names.len()).map(|i| i as f64).collect();
            return Axis { lo: -0.5, hi: names.len().max(1) as f64 - 0.5, log: false, keys: columns };
        }
        let mut xs: Vec<f64> = p.points.iter().map(|q| q.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (lo, hi) = match (xs.first(), xs.last()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => (0.0, 1.0),
        };
        let (a, b) = match (p.log, lo < hi) {
            (true, true) => (lo / 1.3, hi * 1.3),
            (true, false) => (lo / 2.0, lo * 2.0),
            (false, true) => (lo - (hi - lo) * 0.08, hi + (hi - lo) * 0.08),
            (false, false) => (lo - lo.abs().max(1.0) * 0.5, lo + lo.abs().max(1.0) * 0.5),
        };
        let t = |x: f64| if p.log { x.ln() } else { x };
        let pos = |x: f64| (t(x) - t(a)) / (t(b) - t(a));
        // Labels side by side: half of each one's width apart, and a gap.
        let half = |x: f64| 0.3 * f64::from(font) * number(&x).chars().count() as f64;
        let clear = |x: f64, y: f64| (pos(y) - pos(x)) * px >= half(x) + half(y) + 8.0;
        let round = if p.log { log_ticks(a, b) } else { RangedCoordf64::from(a..b).key_points(6) };
        Axis { lo: a, hi: b, log: p.log, keys: ticks(&xs, round, clear) }
    }

    /// The tick labels: the column's word, or a short number.
    pub(super) fn formatter<'p>(&self, p: &'p Scatter) -> Box<dyn Fn(&f64) -> String + 'p> {
        match &p.labels {
            Some(names) => Box::new(move |v: &f64| names.get(v.round().max(0.0) as usize).cloned().unwrap_or_default()),
            None => Box::new(number),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = |x: f64| if self.log { x.ln() } else { x };
        let f = (t(*v) - t(self.lo)) / (t(self.hi) - t(self.lo));
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.keys.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

fn draw_curves(area: &Area, done: &[&Entry], y: Range<f64>) -> Drawn {
    let last = done.iter().map(|e| e.epochs()).max().unwrap_or(1).max(1);
    let x = if last == 1 { 0.5..1.5 } else { 1.0..last as f64 };
    let mut chart = ChartBuilder::on(area)
        .caption("validation accuracy per epoch (best in red)", (FAMILY, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("val acc")
        .x_labels(last.min(10))
        .x_label_formatter(&|v: &f64| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
        .y_label_formatter(&|v: &f64| format!("{v:.3}"))
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let curve = |e: &Entry| e.rows.iter().map(|r| (r.epoch as f64, r.test_acc)).filter(|q| q.1.is_finite()).collect::<Vec<_>>();
    for e in done.iter().skip(1) {
        chart.draw_series(LineSeries::new(curve(e), TRIAL.mix(0.35).stroke_width(1)))?;
        chart.draw_series(curve(e).into_iter().map(|q| Circle::new(q, 2, TRIAL.mix(0.35).filled())))?;
    }
    if let Some(b) = done.first() {
        chart.draw_series(LineSeries::new(curve(b), BEST.stroke_width(3)))?;
        chart.draw_series(curve(b).into_iter().map(|q| Circle::new(q, 4, BEST.filled())))?;
    }
    Ok(())
}

/// Where to put the ticks of an axis on which values `tried` were sampled: at those values when
/// they are few and their labels `clear` each other (a grid's), else at the `round` values whose
/// labels do (a random study's 0.0896 and 0.0927 would print over each other), else at as many
/// tried values as clear each other.
pub(super) fn ticks(tried: &[f64], round: Vec<f64>, clear: impl Fn(f64, f64) -> bool) -> Vec<f64> {
    let fits = |keys: &[f64]| keys.windows(2).all(|w| clear(w[0], w[1]));
    if tried.len() <= 10 && fits(tried) {
        return tried.to_vec();
    }
    let round = spaced(round, &clear);
    if round.len() >= 2 { round } else { spaced(tried.to_vec(), &clear) }
}

/// `keys` (ascending) from the first, each kept when it clears the last one kept.
fn spaced(keys: Vec<f64>, clear: &impl Fn(f64, f64) -> bool) -> Vec<f64> {
    let mut kept: Vec<f64> = Vec::new();
    for k in keys.into_iter().filter(|k| k.is_finite()) {
        if kept.last().is_none_or(|&last| clear(last, k)) {
            kept.push(k);
        }
    }
    kept
}

/// 1, 2 and 5 times the powers of ten within [a, b] (only the powers when that is too many).
pub(super) fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    let decades = a.log10().floor() as i32..=b.log10().ceil() as i32;
    let at = |ms: &[f64]| -> Vec<f64> {
        decades.clone().flat_map(|k| ms.iter().map(move |m| m * 10f64.powi(k))).filter(|v| (a..=b).contains(v)).collect()
    };
    let dense = at(&[1.0, 2.0, 5.0]);
    if dense.len() <= 8 { dense } else { at(&[1.0]) }
}

/// A tick value in three significant digits, without trailing zeros: 0.01, 0.316, 256.
pub(super) fn number(v: &f64) -> String {
    if *v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// The accuracies' span, padded; a fixed span when there is nothing to show.
pub(super) fn y_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.08).max(0.005);
    (lo - pad).max(0.0)..(hi + pad).min(1.0).max(lo + pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::leaderboard::tests::{entries, ranked_grid, study};

    fn reds(img: &image::RgbImage) -> usize {
        img.pixels().filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80).count()
    }

    #[test]
    fn one_panel_per_field_and_the_curves_with_the_best_in_red() {
        let dir = tempfile::tempdir().unwrap();
        let (s, e) = ranked_grid();
        let p = dir.path().join("sweep.png");
        draw(&p, &s, &e).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (2 * PANEL.0, 2 * PANEL.1), "three fields and the curves: 2 x 2 panels");
        assert!(reds(&img) > 200, "the best trial's points and curve are red");
        let blues = img.pixels().filter(|p| p[2] > 150 && p[0] < 150).count();
        assert!(blues > 100, "the other trials are drawn");
    }

    #[test]
    fn a_single_trial_and_all_diverged_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let s = study("[space]\nwidth = [64]\n");
        let p = dir.path().join("one.png");
        draw(&p, &s, &entries(&s, &[0.8], &[1])).unwrap();
        assert_eq!(image::open(&p).unwrap().to_rgb8().dimensions(), (2 * PANEL.0, PANEL.1));
        draw(&p, &s, &entries(&s, &[f64::NAN], &[1])).unwrap();
        let e = draw(&dir.path().join("no/such/dir.png"), &s, &entries(&s, &[0.8], &[1])).unwrap_err();
        assert!(e.to_string().contains("no/such/dir.png"), "{e}");
    }

    #[test]
    fn close_sampled_values_get_round_ticks_whose_labels_do_not_overlap() {
        // A random study's rates (the 0.0614 and 0.0739 printed as "0.06140739").
        let xs = [0.0614, 0.0739, 0.102, 0.17, 0.261, 0.489];
        let p = Scatter { name: "lr".into(), points: xs.iter().map(|&x| (x, 0.8)).collect(), best: None, labels: None, log: true };
        let axis = Axis::for_points(&p, 324.0, 12);
        let shown: Vec<String> = axis.keys.iter().map(number).collect();
        assert_eq!(shown, ["0.05", "0.1", "0.2", "0.5"]);
        // A grid's well-spaced values keep their ticks; so do close ones on a wide axis.
        let grid = Scatter { points: [0.01, 0.1, 1.0].iter().map(|&x| (x, 0.8)).collect(), ..p };
        assert_eq!(Axis::for_points(&grid, 324.0, 12).keys, [0.01, 0.1, 1.0]);
        // No two labels of any axis overlap: pixel gap >= half of each label's width.
        for (xs, log) in [(vec![0.0896, 0.0927, 0.2, 0.455, 0.47], true), (vec![0.1, 0.11, 0.12, 0.5], false), (vec![0.3; 3], false)] {
            let p = Scatter { name: "x".into(), points: xs.iter().map(|&x| (x, 0.8)).collect(), best: None, labels: None, log };
            let a = Axis::for_points(&p, 324.0, 12);
            let at = |x: f64| a.map(&x, (0, 324));
            for w in a.keys.windows(2) {
                let need = 0.3 * 12.0 * (number(&w[0]).len() + number(&w[1]).len()) as f64;
                assert!(f64::from(at(w[1]) - at(w[0])) >= need, "{xs:?}: {} and {} overlap ({:?})", w[0], w[1], a.keys);
            }
            assert!(!a.keys.is_empty(), "{xs:?}");
        }
    }

    #[test]
    fn log_ticks_are_round() {
        let shown = |a, b| log_ticks(a, b).iter().map(number).collect::<Vec<_>>().join(" ");
        assert_eq!(shown(12.0, 1300.0), "20 50 100 200 500 1000");
        assert_eq!(shown(0.0077, 1.3), "0.01 0.02 0.05 0.1 0.2 0.5 1");
        assert_eq!(shown(0.0009, 11.0), "0.001 0.01 0.1 1 10");
    }

    #[test]
    fn tick_numbers_are_short() {
        assert_eq!(number(&0.01), "0.01");
        assert_eq!(number(&0.31622), "0.316");
        assert_eq!(number(&256.0), "256");
        assert_eq!(number(&1000.0), "1000");
        let r = y_range([0.8, 0.9, f64::NAN].into_iter());
        assert!((r.start - 0.792).abs() < 1e-9 && (r.end - 0.908).abs() < 1e-9, "{r:?}");
    }
}
