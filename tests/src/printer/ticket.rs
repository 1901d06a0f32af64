//! A printed ticket: everything between two cuts, as lines of styled runs. Owns the paper's
//! geometry (how many dots a character takes, where a line too long for the paper wraps) and
//! the assembly of decoder events into tickets.

use super::decode::{Event, Justify, Style};

/// Dots across the paper per font A column (80 mm paper: 48 columns = 576 dots).
pub const DOTS_PER_COLUMN: u32 = 12;

/// A character cell in dots at size 1: font A 12x24, fonts B and C 9x17.
pub fn cell(font: u8) -> (u32, u32) {
    if font == 0 {
        (12, 24)
    } else {
        (9, 17)
    }
}

/// Text printed in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

/// One line as it came out of the printer (a line too long for the paper is two lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintedLine {
    pub text: String,
    pub runs: Vec<Run>,
}

impl PrintedLine {
    /// The alignment the line was printed with (its first run's; left for a blank line).
    pub fn justify(&self) -> Justify {
        self.runs
            .first()
            .map(|r| r.style.justify)
            .unwrap_or_default()
    }

    /// The style of the run holding `needle`, if this line has it in one run.
    pub fn style_of(&self, needle: &str) -> Option<Style> {
        self.runs
            .iter()
            .find(|r| r.text.contains(needle))
            .map(|r| r.style)
    }

    /// Dots the line takes across the paper.
    pub fn dots(&self) -> u32 {
        self.runs
            .iter()
            .map(|r| r.text.chars().count() as u32 * char_dots(&r.style))
            .sum()
    }

    fn push(&mut self, c: char, style: Style) {
        self.text.push(c);
        match self.runs.last_mut() {
            Some(r) if r.style == style => r.text.push(c),
            _ => self.runs.push(Run {
                text: c.to_string(),
                style,
            }),
        }
    }
}

/// Dots across one character takes in `style`.
pub fn char_dots(style: &Style) -> u32 {
    cell(style.font).0 * u32::from(style.width.max(1))
}

/// Everything printed between two cuts (or before the connection closed: `cut` false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub lines: Vec<PrintedLine>,
    /// Ended by a cut; false: the data stopped (connection closed, paper ran out) before one.
    pub cut: bool,
    pub partial_cut: bool,
    /// Commands the printer skipped without interpreting (their first bytes).
    pub unknown: Vec<Vec<u8>>,
    /// Paper width in font A columns (48: 80 mm, 32: 58 mm).
    pub columns: u16,
}

impl Ticket {
    /// The ticket as plain text, one line per printed line.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// Whether `needle` was printed (within one line).
    pub fn has(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.text.contains(needle))
    }

    /// The first line holding `needle`.
    pub fn line_with(&self, needle: &str) -> Option<&PrintedLine> {
        self.lines.iter().find(|l| l.text.contains(needle))
    }

    /// The style `needle` was printed in (first line and run holding it whole).
    pub fn style_of(&self, needle: &str) -> Option<Style> {
        self.lines.iter().find_map(|l| l.style_of(needle))
    }

    /// The printed lines that are not blank.
    pub fn text_lines(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(|l| l.text.as_str())
            .filter(|t| !t.trim().is_empty())
            .collect()
    }

    /// The ticket drawn as a PNG (grayscale, paper width `columns * 12` px).
    pub fn png(&self) -> anyhow::Result<Vec<u8>> {
        super::render::png(self)
    }
}

/// Turns decoder events into tickets, wrapping lines at the paper's width as a printer does.
#[derive(Debug)]
pub struct TicketBuilder {
    columns: u16,
    lines: Vec<PrintedLine>,
    current: PrintedLine,
    unknown: Vec<Vec<u8>>,
}

impl TicketBuilder {
    pub fn new(columns: u16) -> TicketBuilder {
        TicketBuilder {
            columns,
            lines: Vec::new(),
            current: PrintedLine::default(),
            unknown: Vec::new(),
        }
    }

    fn paper_dots(&self) -> u32 {
        u32::from(self.columns) * DOTS_PER_COLUMN
    }

    /// Applies one event; a cut returns the finished ticket.
    pub fn apply(&mut self, ev: &Event) -> Option<Ticket> {
        match ev {
            Event::Text { text, style } => {
                for c in text.chars() {
                    let w = char_dots(style);
                    if !self.current.runs.is_empty() && self.current.dots() + w > self.paper_dots()
                    {
                        self.end_line();
                    }
                    self.current.push(c, *style);
                }
            }
            Event::Feed { lines } => {
                if *lines > 0 || !self.current.runs.is_empty() {
                    self.end_line();
                }
                for _ in 1..*lines {
                    self.end_line();
                }
            }
            Event::Cut { partial } => {
                if !self.current.runs.is_empty() {
                    self.end_line();
                }
                return Some(self.take(true, *partial));
            }
            // ESC @ clears the print buffer: a line not yet printed is lost.
            Event::Init => self.current = PrintedLine::default(),
            Event::Unknown(bytes) => self.unknown.push(bytes.clone()),
            Event::Status(_) => {}
        }
        None
    }

    /// Nothing printed since the last cut.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.current.runs.is_empty() && self.unknown.is_empty()
    }

    /// What was printed since the last cut, as a ticket with `cut: false`; None if nothing.
    pub fn take_unfinished(&mut self) -> Option<Ticket> {
        if self.is_empty() {
            return None;
        }
        if !self.current.runs.is_empty() {
            self.end_line();
        }
        Some(self.take(false, false))
    }

    fn end_line(&mut self) {
        self.lines.push(std::mem::take(&mut self.current));
    }

    fn take(&mut self, cut: bool, partial_cut: bool) -> Ticket {
        Ticket {
            lines: std::mem::take(&mut self.lines),
            cut,
            partial_cut,
            unknown: std::mem::take(&mut self.unknown),
            columns: self.columns,
        }
    }
}
