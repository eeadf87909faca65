//! Outside pictures for `predict --image`, converted the way Fashion-MNIST was made: grayscale,
//! a light garment on a black background, cropped to the garment, the longest side scaled to 28
//! and centred. A picture already in that format reaches the model unchanged.

use std::cmp::Reverse;
use std::path::Path;

use ::image::{GrayAlphaImage, GrayImage, Luma, imageops};

use crate::data::SIDE;
use crate::error::{Error, Result};

/// Levels up to this count as black (Fashion-MNIST's background is 0; JPEG and noise lift it).
const BLACK: u8 = 32;
/// Pixels brighter than this, once the background is at 0, belong to the object.
pub const OBJECT: u8 = 30;
/// Half-width of the band of levels gathered as one background (noise, uneven lighting).
const WINDOW: usize = 32;

/// A picture as the model's input: 28x28 bytes, row-major.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub pixels: Vec<u8>,
    /// The background was light, so the intensities were inverted.
    pub inverted: bool,
    /// The picture had transparent pixels; they were treated as background.
    pub transparent: bool,
    /// Already 28x28 on black, like the data set: passed through byte for byte.
    pub as_is: bool,
    /// Cropped from the picture's size to the object's bounding box (width, height).
    pub cropped: Option<((u32, u32), (u32, u32))>,
    /// Scaled from the (cropped) size to fit 28x28 (width, height).
    pub scaled: Option<((u32, u32), (u32, u32))>,
}

impl PreparedImage {
    /// What the conversion did that the user should know, as a suffix for the file's name:
    /// e.g. " (light background: inverted)", or "" when there is nothing to say.
    pub fn notes(&self) -> String {
        let mut notes = Vec::new();
        if self.transparent {
            notes.push("transparent background treated as background".to_string());
        }
        if self.inverted {
            notes.push("light background: inverted".to_string());
        }
        if let Some(((w, h), (cw, ch))) = self.cropped {
            notes.push(format!("cropped from {w}x{h} to the object's {cw}x{ch}"));
        }
        if let Some(((w, h), (nw, nh))) = self.scaled {
            notes.push(format!("scaled from {w}x{h} to {nw}x{nh} and centred on 28x28"));
        }
        if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
    }
}

/// Fewer pixels of the 28x28 input than this brighter than [`OBJECT`] (1 % of them) means that
/// nothing stood out from the background: a blank or uniform picture, whose classes mean nothing.
pub const BLANK_PIXELS: usize = 8;

impl PreparedImage {
    /// Nothing stood out from the background (see [`BLANK_PIXELS`]).
    pub fn is_blank(&self) -> bool {
        self.pixels.iter().filter(|&&p| p > OBJECT).count() < BLANK_PIXELS
    }
}

/// Read a PNG or JPEG file and convert it with [`prepare_luma_alpha`].
pub fn prepare_image(path: &Path) -> Result<PreparedImage> {
    read_picture(path).map(|(_, p)| p)
}

/// Read a PNG or JPEG file: the picture as decoded, and the model's input made from it.
pub fn read_picture(path: &Path) -> Result<(::image::DynamicImage, PreparedImage)> {
    if path.is_dir() {
        return Err(Error::input(format!("{}: is a folder; pass PNG or JPEG files to --image", path.display())));
    }
    let img = ::image::ImageReader::open(path)
        .map_err(|e| Error::input_with(format!("{}: cannot open", path.display()), e))?
        .with_guessed_format()
        .map_err(|e| Error::input_with(format!("{}: cannot read", path.display()), e))?
        .decode()
        .map_err(|e| {
            Error::input_with(format!("{}: not a readable PNG or JPEG image", path.display()), e).fix("pass a PNG or JPEG file")
        })?;
    let prepared = prepare_luma_alpha(&img.to_luma_alpha8());
    Ok((img, prepared))
}

/// Convert a grayscale picture with alpha: transparent parts become background, then
/// [`prepare_gray`].
pub fn prepare_luma_alpha(img: &GrayAlphaImage) -> PreparedImage {
    let transparent = img.pixels().any(|p| p[1] < 255);
    let gray = if transparent {
        flatten(img)
    } else {
        GrayImage::from_fn(img.width(), img.height(), |x, y| Luma([img.get_pixel(x, y)[0]]))
    };
    PreparedImage { transparent, ..prepare_gray(&gray) }
}

/// Composite onto a backdrop that contrasts with what is visible: black under a light object
/// (the data set's look already), white under a dark one (like the data set's product photos,
/// which are then inverted). Either way the transparent parts end as background.
fn flatten(img: &GrayAlphaImage) -> GrayImage {
    let (mut sum, mut weight) = (0u64, 0u64);
    for p in img.pixels() {
        sum += p[0] as u64 * p[1] as u64;
        weight += p[1] as u64;
    }
    let backdrop: u32 = if sum >= 128 * weight { 0 } else { 255 };
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let [l, a] = img.get_pixel(x, y).0.map(u32::from);
        Luma([((l * a + backdrop * (255 - a) + 127) / 255) as u8])
    })
}

/// Convert an opaque grayscale picture (see the module's documentation).
pub fn prepare_gray(gray: &GrayImage) -> PreparedImage {
    let border = border_pixels(gray);
    if in_dataset_format(gray, &border) {
        return PreparedImage { pixels: gray.as_raw().clone(), inverted: false, transparent: false, as_is: true, cropped: None, scaled: None };
    }
    let level = background_level(&border);
    let inverted = level > 127;
    let mut g = gray.clone();
    if inverted {
        imageops::invert(&mut g);
    }
    zero_background(&mut g, if inverted { 255 - level } else { level });
    let before = g.dimensions();
    let object = crop_to_object(g);
    let after = object.dimensions();
    let (pixels, size) = fit_to_canvas(&object);
    PreparedImage {
        pixels,
        inverted,
        transparent: false,
        as_is: false,
        cropped: (after != before).then_some((before, after)),
        scaled: (size != after).then_some((after, size)),
    }
}

fn border_pixels(g: &GrayImage) -> Vec<u8> {
    let (w, h) = g.dimensions();
    g.enumerate_pixels()
        .filter(|&(x, y, _)| x == 0 || y == 0 || x + 1 == w || y + 1 == h)
        .map(|(_, _, p)| p[0])
        .collect()
}

/// 28x28 with a black background. Garments often fill most of the frame, so a quarter of the
/// border being black is enough (a drawing on a light background has next to none).
fn in_dataset_format(g: &GrayImage, border: &[u8]) -> bool {
    let black = border.iter().filter(|&&p| p <= BLACK).count();
    g.dimensions() == (SIDE as u32, SIDE as u32) && black * 4 >= border.len()
}

/// The background's level: the band of levels most common at the edges (ties: the darker),
/// refined to the median of the edge pixels in it. A mean or median of the whole border is
/// pulled towards an object that touches the edges.
fn background_level(border: &[u8]) -> u8 {
    let mut hist = [0usize; 256];
    for &p in border {
        hist[p as usize] += 1;
    }
    let band = |c: usize| c.saturating_sub(WINDOW)..=(c + WINDOW).min(255);
    let centre = (0..256).max_by_key(|&c| (hist[band(c)].iter().sum::<usize>(), Reverse(c))).unwrap_or(0);
    let mut near: Vec<u8> = border.iter().copied().filter(|&p| band(centre).contains(&(p as usize))).collect();
    near.sort_unstable();
    near.get(near.len() / 2).copied().unwrap_or(0)
}

/// Map `level` to 0 and keep 255, linearly: the data set's background is 0, not grey.
fn zero_background(g: &mut GrayImage, level: u8) {
    let (b, span) = (level as u32, 255 - level as u32);
    for p in g.pixels_mut() {
        let v = (p[0] as u32).saturating_sub(b);
        p[0] = ((v * 255 + span / 2) / span.max(1)).min(255) as u8;
    }
}

/// The bounding box of the pixels brighter than [`OBJECT`]; the whole picture if none.
fn crop_to_object(g: GrayImage) -> GrayImage {
    let (w, h) = g.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in g.enumerate_pixels() {
        if p[0] > OBJECT {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 || y0 > y1 {
        return g;
    }
    imageops::crop_imm(&g, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image()
}

/// Scale the longest side to 28 and centre on a black 28x28 canvas; also the scaled size.
fn fit_to_canvas(g: &GrayImage) -> (Vec<u8>, (u32, u32)) {
    let mut canvas = GrayImage::new(SIDE as u32, SIDE as u32);
    let (w, h) = g.dimensions();
    if w == 0 || h == 0 {
        return (canvas.into_raw(), (w, h));
    }
    let scale = SIDE as f64 / w.max(h) as f64;
    let nw = ((w as f64 * scale).round() as u32).clamp(1, SIDE as u32);
    let nh = ((h as f64 * scale).round() as u32).clamp(1, SIDE as u32);
    let resized = imageops::resize(g, nw, nh, imageops::FilterType::Lanczos3);
    let (ox, oy) = ((SIDE as u32 - nw) / 2, (SIDE as u32 - nh) / 2);
    imageops::overlay(&mut canvas, &resized, ox as i64, oy as i64);
    (canvas.into_raw(), (nw, nh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{ImageBuffer, LumaA, Rgba, RgbaImage};

    use crate::data::PIXELS;

    /// Fill a rectangle `[x0, x1) x [y0, y1)`.
    fn fill<P: ::image::Pixel>(img: &mut ImageBuffer<P, Vec<P::Subpixel>>, (x0, x1): (u32, u32), (y0, y1): (u32, u32), p: P) {
        for y in y0..y1 {
            for x in x0..x1 {
                img.put_pixel(x, y, p);
            }
        }
    }

    fn round_trip(img: ::image::DynamicImage) -> PreparedImage {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        img.save(&path).unwrap();
        prepare_image(&path).unwrap()
    }

    #[test]
    fn light_background_is_inverted_and_the_object_centred() {
        // A dark 20x10 bar on a white 100x60 picture.
        let mut img = GrayImage::from_pixel(100, 60, Luma([250]));
        fill(&mut img, (10, 30), (20, 30), Luma([10]));
        let p = prepare_gray(&img);
        assert!(p.inverted && !p.as_is);
        assert_eq!(p.pixels.len(), PIXELS);
        // The bar now spans the full width and is bright; the corners are dark.
        assert!(p.pixels[14 * SIDE + 14] > 200);
        assert!(p.pixels[0] < 30);
        let dark = prepare_gray(&GrayImage::from_pixel(10, 10, Luma([0])));
        assert!(!dark.inverted);
        // 28x28 is not enough to be taken as is: the background must be black.
        let mut img = GrayImage::from_pixel(28, 28, Luma([250]));
        fill(&mut img, (4, 24), (10, 18), Luma([10]));
        let p = prepare_gray(&img);
        assert!(p.inverted && !p.as_is);
        assert!(p.pixels[14 * SIDE + 14] > 200);
    }

    #[test]
    fn dataset_images_pass_through_byte_for_byte() {
        // Noisy near-black backgrounds: a small garment (no crop, no rescale), and one covering
        // two thirds of the border (no inversion).
        let noisy = |i: u32| ((i * 37 + i / 28 * 11) % 33) as u8;
        let mut small = GrayImage::from_fn(28, 28, |x, y| Luma([noisy(y * 28 + x)]));
        fill(&mut small, (8, 20), (6, 22), Luma([200]));
        let mut wide = GrayImage::from_fn(28, 28, |x, y| Luma([noisy(y * 28 + x)]));
        fill(&mut wide, (0, 28), (2, 28), Luma([240]));
        fill(&mut wide, (10, 18), (27, 28), Luma([0]));
        for img in [small, wide] {
            for dynamic in [::image::DynamicImage::ImageLuma8(img.clone()), ::image::DynamicImage::ImageLuma8(img.clone()).to_rgb8().into()] {
                let p = round_trip(dynamic);
                assert!(p.as_is && !p.inverted && !p.transparent);
                assert_eq!(p.pixels, img.as_raw().clone());
            }
        }
    }

    #[test]
    fn transparent_background_is_background_not_black_fill() {
        // A bright shape on a transparent background whose hidden colour is white.
        let mut img = RgbaImage::from_pixel(60, 40, Rgba([255, 255, 255, 0]));
        fill(&mut img, (20, 40), (5, 35), Rgba([220, 220, 220, 255]));
        let p = round_trip(img.into());
        assert!(p.transparent && !p.inverted);
        assert!(p.notes().starts_with(" (transparent background treated as background; cropped from 60x40"), "{}", p.notes());
        assert_eq!(p.pixels[0], 0);
        assert!(p.pixels[14 * SIDE + 14] > 200);
        // A dark shape on transparency is a garment photographed on white: inverted.
        let mut img = GrayAlphaImage::from_pixel(60, 40, LumaA([0, 0]));
        fill(&mut img, (20, 40), (5, 35), LumaA([30, 255]));
        let p = prepare_luma_alpha(&img);
        assert!(p.transparent && p.inverted);
        assert!(p.notes().starts_with(" (transparent background treated as background; light background: inverted; cropped"), "{}", p.notes());
        assert_eq!(p.pixels[0], 0);
        assert!(p.pixels[14 * SIDE + 14] > 200);
    }

    #[test]
    fn grey_backdrop_ends_at_zero_after_inversion() {
        // Two dark bars on grey 190; the backdrop between them lies inside the cropped box.
        let mut img = GrayImage::from_pixel(100, 60, Luma([190]));
        fill(&mut img, (10, 20), (10, 51), Luma([30]));
        fill(&mut img, (40, 51), (10, 51), Luma([30]));
        let p = prepare_gray(&img);
        assert!(p.inverted);
        assert_eq!(p.pixels[14 * SIDE + 14], 0, "backdrop between the bars");
        assert_eq!(p.pixels[14], 0);
        assert!(p.pixels[14 * SIDE + 2] > 200, "a bar");
    }

    #[test]
    fn background_is_the_commonest_band_at_the_edges() {
        // 40% light backdrop, 60% a textured object touching the edges: the backdrop wins.
        let mut border: Vec<u8> = vec![235; 40];
        border.extend((0..60).map(|i| (i * 3) as u8));
        assert_eq!(background_level(&border), 235);
        assert_eq!(background_level(&[5, 9, 7, 200, 6]), 7);
        assert_eq!(background_level(&[]), 0);
    }

    #[test]
    fn the_notes_say_when_a_picture_was_cropped_or_rescaled() {
        // A light object on black filling a 280x280 picture: scaled, not cropped.
        let full = GrayImage::from_pixel(280, 280, Luma([200]));
        let mut framed = GrayImage::new(280, 280);
        fill(&mut framed, (40, 240), (0, 280), Luma([200]));
        let p = prepare_gray(&framed);
        assert!(p.notes().contains("cropped from 280x280 to the object's 200x280"), "{}", p.notes());
        assert!(p.notes().contains("scaled from 200x280 to 20x28"), "{}", p.notes());
        let q = prepare_gray(&full);
        assert!(q.notes().contains("scaled from 280x280 to 28x28"), "{}", q.notes());
        // A 28x28 picture in the data set's format says nothing.
        let mut small = GrayImage::new(28, 28);
        fill(&mut small, (10, 18), (5, 23), Luma([220]));
        assert_eq!(prepare_gray(&small).notes(), "");
    }

    #[test]
    fn blank_and_uniform_pictures_are_found_blank_and_garments_are_not() {
        for level in [0u8, 90, 128, 200, 255] {
            assert!(prepare_gray(&GrayImage::from_pixel(300, 200, Luma([level]))).is_blank(), "uniform {level}");
        }
        // Faint noise on white (a scanned blank page): still nothing.
        let noisy = GrayImage::from_fn(120, 90, |x, y| Luma([240 + ((x * 7 + y * 13) % 16) as u8]));
        assert!(prepare_gray(&noisy).is_blank());
        let mut shirt = GrayImage::from_pixel(100, 60, Luma([250]));
        fill(&mut shirt, (40, 60), (10, 50), Luma([40]));
        assert!(!prepare_gray(&shirt).is_blank());
        // A sparse garment in the data set's format (a sandal's straps): not blank.
        let mut sandal = GrayImage::new(28, 28);
        fill(&mut sandal, (4, 24), (18, 20), Luma([180]));
        assert!(!prepare_gray(&sandal).is_blank());
    }

    #[test]
    fn degenerate_pictures_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (1, 50), (300, 1)] {
            assert_eq!(prepare_gray(&GrayImage::from_pixel(w, h, Luma([200]))).pixels.len(), PIXELS);
            assert_eq!(prepare_luma_alpha(&GrayAlphaImage::new(w, h)).pixels.len(), PIXELS);
        }
    }
}
