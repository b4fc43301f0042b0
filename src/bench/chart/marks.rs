//! The marks the chart is drawn with, in pixels on the picture: bars (solid, or hatched so that
//! they are told apart without colour), whiskers, rules, and text in a few looks. It knows
//! nothing of benchmarks; `chart` decides what goes where.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Text and whiskers; secondary text and the axes; rules; grid lines.
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const MUTED: RGBColor = RGBColor(0x5f, 0x5f, 0x5f);
pub const RULE: RGBColor = RGBColor(0xc8, 0xc8, 0xc8);
pub const GRID: RGBColor = RGBColor(0xe6, 0xe6, 0xe6);

/// How a bar is filled: solid, or a light fill with diagonal lines in `ink` and an outline, so
/// that a share or a reference row is told apart in grey print too.
#[derive(Clone, Copy)]
pub enum Fill {
    Solid(RGBColor),
    Hatched { fill: RGBColor, ink: RGBColor },
}

/// The colour a bar is filled with, as red, green, blue.
pub const fn rgb(fill: Fill) -> (u8, u8, u8) {
    match fill {
        Fill::Solid(RGBColor(r, g, b)) | Fill::Hatched { fill: RGBColor(r, g, b), .. } => (r, g, b),
    }
}

/// A bar between two corners in pixels, at least one pixel wide: a value too small for the
/// scale still shows.
pub fn bar(root: &Area, (x0, y0): (i32, i32), (x1, y1): (i32, i32), fill: Fill) -> Drawn {
    let x1 = x1.max(x0 + 1);
    match fill {
        Fill::Solid(color) => root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled())),
        Fill::Hatched { fill, ink } => {
            root.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))?;
            hatch(root, (x0, y0), (x1, y1), ink)?;
            root.draw(&Rectangle::new([(x0, y0), (x1, y1)], ink.stroke_width(1)))
        }
    }
}

/// Diagonal lines (`/`) 6 pixels apart inside a rectangle.
fn hatch(root: &Area, (x0, y0): (i32, i32), (x1, y1): (i32, i32), ink: RGBColor) -> Drawn {
    const STEP: usize = 6;
    for c in (x0 + y0 + 3..x1 + y1).step_by(STEP) {
        let (from, to) = ((c - y1).max(x0), (c - y0).min(x1));
        if from < to {
            let line = vec![(from, c - from), (to, c - to)];
            root.draw(&PathElement::new(line, ink.stroke_width(1)))?;
        }
    }
    Ok(())
}

/// A line from `min` to `max` with caps at both ends.
pub fn whisker(root: &Area, min: i32, max: i32, y: i32) -> Drawn {
    let style = INK.stroke_width(2);
    root.draw(&PathElement::new(vec![(min, y), (max, y)], style))?;
    for x in [min, max] {
        root.draw(&PathElement::new(vec![(x, y - 7), (x, y + 7)], style))?;
    }
    Ok(())
}

/// A horizontal line across `from..to`.
pub fn rule(root: &Area, y: i32, from: i32, to: i32, color: RGBColor) -> Drawn {
    root.draw(&PathElement::new(vec![(from, y), (to, y)], color.stroke_width(1)))
}

/// A dashed horizontal line across `from..to`.
pub fn dashed(root: &Area, y: i32, from: i32, to: i32) -> Drawn {
    let points = [(from, y), (to, y)].into_iter();
    root.draw(&DashedPathElement::new(points, 6, 5, MUTED.stroke_width(1)))
}

/// How a piece of text looks: size in CSS pixels, colour, weight and which side of its point
/// it sits on.
#[derive(Clone, Copy)]
pub struct Look {
    pub px: f64,
    color: RGBColor,
    style: FontStyle,
    h: HPos,
    v: VPos,
}

impl Look {
    pub const TITLE: Look = Look::left(28.0, INK, FontStyle::Bold, VPos::Top);
    pub const SUBTITLE: Look = Look::left(16.0, MUTED, FontStyle::Normal, VPos::Top);
    pub const HEADER: Look = Look::left(19.0, INK, FontStyle::Bold, VPos::Center);
    pub const NOTE: Look = Look::left(14.0, MUTED, FontStyle::Normal, VPos::Center);
    pub const DIR: Look = Look::left(16.5, INK, FontStyle::Bold, VPos::Center);
    pub const NAME: Look = Look::right(17.0, INK, FontStyle::Normal);
    pub const DETAIL: Look = Look::right(13.5, MUTED, FontStyle::Normal);
    pub const APART: Look = Look::right(14.0, MUTED, FontStyle::Italic);
    pub const VALUE: Look = Look::left(15.5, INK, FontStyle::Bold, VPos::Center);
    pub const SPREAD: Look = Look::left(13.0, MUTED, FontStyle::Normal, VPos::Center);
    pub const COUNT: Look = Look::left(13.0, INK, FontStyle::Normal, VPos::Center);
    pub const MISSING: Look = Look::left(14.0, MUTED, FontStyle::Italic, VPos::Center);
    pub const TICK: Look = Look::left(13.0, MUTED, FontStyle::Normal, VPos::Center);
    pub const CAPTION: Look = Look::left(14.0, MUTED, FontStyle::Normal, VPos::Center);

    const fn left(px: f64, color: RGBColor, style: FontStyle, v: VPos) -> Look {
        Look { px, color, style, h: HPos::Left, v }
    }

    const fn right(px: f64, color: RGBColor, style: FontStyle) -> Look {
        Look { px, color, style, h: HPos::Right, v: VPos::Center }
    }

    /// About how many pixels `text` takes: no font is at hand to measure it, and the viewer
    /// picks its own sans-serif; digits and most letters are about 0.55 em wide, bold 0.6.
    pub fn width(self, text: &str) -> f64 {
        let em = if matches!(self.style, FontStyle::Bold) { 0.6 } else { 0.55 };
        text.chars().count() as f64 * self.px * em
    }

    pub fn style(self) -> TextStyle<'static> {
        // The SVG backend writes a font size of size / 1.24.
        FontDesc::new(FontFamily::SansSerif, self.px * 1.24, self.style)
            .color(&self.color)
            .pos(Pos::new(self.h, self.v))
    }
}

/// `text` at `at`, placed by `look`'s anchor; nothing for empty text.
pub fn write(root: &Area, text: &str, at: (i32, i32), look: Look) -> Drawn {
    if text.is_empty() {
        return Ok(());
    }
    root.draw(&Text::new(text.to_string(), at, look.style()))
}

/// Text fit for the picture: control characters escaped (`report::shown`), and the two
/// characters XML forbids even escaped replaced.
pub fn shown(text: &str) -> String {
    crate::report::shown(text).replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}")
}

/// `text` cut to `max` characters, the cut marked with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}
