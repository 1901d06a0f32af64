//! ESC/POS through the `escpos` crate: a slip's rows become the bytes a kitchen printer prints
//! (styles, sizes, a full cut), and the printer's real-time status (DLE EOT) is asked for and
//! read. No command byte is written by hand here: the crate makes them, and a capturing driver
//! hands them to the printer task, which owns the socket.
//!
//! Must not open sockets or touch the store.

use std::sync::{Arc, Mutex};

use docket_core::print::Row;
use escpos::driver::Driver;
use escpos::printer::Printer;
use escpos::printer_options::PrinterOptions;
use escpos::utils::{
    JustifyMode, PageCode, Protocol, RealTimeStatusRequest, RealTimeStatusResponse, UnderlineMode,
};

/// What the printer said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Condition {
    pub online: bool,
    pub cover_open: bool,
    pub paper_out: bool,
    pub paper_near_end: bool,
    pub error: bool,
}

impl Condition {
    /// Can it print now?
    pub fn can_print(&self) -> bool {
        self.online && !self.cover_open && !self.paper_out && !self.error
    }

    /// The one thing a cook or a manager must do, in words (`ok` when nothing).
    pub fn words(&self) -> &'static str {
        if self.paper_out {
            "paper out"
        } else if self.cover_open {
            "cover open"
        } else if self.error {
            "printer error"
        } else if !self.online {
            "offline"
        } else if self.paper_near_end {
            "paper near end"
        } else {
            "ok"
        }
    }
}

/// The requests, in the order [`status_request`] sends them and [`read_status`] reads them.
pub const STATUS_REQUESTS: [RealTimeStatusRequest; 3] = [
    RealTimeStatusRequest::Printer,
    RealTimeStatusRequest::OfflineCause,
    RealTimeStatusRequest::RollPaperSensor,
];

/// Collects what the crate writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Driver for Capture {
    fn name(&self) -> String {
        "docketd capture".into()
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

impl Capture {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn printer(capture: &Capture) -> Printer<Capture> {
    let mut options = PrinterOptions::default();
    options.page_code(Some(PAGE));
    Printer::new(capture.clone(), Protocol::default(), Some(options))
}

/// The code page tickets are printed in: PC437, every ESC/POS printer's default, with the
/// accented letters of most western menus. (escpos 0.17's PC858 table maps the ASCII '-' to the
/// soft hyphen: PC437's has no such clash.)
const PAGE: PageCode = PageCode::PC437;

/// What the code page can print: ASCII as is, a character the crate encodes as one byte of the
/// page; anything else is printed as '?' rather than as bytes the printer reads as other
/// characters (the crate sends UTF-8 for what its table lacks).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            _ if one_byte(c) => c,
            _ => '?',
        })
        .collect()
}

fn one_byte(c: char) -> bool {
    let capture = Capture::default();
    let mut p = printer(&capture);
    let mut buf = [0u8; 4];
    p.write(c.encode_utf8(&mut buf))
        .and_then(|p| p.print())
        .is_ok()
        && capture.take().len() == 1
}

/// A slip's rows as one ESC/POS job: initialised, each row in its style, fed and cut.
pub fn ticket(rows: &[Row]) -> Result<Vec<u8>, escpos::errors::PrinterError> {
    let capture = Capture::default();
    let mut p = printer(&capture);
    p.init()?;
    for r in rows {
        p.justify(if r.center {
            JustifyMode::CENTER
        } else {
            JustifyMode::LEFT
        })?
        .bold(r.bold)?
        .underline(if r.underline {
            UnderlineMode::Double
        } else {
            UnderlineMode::None
        })?
        .size(r.width.clamp(1, 2), r.height.clamp(1, 2))?
        .writeln(&printable(&r.text))?;
    }
    p.reset_size()?
        .bold(false)?
        .underline(UnderlineMode::None)?
        .justify(JustifyMode::LEFT)?
        .feeds(4)?
        .print_cut()?;
    Ok(capture.take())
}

/// The real-time status requests (DLE EOT 1, 2, 4): three answer bytes follow.
pub fn status_request() -> Result<Vec<u8>, escpos::errors::PrinterError> {
    let capture = Capture::default();
    let mut p = printer(&capture);
    for r in STATUS_REQUESTS {
        p.real_time_status(r)?;
    }
    p.send_status()?;
    Ok(capture.take())
}

/// The three answers to [`status_request`]; an answer that is not a status byte is an error.
pub fn read_status(answers: [u8; 3]) -> Result<Condition, escpos::errors::PrinterError> {
    use RealTimeStatusResponse as R;
    let [printer, offline, paper] = answers;
    let printer = R::parse(RealTimeStatusRequest::Printer, printer)?;
    let offline = R::parse(RealTimeStatusRequest::OfflineCause, offline)?;
    let paper = R::parse(RealTimeStatusRequest::RollPaperSensor, paper)?;
    let get = |m: &std::collections::HashMap<R, bool>, k: R| m.get(&k).copied().unwrap_or(false);
    Ok(Condition {
        online: get(&printer, R::Online),
        cover_open: !get(&offline, R::CoverClosed),
        paper_out: get(&offline, R::PrintingStopsDueToPaperEnd)
            || !get(&paper, R::RollPaperEndSensorPaperPresent),
        paper_near_end: !get(&paper, R::RollPaperNearEndSensorPaperAdequate),
        error: get(&offline, R::ErrorOccurred),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_styled_text_and_a_cut() {
        let rows = vec![
            Row {
                text: "#1042".into(),
                width: 2,
                height: 2,
                bold: true,
                ..Row::default()
            },
            Row {
                text: "Crème brûlée — ☃".into(),
                width: 1,
                height: 1,
                ..Row::default()
            },
        ];
        let bytes = ticket(&rows).expect("renders");
        assert_eq!(&bytes[..2], b"\x1b@", "starts by initialising the printer");
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"#1042"));
        assert!(has(b"\x1d!\x11"), "double width and height");
        assert!(
            has(b"Cr\x8ame br\x96l\x82e ? ?"),
            "PC858 bytes, '?' for what it lacks"
        );
        assert!(bytes.ends_with(&[0x1d, 0x56, 0x00]) || has(b"\x1dV"), "cut");
    }

    #[test]
    fn status_answers_read_as_the_printer_meant_them() {
        let req = status_request().expect("request");
        // DLE EOT n for n = 1, 2, 4 (the crate sends each with a NUL the printer ignores).
        let asked: Vec<u8> = req
            .chunks(4)
            .map(|c| {
                assert_eq!(&c[..2], b"\x10\x04");
                c[2]
            })
            .collect();
        assert_eq!(asked, vec![1, 2, 4]);
        let ok = read_status([0x12, 0x12, 0x12]).expect("valid");
        assert!(ok.can_print() && ok.words() == "ok");
        // Offline, printing stopped by paper end, paper end sensor.
        let out = read_status([0x12 | 0x08, 0x12 | 0x20, 0x12 | 0x60]).expect("valid");
        assert!(!out.can_print() && out.paper_out && out.words() == "paper out");
        let cover = read_status([0x12 | 0x08, 0x12 | 0x04, 0x12]).expect("valid");
        assert_eq!(cover.words(), "cover open");
        let near = read_status([0x12, 0x12, 0x12 | 0x0c]).expect("valid");
        assert!(near.can_print() && near.words() == "paper near end");
        assert!(
            read_status([0xff, 0x12, 0x12]).is_err(),
            "not a status byte"
        );
    }
}
