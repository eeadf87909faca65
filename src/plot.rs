//! The pictures users look at: training curves, activation functions and a grid of test
//! predictions, drawn with plotters into memory, encoded as PNG and written atomically.
//!
//! Text uses the bundled DejaVu Sans (registered once as "sans-serif"), so nothing depends on
//! the fonts installed on the machine.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};
use crate::metrics::EpochRow;

/// The fixed size of curve pictures.
pub const CURVES_SIZE: (u32, u32) = (900, 500);
/// The fixed size of activation pictures.
pub const ACTIVATIONS_SIZE: (u32, u32) = (900, 900);
/// The most activations [`draw_activations`] accepts (rows share the fixed picture height).
pub const MAX_ACTIVATIONS: usize = 8;
/// The most tiles [`draw_predictions`] accepts (64 rows of 8; the PNG is then about 1.3k x 13k px).
pub const MAX_PREDICTION_TILES: usize = 512;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

/// Side of a Fashion-MNIST image.
const IMG: usize = 28;
/// Enlargement of prediction images (nearest neighbour).
const SCALE: usize = 5;
const TILES_PER_ROW: usize = 8;
const TILE_PAD: u32 = 12;
const TILE_W: u32 = (IMG * SCALE) as u32 + 2 * TILE_PAD;
const TITLE_H: u32 = 46;
const TILE_H: u32 = TITLE_H + (IMG * SCALE) as u32 + TILE_PAD;
const GRID_MARGIN: u32 = 8;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const MAGENTA: RGBColor = RGBColor(191, 0, 191);
const WRONG_RED: RGBColor = RGBColor(210, 0, 0);
/// Colours of the overlay lines (matplotlib's tab10), cycled past ten runs.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Training curves of one run, like the book's figure: train loss, train acc, test acc against
/// epoch, one chart, legend. With several runs: one line of test accuracy per run, labelled
/// with the run's name (so experiments can be compared).
pub fn draw_curves(runs: &[(String, Vec<EpochRow>)], out: &Path) -> Result<()> {
    if runs.is_empty() {
        return Err(Error::input(format!(
            "no runs to plot into {}; give at least one run with a finished epoch",
            out.display()
        )));
    }
    if let Some((name, _)) = runs.iter().find(|(_, rows)| rows.is_empty()) {
        return Err(Error::input(format!(
            "run `{name}` has no finished epoch to plot; train it for at least one epoch first"
        )));
    }

    let series: Vec<Series> = if runs.len() == 1 {
        let rows = &runs[0].1;
        let pick = |f: fn(&EpochRow) -> f64| rows.iter().map(|r| (r.epoch as f64, f(r))).collect();
        vec![
            Series {
                label: "train loss".into(),
                color: BLUE,
                marker: Marker::Circle,
                points: pick(|r| r.train_loss),
            },
            Series {
                label: "train acc".into(),
                color: MAGENTA,
                marker: Marker::Triangle,
                points: pick(|r| r.train_acc),
            },
            Series {
                label: "test acc".into(),
                color: GREEN,
                marker: Marker::Square,
                points: pick(|r| r.test_acc),
            },
        ]
    } else {
        runs.iter()
            .enumerate()
            .map(|(i, (name, rows))| Series {
                label: name.clone(),
                color: PALETTE[i % PALETTE.len()],
                marker: Marker::ALL[i % Marker::ALL.len()],
                points: rows.iter().map(|r| (r.epoch as f64, r.test_acc)).collect(),
            })
            .collect()
    };
    let (caption, y_desc) = if runs.len() == 1 {
        (runs[0].0.trim().to_string(), "loss / accuracy")
    } else {
        (format!("test accuracy of {} runs", runs.len()), "test acc")
    };

    let png = render(CURVES_SIZE, out, |root| {
        draw_curves_chart(root, &series, &caption, y_desc)
    })?;
    write_png(out, &png)
}

/// One activation function and its derivative sampled on a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationCurve {
    pub name: String,
    pub xs: Vec<f32>,
    pub ys: Vec<f32>,
    pub grads: Vec<f32>,
}

/// One row per activation: the function on the left, its derivative on the right
/// ("relu(x)", "grad of relu").
pub fn draw_activations(curves: &[ActivationCurve], out: &Path) -> Result<()> {
    if curves.is_empty() {
        return Err(Error::input(format!(
            "no activation functions to plot into {}",
            out.display()
        )));
    }
    if curves.len() > MAX_ACTIVATIONS {
        return Err(Error::input(format!(
            "{} activation functions are too many for one picture (at most {MAX_ACTIVATIONS})",
            curves.len()
        )));
    }
    for c in curves {
        if c.xs.is_empty() || c.xs.len() != c.ys.len() || c.xs.len() != c.grads.len() {
            return Err(Error::input(format!(
                "activation `{}` has {} xs, {} values and {} gradients; they must be equally many and not zero",
                c.name,
                c.xs.len(),
                c.ys.len(),
                c.grads.len()
            )));
        }
    }
    let png = render(ACTIVATIONS_SIZE, out, |root| {
        let cells = root.split_evenly((curves.len(), 2));
        let cell_h = ACTIVATIONS_SIZE.1 / curves.len() as u32;
        for (c, pair) in curves.iter().zip(cells.chunks(2)) {
            let xs = || c.xs.iter().map(|&x| x as f64);
            let f: Vec<(f64, f64)> = xs().zip(c.ys.iter().map(|&y| y as f64)).collect();
            let g: Vec<(f64, f64)> = xs().zip(c.grads.iter().map(|&y| y as f64)).collect();
            draw_function_cell(&pair[0], &f, &format!("{}(x)", c.name), BLUE, cell_h)?;
            draw_function_cell(&pair[1], &g, &format!("grad of {}", c.name), ORANGE, cell_h)?;
        }
        Ok(())
    })?;
    write_png(out, &png)
}

/// One test image with its labels, like the book's predict_ch3.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionTile {
    /// 28*28 row-major grayscale, 0 = black.
    pub pixels: Vec<u8>,
    pub true_label: usize,
    pub predicted: usize,
}

/// A grid of tiles (up to 8 a row), each image enlarged 5x (nearest neighbour), titled with the
/// true and the predicted class name on two lines; wrong predictions' titles and frames in red.
/// Returns the (width, height) of the PNG.
pub fn draw_predictions(tiles: &[PredictionTile], out: &Path) -> Result<(u32, u32)> {
    if tiles.is_empty() {
        return Err(Error::input(format!(
            "no predictions to draw into {}",
            out.display()
        )));
    }
    if tiles.len() > MAX_PREDICTION_TILES {
        return Err(Error::input(format!(
            "{} predictions are too many for one picture (at most {MAX_PREDICTION_TILES}); ask for fewer",
            tiles.len()
        )));
    }
    let names = &crate::data::CLASS_NAMES;
    for (i, t) in tiles.iter().enumerate() {
        if t.pixels.len() != IMG * IMG {
            return Err(Error::input(format!(
                "prediction {i} has {} pixels; expected {} (a 28x28 image)",
                t.pixels.len(),
                IMG * IMG
            )));
        }
        if t.true_label >= names.len() || t.predicted >= names.len() {
            return Err(Error::input(format!(
                "prediction {i} has label {} / prediction {}; classes are 0..{}",
                t.true_label,
                t.predicted,
                names.len() - 1
            )));
        }
    }

    let cols = tiles.len().min(TILES_PER_ROW) as u32;
    let rows = tiles.len().div_ceil(TILES_PER_ROW) as u32;
    let size = (
        cols * TILE_W + 2 * GRID_MARGIN,
        rows * TILE_H + 2 * GRID_MARGIN,
    );
    let origin = |i: usize| {
        let (r, c) = ((i / TILES_PER_ROW) as u32, (i % TILES_PER_ROW) as u32);
        (
            (GRID_MARGIN + c * TILE_W) as i32,
            (GRID_MARGIN + r * TILE_H) as i32,
        )
    };
    let img_side = (IMG * SCALE) as i32;

    let png = render_with(
        size,
        out,
        |root| {
            let titles: Vec<[String; 2]> = tiles
                .iter()
                .map(|t| {
                    [
                        format!("true: {}", names[t.true_label]),
                        format!("pred: {}", names[t.predicted]),
                    ]
                })
                .collect();
            let font_size = fitting_font_size(root, titles.iter().flatten(), TILE_W - 6, 16)?;
            for (i, (t, title)) in tiles.iter().zip(&titles).enumerate() {
                let (x0, y0) = origin(i);
                let wrong = t.true_label != t.predicted;
                let color = if wrong { WRONG_RED } else { BLACK };
                let style = TextStyle::from((FONT, font_size).into_font())
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Top));
                let cx = x0 + TILE_W as i32 / 2;
                let line_h = (TITLE_H as i32 - 6) / 2;
                root.draw_text(&title[0], &style, (cx, y0 + 4))?;
                root.draw_text(&title[1], &style, (cx, y0 + 4 + line_h))?;
                if wrong {
                    let (ix, iy) = (x0 + TILE_PAD as i32, y0 + TITLE_H as i32);
                    for k in 1..=3 {
                        root.draw(&Rectangle::new(
                            [
                                (ix - k, iy - k),
                                (ix + img_side - 1 + k, iy + img_side - 1 + k),
                            ],
                            color.stroke_width(1),
                        ))?;
                    }
                }
            }
            Ok(())
        },
        |buf| {
            // The images themselves: copied straight into the RGB buffer, enlarged SCALE times.
            let stride = size.0 as usize * 3;
            for (i, t) in tiles.iter().enumerate() {
                let (x0, y0) = origin(i);
                let (ix, iy) = (
                    x0 as usize + TILE_PAD as usize,
                    y0 as usize + TITLE_H as usize,
                );
                for y in 0..IMG * SCALE {
                    let row = &t.pixels[(y / SCALE) * IMG..(y / SCALE + 1) * IMG];
                    let start = (iy + y) * stride + ix * 3;
                    for (x, px) in buf[start..start + IMG * SCALE * 3]
                        .chunks_exact_mut(3)
                        .enumerate()
                    {
                        px.fill(row[x / SCALE]);
                    }
                }
            }
        },
    )?;
    write_png(out, &png)?;
    Ok(size)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

impl Marker {
    const ALL: [Marker; 4] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Diamond,
    ];
}

struct Series {
    label: String,
    color: RGBColor,
    marker: Marker,
    points: Vec<(f64, f64)>,
}

impl Series {
    /// Runs of consecutive finite points (a NaN loss breaks the line instead of bending it to a corner).
    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut segs: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut cur = Vec::new();
        for &p in &self.points {
            if usable(&p) {
                cur.push(p);
            } else if !cur.is_empty() {
                segs.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            segs.push(cur);
        }
        segs
    }
}

/// Whether a point can be drawn: finite, and not so huge (a diverged loss) that it would squash
/// every other value into one line. Points that can't are left out.
fn usable(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.0.abs() <= 1e12 && p.1.abs() <= 1e12
}

/// The x axis of curve charts: epochs, with a little room either side and integer ticks.
struct EpochAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
    light: Vec<f64>,
}

impl EpochAxis {
    fn new(first: usize, last: usize) -> Self {
        let (first, last) = (first.min(last), last.max(first));
        let span = (last - first) as f64;
        let pad = (span * 0.03).max(0.3);
        let range = first as f64 - pad..last as f64 + pad;
        // The tick step: 1, 2, 5, 10, 20, ... epochs, the smallest giving at most 12 ticks.
        let (first, last) = (first as u128, last as u128);
        let mut mag = 1u128;
        let step = 'found: loop {
            for m in [1, 2, 5] {
                if (last - first) / (m * mag) < 12 {
                    break 'found m * mag;
                }
            }
            mag *= 10;
        };
        // The first epoch, then the multiples of the step (none too close to the first).
        let mut ticks = vec![first as f64];
        let mut t = (first / step + 1) * step;
        while t <= last {
            if (t - first) * 2 >= step {
                ticks.push(t as f64);
            }
            t += step;
        }
        let light = if step == 1 { Vec::new() } else { ticks.clone() };
        EpochAxis {
            range,
            ticks,
            light,
        }
    }
}

impl Ranged for EpochAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.range.start) / (self.range.end - self.range.start);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A y range holding every value, with some margin; never below 0 when all data is >= 0.
fn y_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.06).max(0.02 * hi.abs().max(1.0));
    let bottom = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    bottom..hi + pad
}

fn draw_curves_chart(root: &Area, series: &[Series], caption: &str, y_desc: &str) -> DrawResult {
    let (w, h) = root.dim_in_pixel();
    // Legend rows are 26 px, smaller when many runs would not fit the picture's height.
    let row_h = ((h as i32 - 80) / series.len().max(1) as i32).clamp(12, 26);
    let label_font = TextStyle::from((FONT, (row_h - 9).clamp(10, 17)).into_font());

    // The legend sits right of the chart, so it never hides a line.
    let max_label_w = series
        .iter()
        .map(|s| root.estimate_text_size(&s.label, &label_font).map(|d| d.0))
        .try_fold(0, |acc, d| d.map(|d| acc.max(d)))?;
    let legend_max = w / 3;
    let legend_w = (max_label_w + 70).clamp(150, legend_max);
    let (chart_area, legend_area) = root.split_horizontally(w - legend_w);

    let first = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.0 as usize)
        .min()
        .unwrap_or(1)
        .min(1);
    let last = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.0 as usize)
        .max()
        .unwrap_or(1);
    let y = y_range(
        series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| usable(p)).map(|p| p.1)),
    );

    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin(12)
        .margin_right(4)
        .x_label_area_size(52)
        .y_label_area_size(70);
    let caption_font = TextStyle::from((FONT, 22).into_font());
    let caption = fit_text(root, caption, &caption_font, w - legend_w - 30)?;
    let top = if caption.is_empty() {
        12
    } else {
        builder.caption(&caption, caption_font);
        12 + 22 + 14
    };
    let y_fmt = tick_formatter(&y, 10);
    let mut chart = builder.build_cartesian_2d(EpochAxis::new(first, last), y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .x_label_formatter(&|v| format!("{}", v.round() as i64))
        .y_labels(10)
        .y_label_formatter(&y_fmt)
        .max_light_lines(1)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;

    for s in series {
        let line = s.color.stroke_width(2);
        for seg in s.segments() {
            chart.draw_series(LineSeries::new(seg, line))?;
        }
        // Every point is marked, up to 40 a line; longer histories mark every k-th (and the last).
        let finite: Vec<&(f64, f64)> = s.points.iter().filter(|p| usable(p)).collect();
        let every = finite.len().div_ceil(40).max(1);
        let marked = finite
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0 || i + 1 == finite.len());
        for (_, p) in marked {
            // backend_coord is in root pixels; markers are drawn on the root area.
            draw_marker(root, chart.backend_coord(p), s.marker, s.color)?;
        }
    }

    // Legend: a framed box of sample line + marker + label, one row per series.
    let inner_w = legend_w as i32 - 12;
    let box_h = row_h * series.len() as i32 + 10;
    let (bx, by) = (2, top.min(h as i32 / 4));
    legend_area.draw(&Rectangle::new(
        [(bx, by), (bx + inner_w, by + box_h)],
        WHITE.filled(),
    ))?;
    legend_area.draw(&Rectangle::new(
        [(bx, by), (bx + inner_w, by + box_h)],
        RGBColor(160, 160, 160),
    ))?;
    let text_room = (inner_w - 52).max(10) as u32;
    for (i, s) in series.iter().enumerate() {
        let cy = by + 5 + row_h * i as i32 + row_h / 2;
        legend_area.draw(&PathElement::new(
            vec![(bx + 8, cy), (bx + 40, cy)],
            s.color.stroke_width(2),
        ))?;
        draw_marker(&legend_area, (bx + 24, cy), s.marker, s.color)?;
        let text = fit_text(&legend_area, &s.label, &label_font, text_room)?;
        let style = label_font.pos(Pos::new(HPos::Left, VPos::Center));
        legend_area.draw_text(&text, &style, (bx + 48, cy))?;
    }
    Ok(())
}

/// One marker centred on `c` (pixel coordinates of `area`).
fn draw_marker(area: &Area, c: (i32, i32), m: Marker, color: RGBColor) -> DrawResult {
    let fill = color.filled();
    match m {
        Marker::Circle => area.draw(&Circle::new(c, 4, fill))?,
        Marker::Triangle => area.draw(&TriangleMarker::new(c, 6, fill))?,
        Marker::Square => area.draw(&Rectangle::new(
            [(c.0 - 4, c.1 - 4), (c.0 + 4, c.1 + 4)],
            fill,
        ))?,
        Marker::Diamond => {
            let pts = vec![
                (c.0, c.1 - 6),
                (c.0 + 6, c.1),
                (c.0, c.1 + 6),
                (c.0 - 6, c.1),
            ];
            area.draw(&Polygon::new(pts, fill))?
        }
    }
    Ok(())
}

/// `text`, shortened with an ellipsis until it is at most `max_w` pixels wide.
fn fit_text(area: &Area, text: &str, font: &TextStyle, max_w: u32) -> DrawResult<String> {
    if area.estimate_text_size(text, font)?.0 <= max_w {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let t: String = chars[..keep].iter().chain(['…'].iter()).collect();
        if area.estimate_text_size(&t, font)?.0 <= max_w {
            return Ok(t);
        }
    }
    Ok("…".to_string())
}

/// The largest font size (at most `max`, at least 9) at which every text is at most `max_w` wide.
fn fitting_font_size<'t>(
    area: &Area,
    texts: impl Iterator<Item = &'t String> + Clone,
    max_w: u32,
    max: u32,
) -> DrawResult<u32> {
    for size in (9..=max).rev() {
        let font = TextStyle::from((FONT, size).into_font());
        let mut fits = true;
        for t in texts.clone() {
            if area.estimate_text_size(t, &font)?.0 > max_w {
                fits = false;
                break;
            }
        }
        if fits {
            return Ok(size);
        }
    }
    Ok(9)
}

/// One chart of `points` (a function sampled on a grid) titled `title`.
fn draw_function_cell(
    area: &Area,
    points: &[(f64, f64)],
    title: &str,
    color: RGBColor,
    cell_h: u32,
) -> DrawResult {
    let finite = || points.iter().copied().filter(usable);
    let (mut x0, mut x1) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    if x0 > x1 {
        (x0, x1) = (-1.0, 1.0);
    } else if x1 - x0 < 1e-9 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let y = y_range_signed(finite().map(|p| p.1));
    // Text shrinks with the cell (rows share the fixed height); small cells get fewer y ticks
    // and no "x" under the axis, so labels never run into each other.
    let caption = (cell_h / 13).clamp(13, 22);
    let labels = (cell_h / 18).clamp(11, 16);
    let roomy = cell_h >= 180;
    let x_area = if roomy { labels * 2 + 8 } else { labels + 8 };
    let plot_h = cell_h.saturating_sub(caption + x_area + 30);
    let n_y = (plot_h / (labels * 2)).clamp(3, 6) as usize;
    let mut chart = ChartBuilder::on(area);
    chart
        .caption(title, (FONT, caption))
        .margin(if roomy { 10 } else { 5 })
        .margin_right(24)
        .x_label_area_size(x_area)
        .y_label_area_size(labels * 3 + 12);
    let (x_fmt, y_fmt) = (tick_formatter(&(x0..x1), 9), tick_formatter(&y, n_y));
    let mut chart = chart.build_cartesian_2d(x0..x1, y)?;
    chart
        .configure_mesh()
        .x_desc(if roomy { "x" } else { "" })
        .label_style((FONT, labels))
        .axis_desc_style((FONT, labels + 1))
        .x_labels(9)
        .y_labels(n_y)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .max_light_lines(1)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let mut seg = Vec::new();
    for &p in points {
        if usable(&p) {
            seg.push(p);
        } else if !seg.is_empty() {
            chart.draw_series(LineSeries::new(
                std::mem::take(&mut seg),
                color.stroke_width(2),
            ))?;
        }
    }
    if !seg.is_empty() {
        chart.draw_series(LineSeries::new(seg, color.stroke_width(2)))?;
    }
    Ok(())
}

/// Like [`y_range`] but symmetric in treatment of negatives (functions such as tanh).
fn y_range_signed(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.06).max(0.05);
    lo - pad..hi + pad
}

/// A label formatter for an f64 axis of `range` with at most `n` labels: every label gets the
/// decimals its tick step needs ("0.70, 0.72, ..." rather than "0.7, 0.72, ...").
fn tick_formatter(range: &Range<f64>, n: usize) -> impl Fn(&f64) -> String + use<> {
    let ticks = plotters::coord::types::RangedCoordf64::from(range.clone()).key_points(n);
    let decimals = match ticks.as_slice() {
        [a, b, ..] if b - a > 0.0 => (-(b - a).log10() - 1e-6).ceil().clamp(0.0, 6.0) as usize,
        // One tick (or none): as many decimals as the span of the axis needs.
        _ => (-(range.end - range.start).abs().log10())
            .ceil()
            .clamp(0.0, 6.0) as usize,
    };
    move |v| {
        let s = format!("{v:.decimals$}");
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    }
}

fn fail(out: &Path, e: impl std::fmt::Display) -> Error {
    Error::failure(format!("cannot draw {}: {e}", out.display()))
}

/// Draw onto a white RGB canvas of `size` and encode it as PNG.
fn render(size: (u32, u32), out: &Path, draw: impl FnOnce(&Area) -> DrawResult) -> Result<Vec<u8>> {
    render_with(size, out, draw, |_| {})
}

/// Like [`render`], then let `raw` change the RGB bytes directly before encoding.
fn render_with(
    size: (u32, u32),
    out: &Path,
    draw: impl FnOnce(&Area) -> DrawResult,
    raw: impl FnOnce(&mut [u8]),
) -> Result<Vec<u8>> {
    ensure_font()?;
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(out, e))?;
        draw(&root).map_err(|e| fail(out, e))?;
        root.present().map_err(|e| fail(out, e))?;
    }
    raw(&mut buf);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&buf, size.0, size.1, image::ExtendedColorType::Rgb8)
        .map_err(|e| fail(out, e))?;
    Ok(png)
}

fn write_png(out: &Path, png: &[u8]) -> Result<()> {
    crate::fsutil::atomic_write(out, png).map_err(|e| Error::io("cannot write", out, e))
}

/// Register the bundled font as "sans-serif", once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::failure(
            "the bundled font assets/DejaVuSans.ttf is not a valid font; rebuild from a clean checkout",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(train_loss: &[f64], train_acc: &[f64], test_acc: &[f64]) -> Vec<EpochRow> {
        (0..train_loss.len())
            .map(|i| EpochRow {
                epoch: i + 1,
                train_loss: train_loss[i],
                train_acc: train_acc[i],
                test_loss: train_loss[i] * 1.05,
                test_acc: test_acc[i],
                seconds: 3.0,
            })
            .collect()
    }

    /// A realistic 10-epoch run of the book's MLP.
    fn book_run() -> Vec<EpochRow> {
        rows(
            &[1.05, 0.60, 0.52, 0.48, 0.45, 0.43, 0.42, 0.41, 0.39, 0.385],
            &[
                0.64, 0.785, 0.81, 0.825, 0.835, 0.842, 0.848, 0.853, 0.86, 0.865,
            ],
            &[
                0.74, 0.77, 0.80, 0.81, 0.785, 0.825, 0.83, 0.838, 0.84, 0.845,
            ],
        )
    }

    fn count(img: &image::RgbImage, pred: impl Fn(&image::Rgb<u8>) -> bool) -> usize {
        img.pixels().filter(|p| pred(p)).count()
    }

    fn count_colour(img: &image::RgbImage, c: RGBColor) -> usize {
        count(img, |p| p.0 == [c.0, c.1, c.2])
    }

    fn is_red(p: &image::Rgb<u8>) -> bool {
        p.0[0] > 150 && p.0[1] < 90 && p.0[2] < 90
    }

    fn open(p: &Path) -> image::RgbImage {
        image::open(p).expect("a decodable PNG").to_rgb8()
    }

    fn activation(name: &str, f: fn(f32) -> f32, g: fn(f32) -> f32) -> ActivationCurve {
        let xs: Vec<f32> = (0..=160).map(|i| -8.0 + i as f32 * 0.1).collect();
        ActivationCurve {
            name: name.into(),
            ys: xs.iter().map(|&x| f(x)).collect(),
            grads: xs.iter().map(|&x| g(x)).collect(),
            xs,
        }
    }

    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    fn book_activations() -> Vec<ActivationCurve> {
        vec![
            activation("relu", |x| x.max(0.0), |x| if x > 0.0 { 1.0 } else { 0.0 }),
            activation("sigmoid", sigmoid, |x| sigmoid(x) * (1.0 - sigmoid(x))),
            activation("tanh", f32::tanh, |x| 1.0 - x.tanh() * x.tanh()),
        ]
    }

    /// A synthetic garment: a bright blob whose shape depends on the class.
    fn tile(true_label: usize, predicted: usize) -> PredictionTile {
        let mut pixels = vec![0u8; IMG * IMG];
        for y in 0..IMG {
            for x in 0..IMG {
                let (dx, dy) = (x as i32 - 14, y as i32 - 14);
                let r = 4 + true_label as i32;
                if dx * dx + (dy * dy) / 2 < r * r && !(x + y + true_label).is_multiple_of(7) {
                    pixels[y * IMG + x] = 120 + (x * 4) as u8;
                }
            }
        }
        PredictionTile {
            pixels,
            true_label,
            predicted,
        }
    }

    fn prediction_grid() -> Vec<PredictionTile> {
        (0..16)
            .map(|i| {
                let t = i % 10;
                let p = match i {
                    3 => 6,
                    9 => 7,
                    12 => 9,
                    _ => t,
                };
                tile(t, p)
            })
            .collect()
    }

    #[test]
    fn curves_of_one_run_have_the_size_and_all_three_line_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        draw_curves(&[("run-1".into(), book_run())], &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in [BLUE, MAGENTA, GREEN] {
            assert!(
                count_colour(&img, c) > 300,
                "colour {c:?}: {}",
                count_colour(&img, c)
            );
        }
        let ink = count(&img, |p| p.0 != [255, 255, 255]);
        assert!(
            ink > 10_000,
            "picture is nearly blank: {ink} non-white pixels"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn a_single_epoch_still_draws_its_points() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one.png");
        draw_curves(&[("r".into(), rows(&[0.9], &[0.7], &[0.75]))], &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in [BLUE, MAGENTA, GREEN] {
            // One marker on the chart plus the legend's.
            assert!(
                count_colour(&img, c) > 60,
                "colour {c:?}: {}",
                count_colour(&img, c)
            );
        }
    }

    #[test]
    fn several_runs_draw_one_coloured_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("overlay.png");
        let base = book_run();
        let runs: Vec<(String, Vec<EpochRow>)> = (0..3)
            .map(|k| {
                let mut r = base.clone();
                for row in &mut r {
                    row.test_acc -= 0.03 * k as f64;
                }
                (format!("lr-0.{}", k + 1), r)
            })
            .collect();
        draw_curves(&runs, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), CURVES_SIZE);
        for c in &PALETTE[..3] {
            assert!(
                count_colour(&img, *c) > 300,
                "colour {c:?}: {}",
                count_colour(&img, *c)
            );
        }
        assert!(
            count_colour(&img, PALETTE[3]) == 0,
            "only three runs, so no fourth colour"
        );
    }

    #[test]
    fn non_finite_values_and_long_runs_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.png");
        let mut r = book_run();
        r[4].train_loss = f64::NAN;
        r[5].train_loss = f64::INFINITY;
        draw_curves(&[("nan".into(), r)], &p).unwrap();
        assert_eq!(open(&p).dimensions(), CURVES_SIZE);

        let mut r = book_run();
        r[2].train_loss = 1e30;
        r[3].epoch = usize::MAX / 3;
        draw_curves(&[("huge".into(), r)], &p).unwrap();
        let img = open(&p);
        assert!(
            count_colour(&img, BLUE) > 100,
            "the usable points are drawn"
        );

        let long: Vec<EpochRow> = (1..=237)
            .map(|e| EpochRow {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_acc: 0.5,
                test_loss: 0.5,
                test_acc: 0.6,
                seconds: 1.0,
            })
            .collect();
        draw_curves(
            &[(
                "a very long run name that cannot possibly fit into the legend box".into(),
                long,
            )],
            &p,
        )
        .unwrap();
        assert_eq!(open(&p).dimensions(), CURVES_SIZE);
    }

    #[test]
    fn epoch_axis_ticks_are_integers_from_the_first_epoch() {
        assert_eq!(
            EpochAxis::new(1, 10).ticks,
            (1..=10).map(|e| e as f64).collect::<Vec<_>>()
        );
        assert_eq!(EpochAxis::new(1, 1).ticks, vec![1.0]);
        let t = EpochAxis::new(1, 100).ticks;
        assert_eq!(t[0], 1.0);
        assert!(t.len() <= 12 && t.iter().all(|v| v.fract() == 0.0), "{t:?}");
        let a = EpochAxis::new(1, 10);
        assert!(a.range.start < 1.0 && a.range.end > 10.0);
    }

    #[test]
    fn tick_labels_have_the_decimals_of_their_step() {
        let f = tick_formatter(&(0.68..0.86), 10);
        assert_eq!(
            (f(&0.7), f(&0.72)),
            ("0.70".to_string(), "0.72".to_string())
        );
        let f = tick_formatter(&(-8.5..8.5), 9);
        assert_eq!(
            (f(&-8.0), f(&0.0), f(&-0.0)),
            ("-8".to_string(), "0".to_string(), "0".to_string())
        );
        let f = tick_formatter(&(0.0..1.0), 6);
        assert_eq!(f(&0.2), "0.2");
        // A single tick takes its decimals from the span.
        assert_eq!(tick_formatter(&(-1.1..1.1), 2)(&0.0), "0");
    }

    #[test]
    fn empty_curve_inputs_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        assert!(matches!(draw_curves(&[], &p), Err(Error::Input(_))));
        let e = draw_curves(&[("a".into(), book_run()), ("empty".into(), vec![])], &p).unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(
            e.to_string().contains("empty") && !e.to_string().contains('\n'),
            "{e}"
        );
        assert!(!p.exists());
    }

    #[test]
    fn activations_have_the_size_and_both_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("act.png");
        draw_activations(&book_activations(), &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), ACTIVATIONS_SIZE);
        assert!(count_colour(&img, BLUE) > 1000);
        assert!(count_colour(&img, ORANGE) > 1000);
    }

    #[test]
    fn bad_activation_inputs_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("act.png");
        assert!(matches!(draw_activations(&[], &p), Err(Error::Input(_))));
        let mut c = book_activations().remove(0);
        c.grads.pop();
        let e = draw_activations(&[c], &p).unwrap_err();
        assert!(
            matches!(e, Error::Input(_)) && e.to_string().contains("relu"),
            "{e}"
        );
        let empty = ActivationCurve {
            name: "id".into(),
            xs: vec![],
            ys: vec![],
            grads: vec![],
        };
        assert!(matches!(
            draw_activations(&[empty], &p),
            Err(Error::Input(_))
        ));
        let too_many: Vec<_> = (0..3).flat_map(|_| book_activations()).collect();
        assert!(matches!(
            draw_activations(&too_many, &p),
            Err(Error::Input(_))
        ));
        // A constant function on a single point still draws.
        let dot = ActivationCurve {
            name: "c".into(),
            xs: vec![0.0],
            ys: vec![1.0],
            grads: vec![0.0],
        };
        draw_activations(&[dot], &p).unwrap();
    }

    #[test]
    fn wrong_predictions_are_red_and_correct_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pred.png");
        let (w, h) = draw_predictions(&prediction_grid(), &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(
            (w, h),
            (8 * TILE_W + 2 * GRID_MARGIN, 2 * TILE_H + 2 * GRID_MARGIN)
        );
        assert!(
            count(&img, is_red) > 500,
            "red frames and titles: {}",
            count(&img, is_red)
        );

        let all_right: Vec<_> = (0..10).map(|c| tile(c, c)).collect();
        let (w, h) = draw_predictions(&all_right, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(count(&img, is_red), 0);
        // Dark title text exists.
        assert!(
            count(&img, |p| p.0[0] < 80 && p.0 != [0, 0, 0]) > 0
                || count(&img, |p| p.0 == [0, 0, 0]) > 0
        );
    }

    #[test]
    fn images_are_enlarged_with_nearest_neighbour() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one.png");
        let mut t = tile(0, 0);
        t.pixels.fill(0);
        t.pixels[0] = 200; // top-left source pixel
        t.pixels[IMG * IMG - 1] = 77; // bottom-right source pixel
        let (w, h) = draw_predictions(&[t], &p).unwrap();
        assert_eq!((w, h), (TILE_W + 2 * GRID_MARGIN, TILE_H + 2 * GRID_MARGIN));
        let img = open(&p);
        let (ix, iy) = (GRID_MARGIN + TILE_PAD, GRID_MARGIN + TITLE_H);
        let s = SCALE as u32;
        for dy in 0..s {
            for dx in 0..s {
                assert_eq!(img.get_pixel(ix + dx, iy + dy).0, [200; 3]);
                assert_eq!(img.get_pixel(ix + 27 * s + dx, iy + 27 * s + dy).0, [77; 3]);
            }
        }
        assert_eq!(img.get_pixel(ix + s, iy).0, [0; 3]);
    }

    #[test]
    fn titles_stay_inside_their_tiles() {
        // The longest names in every tile, all wrong: no ink may cross a boundary between tiles.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long.png");
        let tiles: Vec<_> = (0..16)
            .map(|i| {
                tile(
                    if i % 2 == 0 { 0 } else { 9 },
                    if i % 2 == 0 { 9 } else { 0 },
                )
            })
            .collect();
        draw_predictions(&tiles, &p).unwrap();
        let img = open(&p);
        for col in 0..=8u32 {
            let x = GRID_MARGIN + col * TILE_W;
            let x = x.min(img.width() - 1);
            for y in 0..img.height() {
                assert_eq!(
                    img.get_pixel(x, y).0,
                    [255; 3],
                    "ink at the tile boundary x={x}, y={y}"
                );
            }
        }
        for row in 0..=2u32 {
            let y = (GRID_MARGIN + row * TILE_H).min(img.height() - 1);
            for x in 0..img.width() {
                assert_eq!(
                    img.get_pixel(x, y).0,
                    [255; 3],
                    "ink at the tile boundary x={x}, y={y}"
                );
            }
        }
    }

    #[test]
    fn bad_prediction_inputs_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pred.png");
        assert!(matches!(draw_predictions(&[], &p), Err(Error::Input(_))));
        let mut t = tile(1, 1);
        t.pixels.pop();
        assert!(matches!(draw_predictions(&[t], &p), Err(Error::Input(_))));
        assert!(matches!(
            draw_predictions(&[tile(1, 10)], &p),
            Err(Error::Input(_))
        ));
        let many = vec![tile(1, 1); MAX_PREDICTION_TILES + 1];
        assert!(matches!(draw_predictions(&many, &p), Err(Error::Input(_))));
        assert!(!p.exists());
    }

    #[test]
    fn writing_into_a_missing_folder_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("x.png");
        let shown = p.display().to_string();
        let errors = [
            draw_curves(&[("r".into(), book_run())], &p).unwrap_err(),
            draw_activations(&book_activations(), &p).unwrap_err(),
            draw_predictions(&prediction_grid(), &p).unwrap_err(),
        ];
        for e in errors {
            assert!(matches!(e, Error::Failure(_)), "{e:?}");
            assert!(e.to_string().contains(&shown), "{e}");
            assert_eq!(e.exit_code(), 1);
        }
    }

    /// Renders every sample picture; with PLOT_SAMPLES_DIR set they are kept there for a look.
    #[test]
    fn sample_pictures() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::env::var_os("PLOT_SAMPLES_DIR")
            .map_or_else(|| tmp.path().to_path_buf(), Into::into);
        std::fs::create_dir_all(&dir).unwrap();
        draw_curves(&[("book-mlp".into(), book_run())], &dir.join("curves.png")).unwrap();
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
        draw_curves(&runs, &dir.join("curves-overlay.png")).unwrap();
        let crowd: Vec<_> = (0..16)
            .map(|k| (format!("run-{k:02}"), book_run()))
            .collect();
        draw_curves(&crowd, &dir.join("curves-16-runs.png")).unwrap();
        draw_curves(
            &[("one-epoch".into(), rows(&[0.9], &[0.7], &[0.75]))],
            &dir.join("curves-single-epoch.png"),
        )
        .unwrap();
        let long: Vec<EpochRow> = (1..=237)
            .map(|e| {
                let t = e as f64;
                let loss = if e == 120 {
                    f64::NAN
                } else {
                    0.3 + 1.0 / t.sqrt()
                };
                EpochRow {
                    epoch: e,
                    train_loss: loss,
                    train_acc: 0.92 - 0.3 / t.sqrt(),
                    test_loss: 0.5,
                    test_acc: if e == 150 {
                        f64::NAN
                    } else {
                        0.89 - 0.25 / t.sqrt()
                    },
                    seconds: 1.0,
                }
            })
            .collect();
        let name = "a very long run name that cannot possibly fit into the legend box".to_string();
        draw_curves(
            &[
                (name.clone(), long.clone()),
                ("short".into(), long[..50].to_vec()),
            ],
            &dir.join("curves-long.png"),
        )
        .unwrap();
        draw_activations(&book_activations(), &dir.join("activations.png")).unwrap();
        let many: Vec<_> = (0..8).flat_map(|_| book_activations()).take(8).collect();
        draw_activations(&many, &dir.join("activations-8.png")).unwrap();
        draw_predictions(&prediction_grid(), &dir.join("predictions.png")).unwrap();
    }
}
