//! A grid of test images titled with their true and predicted class, like the book's predict_ch3.

use std::path::Path;

use image::imageops::{self, FilterType};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::DrawResult;
use crate::data::CLASS_NAMES;
use crate::error::{Error, Result};

/// The most tiles [`draw_predictions`] accepts (64 rows of 8; the PNG is then about 1.3k x 13k px).
pub const MAX_PREDICTION_TILES: usize = 512;

/// Side of a Fashion-MNIST image.
const IMG: u32 = 28;
/// Enlargement of prediction images (nearest neighbour).
const SCALE: u32 = 5;
const TILES_PER_ROW: usize = 8;
const TILE_PAD: u32 = 12;
const TILE_W: u32 = IMG * SCALE + 2 * TILE_PAD;
const TITLE_H: u32 = 46;
const TILE_H: u32 = TITLE_H + IMG * SCALE + TILE_PAD;
const GRID_MARGIN: u32 = 8;
const WRONG_RED: RGBColor = RGBColor(210, 0, 0);

/// One test image with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionTile {
    /// 28*28 row-major grayscale, 0 = black.
    pub pixels: Vec<u8>,
    pub true_label: usize,
    pub predicted: usize,
    /// The model's probability of `predicted`, shown after it when given (e.g. for a grid of
    /// the most confident mistakes).
    pub confidence: Option<f32>,
}

impl PredictionTile {
    /// The two title lines: "true: Shirt" and "pred: Coat" (with " 0.97" when the confidence is known).
    fn title(&self) -> [String; 2] {
        let conf = self.confidence.map(|c| format!(" {}", confidence_text(c))).unwrap_or_default();
        [format!("true: {}", CLASS_NAMES[self.true_label]), format!("pred: {}{conf}", CLASS_NAMES[self.predicted])]
    }

    /// The image enlarged [`SCALE`] times (nearest neighbour), as RGB bytes.
    fn enlarged_rgb(&self) -> Vec<u8> {
        let gray = image::GrayImage::from_fn(IMG, IMG, |x, y| image::Luma([self.pixels[(y * IMG + x) as usize]]));
        let big = imageops::resize(&gray, IMG * SCALE, IMG * SCALE, FilterType::Nearest);
        image::DynamicImage::ImageLuma8(big).into_rgb8().into_raw()
    }
}

/// A grid of tiles (up to 8 a row), each image enlarged 5x (nearest neighbour), titled with the
/// true and the predicted class name on two lines; wrong predictions' titles and frames in red.
/// Returns the (width, height) of the PNG.
pub fn draw_predictions(tiles: &[PredictionTile], out: &Path) -> Result<(u32, u32)> {
    check(tiles, out)?;
    let cols = tiles.len().min(TILES_PER_ROW);
    let rows = tiles.len().div_ceil(TILES_PER_ROW);
    let size = (cols as u32 * TILE_W + 2 * GRID_MARGIN, rows as u32 * TILE_H + 2 * GRID_MARGIN);
    super::write_png(size, out, |root| {
        let titles: Vec<[String; 2]> = tiles.iter().map(PredictionTile::title).collect();
        let font_size = fitting_font_size(titles.iter().flatten(), TILE_W - 6, 16);
        let grid = root.margin(GRID_MARGIN, GRID_MARGIN, GRID_MARGIN, GRID_MARGIN);
        for ((cell, t), title) in grid.split_evenly((rows, cols)).iter().zip(tiles).zip(&titles) {
            draw_tile(cell, t, title, font_size)?;
        }
        Ok(())
    })?;
    Ok(size)
}

fn check(tiles: &[PredictionTile], out: &Path) -> Result<()> {
    if tiles.is_empty() {
        return Err(Error::input(format!("no predictions to draw into {}", out.display())));
    }
    if tiles.len() > MAX_PREDICTION_TILES {
        return Err(Error::input(format!(
            "{} predictions are too many for one picture (at most {MAX_PREDICTION_TILES}); ask for fewer",
            tiles.len()
        )));
    }
    for (i, t) in tiles.iter().enumerate() {
        if t.pixels.len() != (IMG * IMG) as usize {
            return Err(Error::input(format!(
                "prediction {i} has {} pixels; expected {} (a 28x28 image)",
                t.pixels.len(),
                IMG * IMG
            )));
        }
        if t.true_label >= CLASS_NAMES.len() || t.predicted >= CLASS_NAMES.len() {
            return Err(Error::input(format!(
                "prediction {i} has label {} / prediction {}; classes are 0..{}",
                t.true_label,
                t.predicted,
                CLASS_NAMES.len() - 1
            )));
        }
        if let Some(c) = t.confidence.filter(|c| !(0.0..=1.0).contains(c)) {
            return Err(Error::input(format!("prediction {i} has confidence {c}; it must be a probability in [0, 1]")));
        }
    }
    Ok(())
}

/// One tile: the title lines centred at the top, the image below; a wrong one framed in red.
fn draw_tile(
    cell: &DrawingArea<BitMapBackend, Shift>,
    t: &PredictionTile,
    title: &[String; 2],
    font_size: u32,
) -> DrawResult {
    let wrong = t.true_label != t.predicted;
    let color = if wrong { WRONG_RED } else { BLACK };
    let (cx, line_h) = (TILE_W as i32 / 2, (TITLE_H as i32 - 6) / 2);
    super::text::draw_centred(cell, &title[0], font_size as f32, color, cx, 4)?;
    super::text::draw_centred(cell, &title[1], font_size as f32, color, cx, 4 + line_h)?;
    let (ix, iy, side) = (TILE_PAD as i32, TITLE_H as i32, (IMG * SCALE) as i32);
    let image = BitMapElement::with_owned_buffer((ix, iy), (IMG * SCALE, IMG * SCALE), t.enlarged_rgb())
        .ok_or("the enlarged image does not fill its buffer")?;
    cell.draw(&image)?;
    if wrong {
        for k in 1..=3 {
            cell.draw(&Rectangle::new([(ix - k, iy - k), (ix + side - 1 + k, iy + side - 1 + k)], color))?;
        }
    }
    Ok(())
}

/// The largest font size (at most `max`, at least 9) at which every text is at most `max_w` wide.
fn fitting_font_size<'t>(texts: impl Iterator<Item = &'t String> + Clone, max_w: u32, max: u32) -> u32 {
    (9..=max).rev().find(|&size| texts.clone().all(|t| super::text::width(t, size as f32).ceil() as u32 <= max_w)).unwrap_or(9)
}

/// A probability with two decimals, rounded down: a near-certain 0.9968 reads 0.99, and 1.00
/// means exactly 1.
pub fn confidence_text(c: f32) -> String {
    format!("{:.2}", (c as f64 * 100.0).floor() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn wrong_predictions_are_red_and_correct_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pred.png");
        let (w, h) = draw_predictions(&prediction_grid(), &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!((w, h), (8 * TILE_W + 2 * GRID_MARGIN, 2 * TILE_H + 2 * GRID_MARGIN));
        assert!(count(&img, is_red) > 500, "red frames and titles: {}", count(&img, is_red));

        let all_right: Vec<_> = (0..10).map(|c| tile(c, c)).collect();
        let (w, h) = draw_predictions(&all_right, &p).unwrap();
        let img = open(&p);
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(count(&img, is_red), 0);
        // Dark title text exists above the images.
        let title_ink =
            (0..w).flat_map(|x| (0..TITLE_H).map(move |y| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 80);
        assert!(title_ink.count() > 100);
    }

    #[test]
    fn images_are_enlarged_with_nearest_neighbour() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one.png");
        let mut t = tile(0, 0);
        t.pixels.fill(0);
        t.pixels[0] = 200; // top-left source pixel
        t.pixels[(IMG * IMG - 1) as usize] = 77; // bottom-right source pixel
        let (w, h) = draw_predictions(&[t], &p).unwrap();
        assert_eq!((w, h), (TILE_W + 2 * GRID_MARGIN, TILE_H + 2 * GRID_MARGIN));
        let img = open(&p);
        let (ix, iy) = (GRID_MARGIN + TILE_PAD, GRID_MARGIN + TITLE_H);
        for dy in 0..SCALE {
            for dx in 0..SCALE {
                assert_eq!(img.get_pixel(ix + dx, iy + dy).0, [200; 3]);
                assert_eq!(img.get_pixel(ix + 27 * SCALE + dx, iy + 27 * SCALE + dy).0, [77; 3]);
            }
        }
        assert_eq!(img.get_pixel(ix + SCALE, iy).0, [0; 3]);
        assert_eq!(img.get_pixel(ix - 1, iy).0, [255; 3], "nothing left of the image");
    }

    #[test]
    fn titles_stay_inside_their_tiles() {
        // The longest names in every tile, all wrong and with a confidence: no ink may cross a
        // boundary between tiles.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long.png");
        let tiles: Vec<_> = (0..16)
            .map(|i| PredictionTile {
                confidence: Some(0.999),
                ..tile(if i % 2 == 0 { 0 } else { 9 }, if i % 2 == 0 { 9 } else { 0 })
            })
            .collect();
        draw_predictions(&tiles, &p).unwrap();
        let img = open(&p);
        for col in 0..=8u32 {
            let x = (GRID_MARGIN + col * TILE_W).min(img.width() - 1);
            for y in 0..img.height() {
                assert_eq!(img.get_pixel(x, y).0, [255; 3], "ink at the tile boundary x={x}, y={y}");
            }
        }
        for row in 0..=2u32 {
            let y = (GRID_MARGIN + row * TILE_H).min(img.height() - 1);
            for x in 0..img.width() {
                assert_eq!(img.get_pixel(x, y).0, [255; 3], "ink at the tile boundary x={x}, y={y}");
            }
        }
    }

    #[test]
    fn a_confidence_shows_one_only_when_it_is_one() {
        assert_eq!(confidence_text(0.9968), "0.99");
        assert_eq!(confidence_text(0.999_999), "0.99");
        assert_eq!(confidence_text(1.0), "1.00");
        assert_eq!(confidence_text(0.5), "0.50");
        assert_eq!(confidence_text(0.0), "0.00");
    }

    #[test]
    fn the_confidence_follows_the_prediction() {
        let t = PredictionTile { confidence: Some(0.9712), ..tile(0, 6) };
        assert_eq!(t.title(), ["true: T-shirt/top".to_string(), "pred: Shirt 0.97".to_string()]);
        assert_eq!(tile(1, 1).title()[1], "pred: Trouser");
    }

    #[test]
    fn bad_prediction_inputs_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pred.png");
        assert!(matches!(draw_predictions(&[], &p), Err(Error::Input(_))));
        let mut t = tile(1, 1);
        t.pixels.pop();
        assert!(matches!(draw_predictions(&[t], &p), Err(Error::Input(_))));
        assert!(matches!(draw_predictions(&[tile(1, 10)], &p), Err(Error::Input(_))));
        let many = vec![tile(1, 1); MAX_PREDICTION_TILES + 1];
        assert!(matches!(draw_predictions(&many, &p), Err(Error::Input(_))));
        for c in [1.5, -0.1, f32::NAN] {
            let t = PredictionTile { confidence: Some(c), ..tile(1, 2) };
            let e = draw_predictions(&[t], &p).unwrap_err();
            assert!(matches!(e, Error::Input(_)) && e.to_string().contains("confidence"), "{e}");
        }
        assert!(!p.exists());
    }

    /// Renders the sample grids; with PLOT_SAMPLES_DIR set they are kept there for a look.
    #[test]
    fn sample_predictions() {
        let (_tmp, dir) = samples_dir();
        draw_predictions(&prediction_grid(), &dir.join("predictions.png")).unwrap();
        let mistakes: Vec<_> = (0..10)
            .map(|i| PredictionTile { confidence: Some(0.999 - 0.04 * i as f32), ..tile(i, (i + 3) % 10) })
            .collect();
        draw_predictions(&mistakes, &dir.join("predictions-confident-mistakes.png")).unwrap();
    }
}
