//! Training curves: one run's loss and accuracies like the book's figure, or the test accuracy
//! of several runs side by side. One drawing function serves the PNG and the SVG.

use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::DefaultFormatting;
use plotters::coord::types::{RangedCoordf64, RangedCoordu64};
use plotters::prelude::*;

use super::{BLUE, BOLD_GRID, DrawResult, FONT, LIGHT_GRID, fit_text, padded_range, segments, tick_formatter, usable};
use crate::error::{Error, Result};
use crate::run::metrics::{EpochRow, HeldOut};

/// The fixed size of curve pictures.
pub const CURVES_SIZE: (u32, u32) = (900, 500);

/// matplotlib's tab10: the colours of the overlay lines, cycled past ten runs.
const TAB10: [u32; 10] =
    [0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf];
const GREEN: RGBColor = RGBColor(44, 160, 44);
const MAGENTA: RGBColor = RGBColor(191, 0, 191);
const LEGEND_BORDER: RGBColor = RGBColor(160, 160, 160);
/// The coordinates of the legend's chart (no data is drawn there).
type Key = Cartesian2d<RangedCoordf64, RangedCoordf64>;
/// Lines longer than this mark only every k-th point (and the last).
const MAX_MARKERS: usize = 40;

/// Training curves of one run, like the book's figure: train loss, train acc, test acc against
/// epoch, one chart, legend. With several runs: one line of test accuracy per run, labelled
/// with the run's name (so experiments can be compared).
/// `held` names the held-out figures: test (a run) or val (a sweep's trial).
pub fn draw_curves(runs: &[(String, Vec<EpochRow>)], held: HeldOut, out: &Path) -> Result<()> {
    draw_overlay(runs, &vec![held; runs.len()], out)
}

/// [`draw_curves`] where each run says what its held-out figures measure (`held[i]`): a test set
/// or a sweep trial's validation split. Runs of both kinds are labelled so in the legend.
pub fn draw_overlay(runs: &[(String, Vec<EpochRow>)], held: &[HeldOut], out: &Path) -> Result<()> {
    let chart = Chart::new(runs, held, &out.display())?;
    super::write_png(CURVES_SIZE, out, |root| chart.draw(root))
}

/// The chart of [`draw_curves`] as an SVG document (text stays text), for the report page.
pub fn curves_svg(runs: &[(String, Vec<EpochRow>)], held: HeldOut) -> Result<String> {
    let chart = Chart::new(runs, &vec![held; runs.len()], &"the SVG chart")?;
    let mut svg = String::new();
    super::paint(&SVGBackend::with_string(&mut svg, CURVES_SIZE).into_drawing_area(), |root| chart.draw(root))
        .map_err(|e| Error::failure_with("cannot draw the SVG chart of the curves", e.to_string()))?;
    Ok(svg)
}

/// The colour of overlay line `i`.
fn palette(i: usize) -> RGBColor {
    let c = TAB10[i % TAB10.len()];
    RGBColor((c >> 16) as u8, (c >> 8) as u8, c as u8)
}

/// Filled marker `kind` (circle, triangle, square, diamond, then again) centred `dx` pixels right
/// of the point it is composed with (`EmptyElement::at(p) + marker(..)`).
fn marker<'e, DB: DrawingBackend>(kind: usize, color: RGBColor, dx: i32) -> DynElement<'e, DB, (i32, i32)> {
    let fill = color.filled();
    match kind % 4 {
        0 => Circle::new((dx, 0), 4, fill).into_dyn(),
        1 => TriangleMarker::new((dx, 0), 6, fill).into_dyn(),
        2 => Rectangle::new([(dx - 4, -4), (dx + 4, 4)], fill).into_dyn(),
        _ => Polygon::new(vec![(dx, -6), (dx + 6, 0), (dx, 6), (dx - 6, 0)], fill).into_dyn(),
    }
}

struct Series {
    label: String,
    color: RGBColor,
    marker: usize,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn new(label: &str, color: RGBColor, marker: usize, rows: &[EpochRow], y: fn(&EpochRow) -> f64) -> Self {
        let points = rows.iter().map(|r| (r.epoch as f64, y(r))).collect();
        Series { label: label.to_string(), color, marker, points }
    }

    /// The usable points that get a marker: all of them, up to [`MAX_MARKERS`].
    fn marked(&self) -> Vec<(f64, f64)> {
        let finite: Vec<(f64, f64)> = self.points.iter().copied().filter(usable).collect();
        let every = finite.len().div_ceil(MAX_MARKERS).max(1);
        let n = finite.len();
        finite.into_iter().enumerate().filter(|(i, _)| i % every == 0 || i + 1 == n).map(|(_, p)| p).collect()
    }

    fn draw<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
        &self,
        chart: &mut ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        for seg in segments(&self.points) {
            chart.draw_series(LineSeries::new(seg.iter().copied(), self.color.stroke_width(2)))?;
        }
        let (m, c) = (self.marker, self.color);
        chart.draw_series(self.marked().into_iter().map(|p| EmptyElement::at(p) + marker(m, c, 0)))?;
        Ok(())
    }

    /// The series' entry in the legend chart `key`: an empty series there, with this label and a
    /// sample of the line with the marker on its middle.
    fn key<'a, DB: DrawingBackend + 'a>(&self, key: &mut ChartContext<'a, DB, Key>, label: String) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (m, c, line) = (self.marker, self.color, self.color.stroke_width(2));
        key.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(label)
            .legend(move |at| EmptyElement::at(at) + PathElement::new(vec![(0, 0), (32, 0)], line) + marker(m, c, 16));
        Ok(())
    }
}

/// The series of a chart, its caption and the name of its y axis.
struct Chart {
    series: Vec<Series>,
    caption: String,
    y_desc: &'static str,
}

impl Chart {
    /// The chart of `runs`; `target` names the output in error messages.
    fn new(runs: &[(String, Vec<EpochRow>)], helds: &[HeldOut], target: &dyn Display) -> Result<Self> {
        let held = helds.first().copied().unwrap_or_default();
        let mixed = helds.iter().any(|h| *h != held);
        if runs.is_empty() {
            return Err(Error::input(format!(
                "no runs to plot into {target}; give at least one run with a finished epoch"
            )));
        }
        if let Some((name, _)) = runs.iter().find(|(_, rows)| rows.is_empty()) {
            return Err(Error::input(format!(
                "run `{name}` has no finished epoch to plot; train it for at least one epoch first"
            )));
        }
        if let [(name, rows)] = runs {
            return Ok(Chart {
                series: vec![
                    Series::new("train loss", BLUE, 0, rows, |r| r.train_loss),
                    Series::new("train acc", MAGENTA, 1, rows, |r| r.train_acc),
                    Series::new(&format!("{} acc", held.short()), GREEN, 2, rows, |r| r.test_acc),
                ],
                caption: name.trim().to_string(),
                y_desc: "loss / accuracy",
            });
        }
        let label = |name: &str, h: HeldOut| if mixed { format!("{name} ({})", h.short()) } else { name.to_string() };
        let series = runs
            .iter()
            .zip(helds.iter().copied().chain(std::iter::repeat(held)))
            .enumerate()
            .map(|(i, ((name, rows), h))| Series::new(&label(name, h), palette(i), i, rows, |r| r.test_acc));
        let (what, y_desc) = match (mixed, held) {
            (true, _) => ("test and validation".to_string(), "test / val acc"),
            (false, HeldOut::Test) => (held.name().to_string(), "test acc"),
            (false, HeldOut::Validation) => (held.name().to_string(), "val acc"),
        };
        Ok(Chart { series: series.collect(), caption: format!("{what} accuracy of {} runs", runs.len()), y_desc })
    }

    /// Epochs from the first (at most 1) to the last usable one; values with some margin.
    fn axes(&self) -> (impl Ranged<ValueType = f64, FormatOption = DefaultFormatting>, Range<f64>) {
        let points = || self.series.iter().flat_map(|s| &s.points).filter(|p| usable(p));
        let first = points().map(|p| p.0 as u64).min().unwrap_or(1).min(1);
        let last = points().map(|p| p.0 as u64).max().unwrap_or(1);
        (epoch_axis(first, last), padded_range(points().map(|p| p.1), 0.02, true))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, legend) = (root.dim_in_pixel().0, Legend::fit(root, &self.series)?);
        let (plot_area, key_area) = root.split_horizontally(w - legend.width);
        let mut builder = ChartBuilder::on(&plot_area);
        builder.margin(12).margin_right(4).x_label_area_size(52).y_label_area_size(70);
        let caption_font = TextStyle::from((FONT, 22).into_font());
        let (caption, _) = fit_text(root, &self.caption, &caption_font, w - legend.width - 30)?;
        if !caption.is_empty() {
            builder.caption(caption, caption_font);
        }
        let (x, y) = self.axes();
        let y_fmt = tick_formatter(&y, 10);
        let mut chart = builder.build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.y_desc)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .x_label_formatter(&|v| format!("{}", v.round() as i64))
            .y_labels(10)
            .y_label_formatter(&y_fmt)
            .max_light_lines(1)
            .light_line_style(LIGHT_GRID)
            .bold_line_style(BOLD_GRID)
            .draw()?;
        for s in &self.series {
            s.draw(&mut chart)?;
        }
        // The legend: plotters' series labels on a chart of its own right of the plot (series
        // labels stay inside their chart), so it never hides a line. Its top is the plot's.
        let top = chart.plotting_area().get_base_pixel().1 - root.get_base_pixel().1;
        let mut key = ChartBuilder::on(&key_area).margin_top(top - 5).build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        for (s, label) in self.series.iter().zip(legend.labels) {
            s.key(&mut key, label)?;
        }
        key.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(legend.font)
            .legend_area_size(40)
            .margin(8)
            .background_style(WHITE)
            .border_style(LEGEND_BORDER)
            .draw()?;
        Ok(())
    }
}

/// The legend's font, its (shortened) labels and the width kept for it right of the chart.
struct Legend {
    font: TextStyle<'static>,
    labels: Vec<String>,
    width: u32,
}

impl Legend {
    fn fit<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &[Series]) -> DrawResult<Self>
    where
        DB::ErrorType: 'static,
    {
        let (w, h) = root.dim_in_pixel();
        // Lines are 1.25 font sizes apart; smaller text when many runs would not fit the height.
        let size = ((h as f64 - 80.0) / series.len().max(1) as f64 / 1.25).clamp(10.0, 17.0);
        let font = TextStyle::from((FONT, size.floor()).into_font());
        let max_w = w / 3;
        let fitted: Vec<(String, u32)> =
            series.iter().map(|s| fit_text(root, &s.label, &font, max_w - 70)).collect::<DrawResult<_>>()?;
        let width = (fitted.iter().map(|f| f.1).max().unwrap_or(0) + 70).clamp(150, max_w);
        let labels = fitted.into_iter().map(|f| f.0).collect();
        Ok(Legend { font, labels, width })
    }
}

/// The x axis: epochs with a little room either side, integer ticks from the first epoch on
/// (plotters' tick steps of 1, 2, 5, 10, ... epochs, at most 12 ticks).
fn epoch_axis(first: u64, last: u64) -> impl Ranged<ValueType = f64, FormatOption = DefaultFormatting> {
    let nice = RangedCoordu64::from(first..last).key_points(12);
    let step = match nice[..] {
        [a, b, ..] => b - a,
        _ => 1,
    };
    let rest = nice.into_iter().filter(|&t| t > first && (t - first) * 2 >= step);
    let ticks = std::iter::once(first).chain(rest).map(|t| t as f64).collect();
    let pad = ((last - first) as f64 * 0.03).max(0.3);
    let range = first as f64 - pad..last as f64 + pad;
    // A "partial" axis over the whole range, only for plotters' default label formatting: the
    // mesh needs one and f64 ranges lack it (x_label_formatter then writes the labels).
    range.clone().with_key_points(ticks).partial_axis(range)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use plotters::coord::ranged1d::BoldPoints;

    #[test]
    fn curves_of_one_run_have_the_size_and_all_three_line_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        draw_curves(&[("run-1".into(), book_run())], HeldOut::Test, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in [BLUE, MAGENTA, GREEN] {
            assert!(count_colour(&img, c) > 300, "colour {c:?}: {}", count_colour(&img, c));
        }
        let ink = count(&img, |p| p.0 != [255, 255, 255]);
        assert!(ink > 10_000, "picture is nearly blank: {ink} non-white pixels");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp files left");
    }

    #[test]
    fn an_overlay_of_test_and_validation_says_which_is_which() {
        let rows = vec![EpochRow { epoch: 1, train_loss: 0.5, train_acc: 0.8, test_loss: 0.5, test_acc: 0.8, seconds: 1.0 }];
        let runs = [("run".to_string(), rows.clone()), ("trials/000".to_string(), rows)];
        let c = Chart::new(&runs, &[HeldOut::Test, HeldOut::Validation], &"x").unwrap();
        assert_eq!((c.caption.as_str(), c.y_desc), ("test and validation accuracy of 2 runs", "test / val acc"));
        assert_eq!(c.series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(), ["run (test)", "trials/000 (val)"]);
        let c = Chart::new(&runs, &[HeldOut::Validation; 2], &"x").unwrap();
        assert_eq!((c.caption.as_str(), c.series[0].label.as_str()), ("validation accuracy of 2 runs", "run"));
    }

    #[test]
    fn a_single_epoch_still_draws_its_points() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one.png");
        draw_curves(&[("r".into(), rows(&[0.9], &[0.7], &[0.75]))], HeldOut::Test, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in [BLUE, MAGENTA, GREEN] {
            // One marker on the chart plus the legend's.
            assert!(count_colour(&img, c) > 60, "colour {c:?}: {}", count_colour(&img, c));
        }
    }

    #[test]
    fn several_runs_draw_one_coloured_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("overlay.png");
        let runs: Vec<(String, Vec<EpochRow>)> = (0..3)
            .map(|k| {
                let mut r = book_run();
                r.iter_mut().for_each(|row| row.test_acc -= 0.03 * k as f64);
                (format!("lr-0.{}", k + 1), r)
            })
            .collect();
        draw_curves(&runs, HeldOut::Test, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in (0..3).map(palette) {
            assert!(count_colour(&img, c) > 300, "colour {c:?}: {}", count_colour(&img, c));
        }
        assert_eq!(palette(2), GREEN);
        assert!(count_colour(&img, palette(3)) == 0, "only three runs, so no fourth colour");
    }

    #[test]
    fn non_finite_values_and_long_runs_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.png");
        let mut r = book_run();
        r[4].train_loss = f64::NAN;
        r[5].train_loss = f64::INFINITY;
        draw_curves(&[("nan".into(), r)], HeldOut::Test, &p).unwrap();
        assert_eq!(open(&p).dimensions(), CURVES_SIZE);

        let mut r = book_run();
        r[2].train_loss = 1e30;
        r[3].epoch = usize::MAX / 3;
        draw_curves(&[("huge".into(), r)], HeldOut::Test, &p).unwrap();
        let img = open(&p);
        assert!(count_colour(&img, BLUE) > 100, "the usable points are drawn");

        let name = "a very long run name that cannot possibly fit into the legend box";
        draw_curves(&[(name.into(), long_run())], HeldOut::Test, &p).unwrap();
        assert_eq!(open(&p).dimensions(), CURVES_SIZE);
    }

    #[test]
    fn epoch_axis_ticks_are_integers_from_the_first_epoch() {
        let ticks = |first, last| epoch_axis(first, last).key_points(BoldPoints(100));
        assert_eq!(ticks(1, 10), (1..=10).map(|e| e as f64).collect::<Vec<_>>());
        assert_eq!(ticks(1, 1), [1.0]);
        let t = ticks(1, 100);
        assert_eq!(t[0], 1.0);
        assert!(t.len() <= 12 && t.iter().all(|v| v.fract() == 0.0), "{t:?}");
        assert!(t.windows(2).all(|w| w[1] - w[0] >= 5.0), "none too close to the first: {t:?}");
        let r = epoch_axis(1, 10).range();
        assert!(r.start < 1.0 && r.end > 10.0);
    }

    #[test]
    fn empty_curve_inputs_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        assert!(matches!(draw_curves(&[], HeldOut::Test, &p), Err(Error::Input(_))));
        let e = draw_curves(&[("a".into(), book_run()), ("empty".into(), vec![])], HeldOut::Test, &p).unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(e.to_string().contains("empty") && !e.to_string().contains('\n'), "{e}");
        assert!(!p.exists());
        assert!(matches!(curves_svg(&[], HeldOut::Test), Err(Error::Input(_))));
    }

    #[test]
    fn the_svg_keeps_text_as_text_and_draws_every_line() {
        let svg = curves_svg(&[("book-mlp".into(), book_run())], HeldOut::Test).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..80]);
        assert!(svg.contains(r#"width="900" height="500""#));
        let has_text = |svg: &str, t: &str| svg.contains(&format!(">\n{t}\n</text>"));
        for t in ["book-mlp", "train loss", "train acc", "test acc", "epoch", "loss / accuracy"] {
            assert!(has_text(&svg, t), "no text {t}");
        }
        for c in [BLUE, MAGENTA, GREEN] {
            let hex = format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
            assert!(svg.contains(&hex), "no colour {hex}");
        }
        let runs: Vec<_> = (0..3).map(|k| (format!("run-{k}"), book_run())).collect();
        let svg = curves_svg(&runs, HeldOut::Test).unwrap();
        assert!(has_text(&svg, "test accuracy of 3 runs") && has_text(&svg, "run-2"));
    }

    /// Renders the sample curves; with PLOT_SAMPLES_DIR set they are kept there for a look.
    #[test]
    fn sample_curves() {
        let (_tmp, dir) = samples_dir();
        draw_curves(&[("book-mlp".into(), book_run())], HeldOut::Test, &dir.join("curves.png")).unwrap();
        let svg = curves_svg(&[("book-mlp".into(), book_run())], HeldOut::Test).unwrap();
        std::fs::write(dir.join("curves.svg"), svg).unwrap();
        let runs: Vec<(String, Vec<EpochRow>)> = ["lr 0.1", "lr 0.05", "hidden 512, dropout 0.2"]
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let mut r = book_run();
                for (i, row) in r.iter_mut().enumerate() {
                    row.test_acc += 0.012 * k as f64 * (i as f64 / 10.0) - 0.02 * k as f64;
                }
                (name.to_string(), r)
            })
            .collect();
        draw_curves(&runs, HeldOut::Test, &dir.join("curves-overlay.png")).unwrap();
        let crowd: Vec<_> = (0..16).map(|k| (format!("run-{k:02}"), book_run())).collect();
        draw_curves(&crowd, HeldOut::Test, &dir.join("curves-16-runs.png")).unwrap();
        let one = rows(&[0.9], &[0.7], &[0.75]);
        draw_curves(&[("one-epoch".into(), one)], HeldOut::Test, &dir.join("curves-single-epoch.png")).unwrap();
        let name = "a very long run name that cannot possibly fit into the legend box".to_string();
        let long = long_run();
        let both = [(name, long.clone()), ("short".into(), long[..50].to_vec())];
        draw_curves(&both, HeldOut::Test, &dir.join("curves-long.png")).unwrap();
    }
}
