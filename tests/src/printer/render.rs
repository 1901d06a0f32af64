//! Drawing a ticket: white paper, black ink, one 8x8 bitmap glyph scaled into each character
//! cell (12x24 dots for font A), multiplied by the size, bold smeared, underline and reverse
//! drawn, lines justified. Owns the picture, not the layout of lines (that is the ticket's).

use anyhow::Context;
use font8x8::UnicodeFonts;

use super::decode::{Justify, Style};
use super::ticket::{cell, char_dots, PrintedLine, Ticket, DOTS_PER_COLUMN};

/// Paper above the first line and below the last.
const MARGIN: u32 = 24;
/// Minimum line pitch: ESC 2's default line spacing, 30 dots.
const LINE_PITCH: u32 = 30;

struct Canvas {
    width: u32,
    height: u32,
    /// 255 paper, 0 ink.
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: u32, y: u32, ink: bool) {
        if x < self.width && y < self.height {
            self.px[(y * self.width + x) as usize] = if ink { 0 } else { 255 };
        }
    }
}

fn row_height(line: &PrintedLine) -> u32 {
    line.runs
        .iter()
        .map(|r| cell(r.style.font).1 * u32::from(r.style.height.max(1)))
        .max()
        .unwrap_or(24)
}

fn pitch(line: &PrintedLine) -> u32 {
    (row_height(line) + 6).max(LINE_PITCH)
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::BOX_FONTS.get(c))
        .or_else(|| font8x8::BLOCK_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::MISC_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// Draws `c` in its cell, top-left corner at (x, y).
fn draw_char(canvas: &mut Canvas, c: char, style: &Style, x: u32, y: u32) {
    let (cw, ch) = cell(style.font);
    let (w, h) = (
        cw * u32::from(style.width.max(1)),
        ch * u32::from(style.height.max(1)),
    );
    let g = glyph(c);
    let ink_at = |gx: i64, gy: u32| -> bool {
        if gx < 0 {
            return false;
        }
        let (bx, by) = ((gx as u32 * 8 / w) as usize, (gy * 8 / h) as usize);
        g[by] >> bx & 1 == 1
    };
    let smear = i64::from(style.width.max(1));
    let thick = style.bold || style.double_strike;
    let underline = match style.underline {
        0 => 0,
        1 => 2,
        _ => 4,
    } * u32::from(style.height.max(1));
    for dy in 0..h {
        for dx in 0..w {
            let gx = i64::from(dx);
            let mut ink = ink_at(gx, dy) || (thick && ink_at(gx - smear, dy));
            if dy >= h - underline.min(h) {
                ink = true;
            }
            canvas.set(x + dx, y + dy, ink != style.reverse);
        }
    }
}

fn draw_line(canvas: &mut Canvas, line: &PrintedLine, top: u32) {
    let used = line.dots().min(canvas.width);
    let mut x = match line.justify() {
        Justify::Left => 0,
        Justify::Center => (canvas.width - used) / 2,
        Justify::Right => canvas.width - used,
    };
    let bottom = top + row_height(line);
    for run in &line.runs {
        let h = cell(run.style.font).1 * u32::from(run.style.height.max(1));
        for c in run.text.chars() {
            draw_char(canvas, c, &run.style, x, bottom - h);
            x += char_dots(&run.style);
        }
    }
}

/// The ticket as a grayscale PNG, `columns * 12` px wide.
pub fn png(ticket: &Ticket) -> anyhow::Result<Vec<u8>> {
    let width = u32::from(ticket.columns) * DOTS_PER_COLUMN;
    let height = MARGIN * 2 + ticket.lines.iter().map(pitch).sum::<u32>();
    let mut canvas = Canvas {
        width,
        height,
        px: vec![255; (width * height) as usize],
    };
    let mut top = MARGIN;
    for line in &ticket.lines {
        draw_line(&mut canvas, line, top);
        top += pitch(line);
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("PNG header")?;
    writer
        .write_image_data(&canvas.px)
        .context("PNG image data")?;
    writer.finish().context("PNG end")?;
    Ok(out)
}
