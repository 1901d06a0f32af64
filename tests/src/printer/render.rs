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
        let row = g[(gy * 8 / h) as usize];
        // Pixel gx spans [gx*8, gx*8+8) in 1/w-ths of a glyph column: inked when at least half
        // of it lies over inked columns (every stroke as wide as the next at 1.5x). White on
        // black reads better thin: there, more than half.
        let (from, to) = (gx as u32 * 8, gx as u32 * 8 + 8);
        let covered: u32 = (0..8)
            .filter(|c| row >> c & 1 == 1)
            .map(|c| to.min((c + 1) * w).saturating_sub(from.max(c * w)))
            .sum();
        covered * 2 > 8 || (covered * 2 == 8 && !style.reverse)
    };
    // Emphasis: the glyph again, 2 dots to the right (a glyph column at size 1; at larger
    // sizes more would fill the counters of 0, 8 and #).
    let smear = 2;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::decode::Event;
    use crate::printer::ticket::TicketBuilder;

    /// A one-ticket printout of `(text, style)` lines at `columns`.
    fn ticket(columns: u16, lines: &[(&str, Style)]) -> Ticket {
        let mut b = TicketBuilder::new(columns);
        for (text, style) in lines {
            let text = text.to_string();
            b.apply(&Event::Text {
                text,
                style: *style,
            });
            b.apply(&Event::Feed { lines: 1 });
        }
        b.apply(&Event::Cut { partial: false })
            .expect("a cut ends the ticket")
    }

    /// The decoded picture: (width, height, pixels).
    fn pixels(t: &Ticket) -> (u32, u32, Vec<u8>) {
        let bytes = png(t).expect("drawn");
        let mut reader = ::png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, ::png::ColorType::Grayscale);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// Ink pixels of row band `rows`, and the leftmost and rightmost inked columns.
    fn ink(p: &(u32, u32, Vec<u8>), rows: std::ops::Range<u32>) -> (usize, u32, u32) {
        let (w, _, px) = p;
        let (mut n, mut left, mut right) = (0, u32::MAX, 0);
        for y in rows {
            for x in 0..*w {
                if px[(y * w + x) as usize] == 0 {
                    n += 1;
                    left = left.min(x);
                    right = right.max(x);
                }
            }
        }
        (n, left, right)
    }

    #[test]
    fn paper_width_follows_the_columns() {
        let plain = Style::default();
        assert_eq!(pixels(&ticket(48, &[("A", plain)])).0, 576);
        assert_eq!(pixels(&ticket(32, &[("A", plain)])).0, 384);
    }

    #[test]
    fn styles_show_in_the_picture() {
        let plain = Style::default();
        let bold = Style {
            bold: true,
            ..plain
        };
        let big = Style {
            width: 2,
            height: 2,
            ..plain
        };
        let centered = Style {
            justify: Justify::Center,
            ..plain
        };
        let right = Style {
            justify: Justify::Right,
            ..plain
        };
        let reverse = Style {
            reverse: true,
            ..plain
        };
        let underline = Style {
            underline: 1,
            ..plain
        };
        let t = ticket(
            32,
            &[
                ("HELLO", plain),
                ("HELLO", bold),
                ("HELLO", big),
                ("HELLO", centered),
                ("HELLO", right),
                ("HELLO", reverse),
                ("_", plain),
                ("....", underline),
            ],
        );
        let p = pixels(&t);
        // Rows: margin 24, then 30 dots a line, 54 for the double-height one.
        let row = |top: u32, h: u32| top..top + h;
        let plain_ink = ink(&p, row(24, 24));
        let bold_ink = ink(&p, row(54, 24));
        let big_ink = ink(&p, row(84, 48));
        assert!(
            bold_ink.0 > plain_ink.0 * 5 / 4,
            "{bold_ink:?} vs {plain_ink:?}"
        );
        assert!(big_ink.0 > plain_ink.0 * 3, "{big_ink:?} vs {plain_ink:?}");
        assert!(big_ink.2 - big_ink.1 > (plain_ink.2 - plain_ink.1) * 3 / 2);
        let c = ink(&p, row(138, 24));
        assert!(((c.1 + c.2) / 2).abs_diff(192) < 6, "centred: {c:?}");
        let r = ink(&p, row(168, 24));
        assert!(r.2 >= 380 && r.1 > 300, "right: {r:?}");
        let rev = ink(&p, row(198, 24));
        // The cells black, the glyphs white (drawn thinner than black ones).
        let cells = 60 * 24;
        assert!(
            rev.0 >= cells - plain_ink.0 && rev.0 < cells - plain_ink.0 / 2,
            "white on black: {rev:?}"
        );
        let under = ink(&p, row(258 + 22, 2));
        assert_eq!(under.0, 4 * 12 * 2, "an underline under 4 dots: {under:?}");
    }
}
