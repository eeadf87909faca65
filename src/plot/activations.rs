//! Activation functions beside their derivatives, one row each.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{BLUE, BOLD_GRID, DrawResult, FONT, LIGHT_GRID, ORANGE, padded_range, segments, tick_formatter, usable};
use crate::error::{Error, Result};

/// The fixed size of activation pictures.
pub const ACTIVATIONS_SIZE: (u32, u32) = (900, 900);
/// The most activations [`draw_activations`] accepts (rows share the fixed picture height).
pub const MAX_ACTIVATIONS: usize = 8;

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
    check(curves, out)?;
    super::write_png(ACTIVATIONS_SIZE, out, |root| {
        let cells = root.split_evenly((curves.len(), 2));
        let cell_h = ACTIVATIONS_SIZE.1 / curves.len() as u32;
        for (c, pair) in curves.iter().zip(cells.chunks(2)) {
            let xs = || c.xs.iter().map(|&x| f64::from(x));
            let f: Vec<(f64, f64)> = xs().zip(c.ys.iter().map(|&y| f64::from(y))).collect();
            let g: Vec<(f64, f64)> = xs().zip(c.grads.iter().map(|&y| f64::from(y))).collect();
            draw_cell(&pair[0], &f, &format!("{}(x)", c.name), BLUE, cell_h)?;
            draw_cell(&pair[1], &g, &format!("grad of {}", c.name), ORANGE, cell_h)?;
        }
        Ok(())
    })
}

fn check(curves: &[ActivationCurve], out: &Path) -> Result<()> {
    if curves.is_empty() {
        return Err(Error::input(format!("no activation functions to plot into {}", out.display())));
    }
    if curves.len() > MAX_ACTIVATIONS {
        return Err(Error::input(format!(
            "{} activation functions are too many for one picture (at most {MAX_ACTIVATIONS})",
            curves.len()
        )));
    }
    match curves.iter().find(|c| c.xs.is_empty() || c.xs.len() != c.ys.len() || c.xs.len() != c.grads.len()) {
        Some(c) => Err(Error::input(format!(
            "activation `{}` has {} xs, {} values and {} gradients; they must be equally many and not zero",
            c.name,
            c.xs.len(),
            c.ys.len(),
            c.grads.len()
        ))),
        None => Ok(()),
    }
}

/// The x range of the usable points, widened when they are a single x.
fn x_range(points: &[(f64, f64)]) -> Range<f64> {
    let (x0, x1) = points
        .iter()
        .filter(|p| usable(p))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    if x0 > x1 {
        -1.0..1.0
    } else if x1 - x0 < 1e-9 {
        x0 - 1.0..x1 + 1.0
    } else {
        x0..x1
    }
}

/// One chart of `points` (a function sampled on a grid) titled `title`, in a cell `cell_h` high.
fn draw_cell(
    area: &DrawingArea<BitMapBackend, Shift>,
    points: &[(f64, f64)],
    title: &str,
    color: RGBColor,
    cell_h: u32,
) -> DrawResult {
    let x = x_range(points);
    let y = padded_range(points.iter().filter(|p| usable(p)).map(|p| p.1), 0.05, false);
    // Text shrinks with the cell (rows share the fixed height); small cells get fewer y ticks
    // and no "x" under the axis, so labels never run into each other.
    let caption = (cell_h / 13).clamp(13, 22);
    let labels = (cell_h / 18).clamp(11, 16);
    let roomy = cell_h >= 180;
    let x_area = if roomy { labels * 2 + 8 } else { labels + 8 };
    let plot_h = cell_h.saturating_sub(caption + x_area + 30);
    let n_y = (plot_h / (labels * 2)).clamp(3, 6) as usize;
    let (x_fmt, y_fmt) = (tick_formatter(&x, 9), tick_formatter(&y, n_y));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, caption))
        .margin(if roomy { 10 } else { 5 })
        .margin_right(24)
        .x_label_area_size(x_area)
        .y_label_area_size(labels * 3 + 12)
        .build_cartesian_2d(x, y)?;
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
        .light_line_style(LIGHT_GRID)
        .bold_line_style(BOLD_GRID)
        .draw()?;
    for seg in segments(points) {
        chart.draw_series(LineSeries::new(seg.iter().copied(), color.stroke_width(2)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

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
        assert!(matches!(e, Error::Input(_)) && e.to_string().contains("relu"), "{e}");
        let empty = ActivationCurve { name: "id".into(), xs: vec![], ys: vec![], grads: vec![] };
        assert!(matches!(draw_activations(&[empty], &p), Err(Error::Input(_))));
        let too_many: Vec<_> = (0..3).flat_map(|_| book_activations()).collect();
        assert!(matches!(draw_activations(&too_many, &p), Err(Error::Input(_))));
        // A constant function on a single point still draws.
        let dot = ActivationCurve { name: "c".into(), xs: vec![0.0], ys: vec![1.0], grads: vec![0.0] };
        draw_activations(&[dot], &p).unwrap();
    }

    /// Renders the sample pictures; with PLOT_SAMPLES_DIR set they are kept there for a look.
    #[test]
    fn sample_activations() {
        let (_tmp, dir) = samples_dir();
        draw_activations(&book_activations(), &dir.join("activations.png")).unwrap();
        let many: Vec<_> = (0..8).flat_map(|_| book_activations()).take(8).collect();
        draw_activations(&many, &dir.join("activations-8.png")).unwrap();
    }
}
