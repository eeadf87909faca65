//! `predict --image --out FILE.png`: a row per picture, the picture as given beside the 28x28
//! input the model was given (enlarged 5x, nearest neighbour) and its top-3 classes with their
//! probabilities as bars; a picture where nothing stood out from the background says so in red.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgba, RgbaImage};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawResult, text};
use crate::data::{CLASS_NAMES, PIXELS, SIDE};
use crate::error::{Error, Result};

/// The most pictures one grid holds (a row each; the PNG is then about 630 x 12,800 px).
pub const MAX_PICTURES: usize = 64;
/// Side of the boxes the picture and the enlarged input are drawn in.
pub const BOX: u32 = SIDE as u32 * 5;

const PAD: u32 = 16;
const HEADER_H: u32 = 34;
const NAME_H: u32 = 28;
const CAPTION_H: u32 = 22;
const ROW_GAP: u32 = 14;
const ROW_H: u32 = NAME_H + BOX + CAPTION_H + ROW_GAP;
const ARROW_W: u32 = 44;
const TEXT_GAP: u32 = 28;
const TEXT_W: u32 = 250;
const WIDTH: u32 = PAD + BOX + ARROW_W + BOX + TEXT_GAP + TEXT_W + PAD;
const ENTRY_H: u32 = 40;

const INK: RGBColor = RGBColor(30, 30, 30);
const GREY: RGBColor = RGBColor(110, 110, 110);
const FRAME: RGBColor = RGBColor(200, 200, 200);
const OUTLINE: RGBColor = RGBColor(222, 222, 222);
const RULE: RGBColor = RGBColor(228, 228, 228);
const TRACK: RGBColor = RGBColor(236, 236, 236);
const TOP_BAR: RGBColor = super::BLUE;
const OTHER_BAR: RGBColor = RGBColor(165, 190, 212);
const WARN: RGBColor = RGBColor(200, 0, 0);

/// One picture and what the model made of it.
#[derive(Debug, Clone)]
pub struct PictureRow {
    /// The name shown above the row (the file's path as given).
    pub name: String,
    /// The picture as given, fitted into [`BOX`] x [`BOX`] ([`fit_picture`]).
    pub picture: RgbaImage,
    /// The picture's size in pixels, for its caption.
    pub size: (u32, u32),
    /// The model's 28x28 input, row-major, 0 = black.
    pub input: Vec<u8>,
    /// The best classes, best first, with their probabilities.
    pub top: Vec<(usize, f32)>,
    /// Said in red under the classes (e.g. that nothing stood out from the background).
    pub warning: Option<String>,
}

/// The picture scaled to fit a [`BOX`]-pixel square: small ones grow by a whole factor with
/// nearest neighbour (their pixels stay sharp), large ones shrink smoothly.
pub fn fit_picture(img: &DynamicImage) -> RgbaImage {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    if w == 0 || h == 0 {
        return rgba;
    }
    let side = w.max(h);
    if side <= BOX {
        let k = BOX / side;
        return imageops::resize(&rgba, w * k, h * k, FilterType::Nearest);
    }
    let scale = BOX as f64 / side as f64;
    let (nw, nh) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    imageops::resize(&rgba, nw, nh, FilterType::Triangle)
}

/// Draw the rows under a header line (e.g. the model's path); returns the PNG's size.
pub fn draw_pictures(header: &str, rows: &[PictureRow], out: &Path) -> Result<(u32, u32)> {
    check(rows, out)?;
    let size = (WIDTH, HEADER_H + rows.len() as u32 * ROW_H + PAD / 2);
    super::write_png(size, out, |root| {
        text::draw_left(root, &fit(header, 13.0, WIDTH - 2 * PAD), 13.0, GREY, PAD as i32, 10)?;
        for (i, row) in rows.iter().enumerate() {
            let top = (HEADER_H + i as u32 * ROW_H) as i32;
            root.draw(&PathElement::new([(PAD as i32, top), ((WIDTH - PAD) as i32, top)], RULE))?;
            draw_row(&root.clone().shrink((0, top), (WIDTH, ROW_H)), row)?;
        }
        Ok(())
    })?;
    Ok(size)
}

fn check(rows: &[PictureRow], out: &Path) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::input(format!("no pictures to draw into {}", out.display())));
    }
    if rows.len() > MAX_PICTURES {
        return Err(Error::input(format!("{} pictures are too many for one picture grid (at most {MAX_PICTURES}); pass --count {MAX_PICTURES} or fewer", rows.len())));
    }
    for r in rows {
        let (w, h) = r.picture.dimensions();
        if r.input.len() != PIXELS || w > BOX || h > BOX || r.top.iter().any(|&(c, p)| c >= CLASS_NAMES.len() || !(0.0..=1.0).contains(&p)) {
            return Err(Error::input(format!("{}: not a picture row to draw (28x28 input, a fitted picture, classes 0-9 with probabilities)", r.name)));
        }
    }
    Ok(())
}

/// One row: the name (and a warning), the two boxes with captions, the top classes.
fn draw_row(area: &DrawingArea<BitMapBackend, Shift>, r: &PictureRow) -> DrawResult {
    text::draw_left(area, &fit(&r.name, 15.0, WIDTH - 2 * PAD), 15.0, INK, PAD as i32, 7)?;
    let (x1, x2, y) = (PAD, PAD + BOX + ARROW_W, NAME_H);
    draw_picture_box(area, &r.picture, (x1, y))?;
    draw_input_box(area, &r.input, (x2, y))?;
    text::draw_centred(area, "→", 26.0, GREY, (x1 + BOX + ARROW_W / 2) as i32, (y + BOX / 2) as i32 - 16)?;
    let caption_top = (y + BOX + 5) as i32;
    text::draw_centred(area, &format!("picture {}×{}", r.size.0, r.size.1), 12.0, GREY, (x1 + BOX / 2) as i32, caption_top)?;
    text::draw_centred(area, "model input 28×28", 12.0, GREY, (x2 + BOX / 2) as i32, caption_top)?;
    let tx = x2 + BOX + TEXT_GAP;
    for (k, &(class, p)) in r.top.iter().enumerate().take(3) {
        draw_entry(area, (tx, y + 2 + k as u32 * ENTRY_H), class, p, k == 0)?;
    }
    // The warning under the classes, in as many lines of the column as it takes (two at most).
    let mut line_top = (y + 2 + 3 * ENTRY_H) as i32;
    for line in wrap(r.warning.as_deref().unwrap_or(""), 12.0, TEXT_W).into_iter().take(2) {
        text::draw_left(area, &line, 12.0, WARN, tx as i32, line_top)?;
        line_top += 16;
    }
    Ok(())
}

/// `s` in lines at most `max_w` pixels wide, broken between words.
fn wrap(s: &str, size: f32, max_w: u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split_whitespace() {
        match lines.last_mut() {
            Some(l) if text::width(&format!("{l} {word}"), size) <= max_w as f32 => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The picture centred in its box, on a checkerboard where it is transparent, framed.
fn draw_picture_box(area: &DrawingArea<BitMapBackend, Shift>, pic: &RgbaImage, (x, y): (u32, u32)) -> DrawResult {
    let transparent = pic.pixels().any(|p| p[3] < 255);
    let mut canvas = RgbaImage::from_fn(BOX, BOX, |cx, cy| match transparent && (cx / 10 + cy / 10) % 2 == 0 {
        true => Rgba([225, 225, 225, 255]),
        false => Rgba([255, 255, 255, 255]),
    });
    let (w, h) = pic.dimensions();
    let (ox, oy) = ((BOX - w) / 2, (BOX - h) / 2);
    imageops::overlay(&mut canvas, pic, ox as i64, oy as i64);
    let rgb = DynamicImage::ImageRgba8(canvas).into_rgb8().into_raw();
    let element = BitMapElement::with_owned_buffer((x as i32, y as i32), (BOX, BOX), rgb).ok_or("the picture does not fill its buffer")?;
    area.draw(&element)?;
    // An opaque picture smaller than its box gets its own outline: a white page stays visible.
    if !transparent && (w < BOX || h < BOX) && w > 0 && h > 0 {
        let (px, py) = ((x + ox) as i32, (y + oy) as i32);
        area.draw(&Rectangle::new([(px, py), (px + w as i32 - 1, py + h as i32 - 1)], OUTLINE))?;
    }
    frame(area, (x, y))
}

/// The model's input, 5 pixels for each of its pixels, framed.
fn draw_input_box(area: &DrawingArea<BitMapBackend, Shift>, input: &[u8], (x, y): (u32, u32)) -> DrawResult {
    let side = SIDE as u32;
    let gray = image::GrayImage::from_fn(side, side, |cx, cy| image::Luma([input[(cy * side + cx) as usize]]));
    let big = imageops::resize(&gray, BOX, BOX, FilterType::Nearest);
    let rgb = DynamicImage::ImageLuma8(big).into_rgb8().into_raw();
    let element = BitMapElement::with_owned_buffer((x as i32, y as i32), (BOX, BOX), rgb).ok_or("the input does not fill its buffer")?;
    area.draw(&element)?;
    frame(area, (x, y))
}

fn frame(area: &DrawingArea<BitMapBackend, Shift>, (x, y): (u32, u32)) -> DrawResult {
    let (x, y, s) = (x as i32, y as i32, BOX as i32);
    area.draw(&Rectangle::new([(x - 1, y - 1), (x + s, y + s)], FRAME))?;
    Ok(())
}

/// A class: its name and probability on a line, a bar as long as the probability below.
fn draw_entry(area: &DrawingArea<BitMapBackend, Shift>, (x, y): (u32, u32), class: usize, p: f32, first: bool) -> DrawResult {
    let size = if first { 16.0 } else { 14.0 };
    let color = if first { INK } else { GREY };
    text::draw_left(area, CLASS_NAMES[class], size, color, x as i32, y as i32)?;
    let pct = percent(p);
    let right = (x + TEXT_W) as i32 - text::width(&pct, size).ceil() as i32;
    text::draw_left(area, &pct, size, color, right, y as i32)?;
    let (bx, by) = (x as i32, (y + 23) as i32);
    area.draw(&Rectangle::new([(bx, by), (bx + TEXT_W as i32 - 1, by + 7)], TRACK.filled()))?;
    let len = (TEXT_W as f32 * p).round() as i32;
    if len > 0 {
        area.draw(&Rectangle::new([(bx, by), (bx + len - 1, by + 7)], if first { TOP_BAR } else { OTHER_BAR }.filled()))?;
    }
    Ok(())
}

/// A probability in percent with one decimal, rounded down as the prediction grid's are (a
/// near-certain 0.9998 reads 99.9%, never 100.0%), and "<0.1%" for a small one that is not 0.
fn percent(p: f32) -> String {
    let tenths = (p as f64 * 1000.0).floor();
    match tenths {
        0.0 if p > 0.0 => "<0.1%".to_string(),
        t => format!("{:.1}%", t / 10.0),
    }
}

/// `s`, shortened with an ellipsis in the middle until it is at most `max_w` pixels wide (a
/// path keeps its start and its file name).
fn fit(s: &str, size: f32, max_w: u32) -> String {
    let chars: Vec<char> = s.chars().collect();
    if text::width(s, size) <= max_w as f32 {
        return s.to_string();
    }
    for keep in (2..chars.len()).rev() {
        let (head, tail) = (keep / 3, keep - keep / 3);
        let t: String = chars[..head].iter().chain(['…'].iter()).chain(chars[chars.len() - tail..].iter()).collect();
        if text::width(&t, size) <= max_w as f32 {
            return t;
        }
    }
    "…".to_string()
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn row(name: &str, warning: Option<&str>) -> PictureRow {
        let t = tile(9, 9);
        let big = DynamicImage::ImageLuma8(image::GrayImage::from_fn(300, 200, |x, y| image::Luma([((x + y) % 256) as u8])));
        PictureRow {
            name: name.to_string(),
            picture: fit_picture(&big),
            size: (300, 200),
            input: t.pixels,
            top: vec![(9, 0.81), (5, 0.12), (7, 0.05)],
            warning: warning.map(String::from),
        }
    }

    #[test]
    fn the_input_is_drawn_five_times_enlarged_in_its_box() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pictures.png");
        let mut r = row("boot.png", None);
        r.input.fill(0);
        r.input[0] = 200;
        r.input[PIXELS - 1] = 77;
        let (w, h) = draw_pictures("model: run/model.bpk", &[r], &p).unwrap();
        assert_eq!((w, h), (WIDTH, HEADER_H + ROW_H + PAD / 2));
        let img = open(&p);
        let (ix, iy) = (PAD + BOX + ARROW_W, HEADER_H + NAME_H);
        for d in 0..5 {
            assert_eq!(img.get_pixel(ix + d, iy + d).0, [200; 3]);
            assert_eq!(img.get_pixel(ix + BOX - 1 - d, iy + BOX - 1 - d).0, [77; 3]);
        }
        assert_eq!(img.get_pixel(ix + 5, iy).0, [0; 3]);
        assert_eq!(img.get_pixel(ix - 1, iy + 10).0, [FRAME.0, FRAME.1, FRAME.2], "framed");
        // The top class's bar: blue, about 81 % of the track.
        let bar_y = iy + 2 + 23 + 4;
        let tx = ix + BOX + TEXT_GAP;
        let blue = (tx..tx + TEXT_W).filter(|&x| img.get_pixel(x, bar_y).0 == [TOP_BAR.0, TOP_BAR.1, TOP_BAR.2]).count();
        assert!((blue as f32 - 0.81 * TEXT_W as f32).abs() <= 1.0, "{blue}");
        assert_eq!(count(&img, is_red), 0);
    }

    #[test]
    fn a_warning_is_red_and_rows_stack() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pictures.png");
        let rows = [row("a.png", None), row("blank.png", Some("nothing stands out from the background")), row(&"long/".repeat(40), None)];
        let (_, h) = draw_pictures("model", &rows, &p).unwrap();
        assert_eq!(h, HEADER_H + 3 * ROW_H + PAD / 2);
        let img = open(&p);
        let red: Vec<(u32, u32)> = (0..h).flat_map(|y| (0..WIDTH).map(move |x| (x, y))).filter(|&(x, y)| is_red(img.get_pixel(x, y))).collect();
        assert!(red.len() > 100, "{}", red.len());
        let column = PAD + 2 * BOX + ARROW_W + TEXT_GAP;
        let row2 = HEADER_H + ROW_H + NAME_H..HEADER_H + 2 * ROW_H;
        assert!(red.iter().all(|&(x, y)| x >= column && row2.contains(&y)), "red only under the second row's classes");
    }

    #[test]
    fn pictures_fit_their_box_and_small_ones_stay_sharp() {
        let small = DynamicImage::ImageLuma8(image::GrayImage::from_fn(28, 20, |x, _| image::Luma([if x == 0 { 255 } else { 0 }])));
        let f = fit_picture(&small);
        assert_eq!(f.dimensions(), (140, 100));
        assert_eq!((f.get_pixel(4, 0)[0], f.get_pixel(5, 0)[0]), (255, 0));
        let tall = DynamicImage::ImageLuma8(image::GrayImage::new(500, 1000));
        assert_eq!(fit_picture(&tall).dimensions(), (70, 140));
    }

    #[test]
    fn bad_rows_are_input_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        assert!(matches!(draw_pictures("m", &[], &p), Err(Error::Input(_))));
        let mut r = row("a.png", None);
        r.input.pop();
        assert!(matches!(draw_pictures("m", &[r], &p), Err(Error::Input(_))));
        let many = vec![row("a.png", None); MAX_PICTURES + 1];
        assert!(draw_pictures("m", &many, &p).unwrap_err().to_string().contains("--count 64"));
        assert!(!p.exists());
    }

    #[test]
    fn warnings_wrap_between_words() {
        let lines = wrap("nothing stands out from the background: the classes are a guess", 12.0, TEXT_W);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| text::width(l, 12.0) <= TEXT_W as f32));
        assert_eq!(lines.join(" "), "nothing stands out from the background: the classes are a guess");
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!([percent(0.999_837), percent(1.0), percent(0.5946), percent(0.000_07), percent(0.0)], ["99.9%", "100.0%", "59.4%", "<0.1%", "0.0%"]);
    }

    #[test]
    fn long_names_keep_their_start_and_end() {
        let s = fit("/very/long/folder/of/pictures/and/more/folders/shoe.png", 15.0, 200);
        assert!(s.contains('…') && s.ends_with("shoe.png") && s.starts_with('/'), "{s}");
        assert!(text::width(&s, 15.0) <= 200.0);
    }

    /// Renders a sample grid; with PLOT_SAMPLES_DIR set it is kept there for a look.
    #[test]
    fn sample_pictures() {
        let (_tmp, dir) = samples_dir();
        let rows = [row("pictures/boot.jpg", None), row("pictures/blank.png", Some("nothing stands out from the background: a guess"))];
        draw_pictures("model: artifacts/model.bpk (784-256-10 relu)", &rows, &dir.join("pictures.png")).unwrap();
    }
}
