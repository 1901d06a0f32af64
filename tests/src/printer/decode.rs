//! The ESC/POS decoder: bytes as a printer receives them, in any chunking, become events (text
//! runs with their style, line feeds, cuts, real-time status requests, commands it does not
//! know). Pure: no I/O. Owns the print-mode state (style, page code) a printer keeps between
//! commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Horizontal alignment (ESC a n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Justify {
    #[default]
    Left,
    Center,
    Right,
}

/// The print mode a run of text was printed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub bold: bool,
    /// 0 none, 1 single, 2 double (ESC - n).
    pub underline: u8,
    pub double_strike: bool,
    /// White on black (GS B n).
    pub reverse: bool,
    /// Character width multiplier, 1..=8 (GS ! n).
    pub width: u8,
    /// Character height multiplier, 1..=8 (GS ! n).
    pub height: u8,
    pub justify: Justify,
    /// 0 font A (12x24), 1 font B (9x17), 2 font C (ESC M n).
    pub font: u8,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            bold: false,
            underline: 0,
            double_strike: false,
            reverse: false,
            width: 1,
            height: 1,
            justify: Justify::Left,
            font: 0,
        }
    }
}

impl Style {
    /// Larger than normal text (either multiplier above 1).
    pub fn is_large(&self) -> bool {
        self.width > 1 || self.height > 1
    }
}

/// What the printer was told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Printable text in one style.
    Text { text: String, style: Style },
    /// LF (1) or ESC d n (n): print the line buffer and feed `lines` lines (0: print only).
    Feed { lines: u8 },
    /// GS V: print the buffer and cut.
    Cut { partial: bool },
    /// DLE EOT n: a real-time status request.
    Status(u8),
    /// ESC @: printer initialised (print modes back to their defaults).
    Init,
    /// A command this printer does not interpret, skipped by its length.
    Unknown(Vec<u8>),
}

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const FS: u8 = 0x1C;
const DLE: u8 = 0x10;

/// What one step of parsing found at the head of the buffer.
enum Step {
    /// Not enough bytes yet.
    More,
    /// `len` bytes consumed, producing the action.
    Done(usize, Action),
}

enum Action {
    Text,
    Ignore,
    Emit(Event),
    SetStyle(fn(&mut Style, u8), u8),
    PageCode(u8),
    Init,
}

/// A streaming decoder: `push` bytes as they come, take events out.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    text: Vec<u8>,
    style: Style,
    /// ESC t n; None until the host selects one (escpos then sends UTF-8).
    page_code: Option<u8>,
    events: Vec<Event>,
    print_bytes: u64,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes `bytes`; returns the events completed so far. A text run is complete when a
    /// command or a line end follows it (or at `finish`), so any chunking gives the same events.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while at < self.pending.len() {
            match parse(&self.pending[at..]) {
                Step::More => break,
                Step::Done(len, action) => {
                    let b = self.pending[at];
                    self.apply(action, b, len);
                    at += len;
                }
            }
        }
        self.pending.drain(..at);
        std::mem::take(&mut self.events)
    }

    /// The end of the data: any text not yet followed by a command becomes a run.
    pub fn finish(&mut self) -> Vec<Event> {
        self.flush_text();
        std::mem::take(&mut self.events)
    }

    /// Bytes consumed so far that were not status requests nor NULs: print data.
    pub fn print_bytes(&self) -> u64 {
        self.print_bytes
    }

    /// The current print mode.
    pub fn style(&self) -> Style {
        self.style
    }

    fn apply(&mut self, action: Action, first: u8, len: usize) {
        if !matches!(action, Action::Ignore | Action::Emit(Event::Status(_))) {
            self.print_bytes += len as u64;
        }
        match action {
            Action::Text => self.text.push(first),
            Action::Ignore => {}
            Action::Emit(ev) => {
                self.flush_text();
                self.events.push(ev);
            }
            Action::SetStyle(f, n) => {
                self.flush_text();
                f(&mut self.style, n);
            }
            Action::PageCode(n) => {
                self.flush_text();
                self.page_code = Some(n);
            }
            Action::Init => {
                self.flush_text();
                self.style = Style::default();
                self.page_code = None;
                self.events.push(Event::Init);
            }
        }
    }

    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = decode_text(&self.text, self.page_code);
        self.text.clear();
        self.events.push(Event::Text {
            text,
            style: self.style,
        });
    }
}

fn set_bold(s: &mut Style, n: u8) {
    s.bold = n & 1 == 1;
}
fn set_underline(s: &mut Style, n: u8) {
    s.underline = match n {
        1 | b'1' => 1,
        2 | b'2' => 2,
        _ => 0,
    };
}
fn set_double_strike(s: &mut Style, n: u8) {
    s.double_strike = n & 1 == 1;
}
fn set_reverse(s: &mut Style, n: u8) {
    s.reverse = n & 1 == 1;
}
fn set_justify(s: &mut Style, n: u8) {
    s.justify = match n {
        1 | b'1' => Justify::Center,
        2 | b'2' => Justify::Right,
        _ => Justify::Left,
    };
}
fn set_font(s: &mut Style, n: u8) {
    s.font = match n {
        1 | b'1' => 1,
        2 | b'2' => 2,
        _ => 0,
    };
}
fn set_size(s: &mut Style, n: u8) {
    s.width = ((n >> 4) & 0x07) + 1;
    s.height = (n & 0x07) + 1;
}
/// ESC ! n: font, emphasis, double height and width, underline in one byte.
fn set_print_mode(s: &mut Style, n: u8) {
    s.font = n & 1;
    s.bold = n & 0x08 != 0;
    s.height = if n & 0x10 != 0 { 2 } else { 1 };
    s.width = if n & 0x20 != 0 { 2 } else { 1 };
    s.underline = u8::from(n & 0x80 != 0);
}

/// The command (or text byte) at the head of `b`, which is not empty.
fn parse(b: &[u8]) -> Step {
    match b[0] {
        0x0A => Step::Done(1, Action::Emit(Event::Feed { lines: 1 })),
        0x00 | 0x0D => Step::Done(1, Action::Ignore),
        DLE => parse_dle(b),
        ESC => parse_esc(b),
        GS => parse_gs(b),
        FS => parse_fs(b),
        c if c < 0x20 => unknown(b, 1),
        _ => Step::Done(1, Action::Text),
    }
}

/// An unknown command of `len` bytes (when they have all arrived).
fn unknown(b: &[u8], len: usize) -> Step {
    if b.len() < len {
        return Step::More;
    }
    let shown = len.min(16);
    Step::Done(len, Action::Emit(Event::Unknown(b[..shown].to_vec())))
}

/// A command of a fixed `len` whose last byte is the parameter.
fn with_param(b: &[u8], len: usize, make: impl FnOnce(u8) -> Action) -> Step {
    if b.len() < len {
        return Step::More;
    }
    Step::Done(len, make(b[len - 1]))
}

/// Bytes up to and including the first NUL at or after `from` (ESC D, GS k m<=6).
fn until_nul(b: &[u8], from: usize) -> Step {
    match b.iter().skip(from).position(|&c| c == 0) {
        Some(i) => unknown(b, from + i + 1),
        None => Step::More,
    }
}

/// `head` bytes, then a little-endian 16-bit length at `head-2..head`, then that many bytes.
fn counted(b: &[u8], head: usize, mult: usize) -> Step {
    if b.len() < head {
        return Step::More;
    }
    let n = b[head - 2] as usize | (b[head - 1] as usize) << 8;
    unknown(b, head + n * mult)
}

fn parse_dle(b: &[u8]) -> Step {
    let (Some(&c), Some(&n)) = (b.get(1), b.get(2)) else {
        return if b.len() < 2 || matches!(b[1], 0x04 | 0x05 | 0x14) {
            Step::More
        } else {
            unknown(b, 1)
        };
    };
    match (c, n) {
        (0x04, 1..=4) => Step::Done(3, Action::Emit(Event::Status(n))),
        (0x04, 7 | 8 | 18) => unknown(b, 4),
        (0x05, _) => unknown(b, 3),
        (0x14, _) => unknown(b, 5),
        (0x04, _) => unknown(b, 3),
        _ => unknown(b, 1),
    }
}

fn parse_esc(b: &[u8]) -> Step {
    let Some(&c) = b.get(1) else {
        return Step::More;
    };
    match c {
        b'@' => Step::Done(2, Action::Init),
        b'E' => with_param(b, 3, |n| Action::SetStyle(set_bold, n)),
        b'-' => with_param(b, 3, |n| Action::SetStyle(set_underline, n)),
        b'G' => with_param(b, 3, |n| Action::SetStyle(set_double_strike, n)),
        b'a' => with_param(b, 3, |n| Action::SetStyle(set_justify, n)),
        b'M' => with_param(b, 3, |n| Action::SetStyle(set_font, n)),
        b'!' => with_param(b, 3, |n| Action::SetStyle(set_print_mode, n)),
        b'd' => with_param(b, 3, |n| Action::Emit(Event::Feed { lines: n })),
        b't' => with_param(b, 3, Action::PageCode),
        // International character set, line spacing: accepted, nothing to draw differently.
        b'R' | b'3' => with_param(b, 3, |_| Action::Ignore),
        b'2' => Step::Done(2, Action::Ignore),
        b'J' | b'K' | b'e' | b' ' | b'V' | b'{' | b'U' | b'T' | b'r' | b'%' | b'?' | b'=' => {
            unknown(b, 3)
        }
        b'c' => unknown(b, 4),
        b'p' => unknown(b, 5),
        b'$' | b'\\' => unknown(b, 4),
        b'D' | b'B' => until_nul(b, 2),
        b'*' => match b.get(2) {
            None => Step::More,
            Some(m) => counted(b, 5, if *m >= 32 { 3 } else { 1 }),
        },
        b'(' => counted(b, 5, 1),
        _ => unknown(b, 2),
    }
}

fn parse_gs(b: &[u8]) -> Step {
    let Some(&c) = b.get(1) else {
        return Step::More;
    };
    match c {
        b'!' => with_param(b, 3, |n| Action::SetStyle(set_size, n)),
        b'B' => with_param(b, 3, |n| Action::SetStyle(set_reverse, n)),
        b'b' => with_param(b, 3, |_| Action::Ignore),
        b'V' => match b.get(2) {
            None => Step::More,
            Some(&m) => {
                let partial = matches!(m, 1 | b'1' | 66 | 98 | 100 | 102 | 104);
                let len = if matches!(m, 0 | 1 | 48 | 49) { 3 } else { 4 };
                if b.len() < len {
                    Step::More
                } else {
                    Step::Done(len, Action::Emit(Event::Cut { partial }))
                }
            }
        },
        b'H' | b'f' | b'h' | b'w' | b'a' | b'r' | b'I' | b'/' | b'T' => unknown(b, 3),
        b'L' | b'W' | b'P' | b'$' | b'\\' => unknown(b, 4),
        b'k' => match b.get(2) {
            None => Step::More,
            Some(&m) if m <= 6 => until_nul(b, 3),
            Some(_) => match b.get(3) {
                None => Step::More,
                Some(&n) => unknown(b, 4 + n as usize),
            },
        },
        b'(' => counted(b, 5, 1),
        b'8' => {
            if b.len() < 7 {
                return Step::More;
            }
            let n = u32::from_le_bytes([b[3], b[4], b[5], b[6]]) as usize;
            unknown(b, 7 + n)
        }
        b'v' => {
            if b.len() < 8 {
                return Step::More;
            }
            let x = b[4] as usize | (b[5] as usize) << 8;
            let y = b[6] as usize | (b[7] as usize) << 8;
            unknown(b, 8 + x * y)
        }
        b'*' => {
            if b.len() < 4 {
                return Step::More;
            }
            unknown(b, 4 + b[2] as usize * b[3] as usize * 8)
        }
        _ => unknown(b, 2),
    }
}

fn parse_fs(b: &[u8]) -> Step {
    let Some(&c) = b.get(1) else {
        return Step::More;
    };
    match c {
        b'(' => counted(b, 5, 1),
        b'!' | b'-' | b'C' | b'S' | b'W' => unknown(b, 3),
        b'p' => unknown(b, 4),
        _ => unknown(b, 2),
    }
}

/// Text bytes as printed: with no page code selected, UTF-8 (what escpos sends by default),
/// falling back to PC437 (a printer's own default) for bytes that are not UTF-8; with ESC t n,
/// that code page.
pub fn decode_text(bytes: &[u8], page_code: Option<u8>) -> String {
    if page_code.is_none() {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return s.to_owned();
        }
    }
    let table = high_half(page_code.unwrap_or(0));
    bytes
        .iter()
        .map(|&b| match b {
            0..=0x7F => b as char,
            _ => table[(b - 0x80) as usize],
        })
        .collect()
}

/// Bytes 0x80..=0xFF of code page `n`, read off escpos's own encoder (so the printer decodes
/// exactly what escpos encodes); PC437 for a page escpos has no table for.
fn high_half(n: u8) -> Arc<[char; 128]> {
    static TABLES: OnceLock<Mutex<HashMap<u8, Arc<[char; 128]>>>> = OnceLock::new();
    let tables = TABLES.get_or_init(Default::default);
    let mut tables = tables.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = tables.get(&n) {
        return t.clone();
    }
    let t = Arc::new(
        build_table(n)
            .or_else(|| build_table(0))
            .unwrap_or(['?'; 128]),
    );
    tables.insert(n, t.clone());
    t
}

fn build_table(n: u8) -> Option<[char; 128]> {
    use escpos::printer::Printer;
    use escpos::printer_options::PrinterOptions;
    use escpos::utils::Protocol;
    let code = page_code_of(n)?;
    let sink = ByteSink::default();
    let opts = PrinterOptions::new(Some(code), None, 42);
    let mut printer = Printer::new(sink.clone(), Protocol::default(), Some(opts));
    let mut table = ['?'; 128];
    let mut found = 0;
    let candidates = (0x80u32..0x0600)
        .chain(0x2000..0x2600)
        .chain(0xFF61..0xFFA0);
    for c in candidates.filter_map(char::from_u32) {
        sink.take();
        if printer
            .write(&c.to_string())
            .and_then(|p| p.print())
            .is_err()
        {
            continue;
        }
        if let [b @ 0x80..=0xFF] = sink.take()[..] {
            table[(b - 0x80) as usize] = c;
            found += 1;
        }
    }
    (found > 0).then_some(table)
}

fn page_code_of(n: u8) -> Option<escpos::utils::PageCode> {
    use escpos::utils::PageCode::*;
    [
        PC437, Katakana, PC850, PC860, PC863, PC865, Hiragana, PC851, PC853, PC857, PC737,
        ISO8859_7, WPC1252, PC866, PC852, PC858, PC720, WPC775, PC855, PC861, PC862, PC864, PC869,
        ISO8859_2, ISO8859_15, PC1098, PC1118, PC1119, PC1125, WPC1250, WPC1251, WPC1253, WPC1254,
        WPC1255, WPC1256, WPC1257, WPC1258, KZ1048,
    ]
    .into_iter()
    .find(|c| u8::from(*c) == n)
}

/// An escpos driver that collects what the printer would send: for escpos-made test bytes and
/// the code page tables.
#[derive(Clone, Default)]
pub struct ByteSink(Arc<Mutex<Vec<u8>>>);

impl ByteSink {
    /// The bytes written so far, leaving the sink empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl escpos::driver::Driver for ByteSink {
    fn name(&self) -> String {
        "bytes".to_owned()
    }
    fn write(&self, data: &[u8]) -> escpos::errors::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(())
    }
    fn read(&self, _buf: &mut [u8]) -> escpos::errors::Result<usize> {
        Ok(0)
    }
    fn flush(&self) -> escpos::errors::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
