//! Text for the bitmap pictures, laid out with each glyph's side bearing and the font's
//! kerning. plotters' own text placement drops the side bearing, so neighbours such as the "T"
//! and the "r" of "Trouser" ran into each other.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::FONT_BYTES;

/// One pixel of ink: where, how much, and which character of the text it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ink {
    pub x: i32,
    pub y: i32,
    pub coverage: f32,
    pub glyph: usize,
}

/// A line of text rasterised at `size` pixels, its top at y = 0 and its pen starting at x = 0;
/// also its advance width.
pub fn rasterize(text: &str, size: f32) -> (Vec<Ink>, f32) {
    let Ok(font) = FontRef::try_from_slice(FONT_BYTES) else {
        return (Vec::new(), 0.0);
    };
    let font = font.as_scaled(PxScale::from(size));
    let (mut pen, mut prev, mut ink) = (0.0f32, None, Vec::new());
    for (i, c) in text.chars().enumerate() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(size, point(pen, font.ascent()));
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    ink.push(Ink { x: b.min.x as i32 + x as i32, y: b.min.y as i32 + y as i32, coverage, glyph: i });
                }
            });
        }
        pen += font.h_advance(id);
        prev = Some(id);
    }
    (ink, pen)
}

/// The advance width of `text` at `size` pixels.
pub fn width(text: &str, size: f32) -> f32 {
    rasterize(text, size).1
}

/// Draw `text` from `x` (its pen's start), its top at `top`.
pub fn draw_left<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, size: f32, color: RGBColor, x: i32, top: i32) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for i in rasterize(text, size).0 {
        area.draw_pixel((x + i.x, top + i.y), &color.mix(i.coverage.min(1.0) as f64))?;
    }
    Ok(())
}

/// Draw `text` centred on `cx`, its top at `top`.
pub fn draw_centred<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, size: f32, color: RGBColor, cx: i32, top: i32) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (ink, w) = rasterize(text, size);
    let x0 = cx - (w / 2.0).round() as i32;
    for i in ink {
        area.draw_pixel((x0 + i.x, top + i.y), &color.mix(i.coverage.min(1.0) as f64))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels inked by more than one character.
    fn shared_pixels(text: &str, size: f32) -> usize {
        let (ink, _) = rasterize(text, size);
        let mut owner = std::collections::HashMap::new();
        let mut shared = 0;
        for i in ink.iter().filter(|i| i.coverage > 0.25) {
            match owner.insert((i.x, i.y), i.glyph) {
                Some(g) if g != i.glyph => shared += 1,
                _ => {}
            }
        }
        shared
    }

    #[test]
    fn neighbouring_letters_do_not_run_into_each_other() {
        for size in [11.0, 13.0, 16.0, 20.0] {
            for word in ["Trouser", "true: Trouser", "pred: T-shirt/top 0.99", "Ankle boot", "AVAWAY"] {
                assert_eq!(shared_pixels(word, size), 0, "{word} at {size} px");
            }
        }
    }

    #[test]
    fn text_has_ink_and_a_width_that_grows_with_it() {
        let (ink, w) = rasterize("Trouser", 14.0);
        assert!(ink.len() > 50, "{}", ink.len());
        assert!(w > width("Trou", 14.0) && w < 14.0 * 7.0, "{w}");
        assert!(ink.iter().all(|i| i.y >= 0 && i.y < 20), "ink stays on the line");
    }
}
