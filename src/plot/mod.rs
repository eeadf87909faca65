//! The pictures users look at: training curves (PNG, or SVG for the report page), activation
//! functions and a grid of test predictions. plotters draws them in memory; PNGs are encoded
//! with `image` and written atomically.
//!
//! Text uses the bundled DejaVu Sans (registered once as "sans-serif"), so nothing depends on
//! the fonts installed on the machine.

mod activations;
mod curves;
mod pictures;
mod predictions;
mod text;
#[cfg(test)]
mod testutil;

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};

pub use activations::{ACTIVATIONS_SIZE, ActivationCurve, MAX_ACTIVATIONS, draw_activations};
pub use curves::{CURVES_SIZE, curves_svg, draw_curves, draw_overlay};
pub use pictures::{MAX_PICTURES, PictureRow, draw_pictures, fit_picture};
pub use predictions::{MAX_PREDICTION_TILES, PredictionTile, draw_predictions};

/// The bundled font's family name, for every picture the program draws.
pub(crate) const FONT: &str = "sans-serif";
pub(crate) static FONT_BYTES: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/DejaVuSans.ttf"));

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const LIGHT_GRID: RGBColor = RGBColor(235, 235, 235);
const BOLD_GRID: RGBColor = RGBColor(215, 215, 215);

pub(crate) type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Refuse an output path that does not end in `.png` (the only format the pictures are written in).
pub fn check_png_path(out: &Path) -> Result<()> {
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Ok(());
    }
    Err(Error::input(format!("{}: pictures are written as PNG; give an output path ending in .png", out.display())))
}

/// Legend labels for run folders: each folder's shortest path suffix that no other folder
/// shares (`a/best`, `b/best` rather than `best` twice); the folder name when it is unique.
pub fn unique_labels(paths: &[std::path::PathBuf]) -> Vec<String> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let mut c: Vec<String> = p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            c.retain(|s| s != ".");
            if c.is_empty() {
                c.push(p.display().to_string());
            }
            c
        })
        .collect();
    let suffix = |c: &[String], n: usize| c[c.len().saturating_sub(n)..].join("/");
    (0..parts.len())
        .map(|i| {
            let mine = &parts[i];
            let clash = |n: usize| (0..parts.len()).any(|j| j != i && parts[j] != *mine && suffix(&parts[j], n) == suffix(mine, n));
            let n = (1..=mine.len()).find(|&n| !clash(n)).unwrap_or(mine.len());
            suffix(mine, n)
        })
        .collect()
}

/// Fill `root` white, let `draw` paint on it and flush it: the one pipeline of PNG and SVG.
pub(crate) fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    draw: impl FnOnce(&DrawingArea<DB, Shift>) -> DrawResult,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    ensure_font()?;
    root.fill(&WHITE)?;
    draw(root)?;
    root.present()?;
    Ok(())
}

/// Draw a picture of `size` into an RGB buffer and write it to `out` as PNG, atomically.
pub(crate) fn write_png(
    size: (u32, u32),
    out: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> DrawResult,
) -> Result<()> {
    check_png_path(out)?;
    let mut buf = vec![0u8; size.0 as usize * size.1 as usize * 3];
    paint(&BitMapBackend::with_buffer(&mut buf, size).into_drawing_area(), draw)
        .map_err(|e| Error::failure_with(format!("cannot draw {}", out.display()), e.to_string()))?;
    crate::fsutil::atomic_write_with(out, |w| {
        image::codecs::png::PngEncoder::new(w)
            .write_image(&buf, size.0, size.1, image::ExtendedColorType::Rgb8)
            .map_err(std::io::Error::other)
    })
    .map_err(|e| Error::io("cannot write", out, e))
}

/// Register the bundled font as "sans-serif", once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    ok.then_some(()).ok_or_else(|| {
        Error::failure("the bundled font assets/DejaVuSans.ttf is not a valid font; rebuild from a clean checkout")
    })
}

/// Whether a point can be drawn: finite, and not so huge (a diverged loss) that it would squash
/// every other value into one line. Points that can't are left out.
fn usable(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.0.abs() <= 1e12 && p.1.abs() <= 1e12
}

/// Runs of consecutive usable points: a NaN breaks the line instead of bending it to a corner.
fn segments(points: &[(f64, f64)]) -> impl Iterator<Item = &[(f64, f64)]> {
    points.split(|p| !usable(p)).filter(|s| !s.is_empty())
}

/// A range holding every value with some margin (at least `min_pad`); with `floor_at_zero` it
/// never goes below 0 when no value does (accuracies and losses).
fn padded_range(values: impl Iterator<Item = f64>, min_pad: f64, floor_at_zero: bool) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.06).max(min_pad);
    let bottom = if floor_at_zero && lo >= 0.0 { (lo - pad).max(0.0) } else { lo - pad };
    bottom..hi + pad
}

/// A label formatter for an f64 axis of `range` with at most `n` labels: every label gets the
/// decimals its tick step needs ("0.70, 0.72, ..." rather than "0.7, 0.72, ...").
fn tick_formatter(range: &Range<f64>, n: usize) -> impl Fn(&f64) -> String + use<> {
    let ticks = plotters::coord::types::RangedCoordf64::from(range.clone()).key_points(n);
    let step = match ticks.as_slice() {
        [a, b, ..] if b - a > 0.0 => b - a,
        // One tick (or none): as many decimals as the span of the axis needs.
        _ => (range.end - range.start).abs(),
    };
    let decimals = (-step.log10() - 1e-6).ceil().clamp(0.0, 6.0) as usize;
    move |v| {
        let s = format!("{v:.decimals$}");
        // "-0.00" reads as a different value from "0.00".
        match s.strip_prefix('-') {
            Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
            _ => s,
        }
    }
}

/// `text`, shortened with an ellipsis until it is at most `max_w` pixels wide, and its width.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
    max_w: u32,
) -> DrawResult<(String, u32)>
where
    DB::ErrorType: 'static,
{
    let (mut t, mut chars) = (text.to_string(), text.chars().collect::<Vec<_>>());
    loop {
        let w = area.estimate_text_size(&t, font)?.0;
        if w <= max_w || chars.is_empty() {
            return Ok((t, w));
        }
        chars.pop();
        t = chars.iter().chain(['…'].iter()).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    /// The errors of drawing each kind of picture into `p` (which must fail).
    fn draw_all(p: &Path) -> [Error; 3] {
        [
            draw_curves(&[("r".into(), book_run())], crate::run::metrics::HeldOut::Test, p).unwrap_err(),
            draw_activations(&book_activations(), p).unwrap_err(),
            draw_predictions(&prediction_grid(), p).unwrap_err(),
        ]
    }

    #[test]
    fn legend_labels_are_the_shortest_unique_path_suffixes() {
        let p = |v: &[&str]| v.iter().map(std::path::PathBuf::from).collect::<Vec<_>>();
        assert_eq!(unique_labels(&p(&["a/best", "b/best", "c/best"])), ["a/best", "b/best", "c/best"]);
        assert_eq!(unique_labels(&p(&["runs/relu", "runs/sigmoid", "artifacts"])), ["relu", "sigmoid", "artifacts"]);
        assert_eq!(unique_labels(&p(&["x/a/best", "y/a/best", "z/best"])), ["x/a/best", "y/a/best", "z/best"]);
        assert_eq!(unique_labels(&p(&["./run", "/tmp/run"])), ["run", "tmp/run"]);
        // The same folder twice keeps its short name.
        assert_eq!(unique_labels(&p(&["run", "run"])), ["run", "run"]);
    }

    #[test]
    fn tick_labels_have_the_decimals_of_their_step() {
        let f = tick_formatter(&(0.68..0.86), 10);
        assert_eq!((f(&0.7), f(&0.72)), ("0.70".to_string(), "0.72".to_string()));
        let f = tick_formatter(&(-8.5..8.5), 9);
        assert_eq!((f(&-8.0), f(&0.0), f(&-0.0)), ("-8".to_string(), "0".to_string(), "0".to_string()));
        let f = tick_formatter(&(0.0..1.0), 6);
        assert_eq!(f(&0.2), "0.2");
        // A single tick takes its decimals from the span.
        assert_eq!(tick_formatter(&(-1.1..1.1), 2)(&0.0), "0");
    }

    #[test]
    fn only_png_paths_are_accepted() {
        check_png_path(Path::new("a/b.png")).unwrap();
        check_png_path(Path::new("B.PNG")).unwrap();
        for bad in ["plot.svg", "plot", "dir.png/x.jpg"] {
            let e = check_png_path(Path::new(bad)).unwrap_err();
            assert!(matches!(e, Error::Input(_)) && e.exit_code() == 2, "{e:?}");
            let msg = e.to_string();
            assert!(msg.contains(bad) && msg.contains(".png") && !msg.contains('\n'), "{msg}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.svg");
        for e in draw_all(&p) {
            assert!(matches!(e, Error::Input(_)), "{e:?}");
        }
        assert!(!p.exists());
    }

    #[test]
    fn writing_into_a_missing_folder_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("x.png");
        let shown = p.display().to_string();
        for e in draw_all(&p) {
            assert!(matches!(e, Error::Failure(_)), "{e:?}");
            assert!(e.to_string().contains(&shown), "{e}");
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn long_text_is_shortened_with_an_ellipsis() {
        ensure_font().unwrap();
        let mut buf = vec![0u8; 300 * 50 * 3];
        let area = BitMapBackend::with_buffer(&mut buf, (300, 50)).into_drawing_area();
        let font = TextStyle::from((FONT, 16).into_font());
        let (short, w) = fit_text(&area, "train loss", &font, 200).unwrap();
        assert_eq!(short, "train loss");
        assert!(w > 20 && w <= 200);
        let (cut, w) = fit_text(&area, &"x".repeat(100), &font, 80).unwrap();
        assert!(cut.ends_with('…') && cut.len() < 100 && w <= 80, "{cut} {w}");
    }
}
