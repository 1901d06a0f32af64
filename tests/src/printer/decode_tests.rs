//! Unit tests of the decoder, fed bytes made by the real `escpos` crate.

use super::*;
use crate::printer::ticket::{Ticket, TicketBuilder};
use escpos::printer::Printer;
use escpos::printer_options::PrinterOptions;
use escpos::utils::{
    CashDrawer, JustifyMode, PageCode, Protocol, RealTimeStatusRequest, UnderlineMode,
};

type P = Printer<ByteSink>;

/// What escpos sends for `build`, with `page_code` selected at init.
fn escpos_bytes(
    page_code: Option<PageCode>,
    build: impl FnOnce(&mut P) -> escpos::errors::Result<()>,
) -> Vec<u8> {
    let sink = ByteSink::default();
    let opts = PrinterOptions::new(page_code, None, 48);
    let mut p = Printer::new(sink.clone(), Protocol::default(), Some(opts));
    build(&mut p).expect("escpos builds the bytes");
    p.print().expect("escpos flushes");
    sink.take()
}

fn kitchen_ticket(p: &mut P) -> escpos::errors::Result<()> {
    p.init()?
        .justify(JustifyMode::CENTER)?
        .size(2, 2)?
        .bold(true)?
        .writeln("#0042")?
        .reset_size()?
        .bold(false)?
        .writeln("Table 12")?
        .justify(JustifyMode::LEFT)?
        .double_strike(true)?
        .write("2x ")?
        .double_strike(false)?
        .writeln("Crème brûlée, jalapeño")?
        .underline(UnderlineMode::Single)?
        .writeln("no nuts")?
        .underline(UnderlineMode::None)?
        .reverse(true)?
        .writeln(" ALLERGY ")?
        .reverse(false)?
        .line_spacing(40)?
        .feeds(3)?
        .print_cut()?;
    Ok(())
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Event> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(d.push(c));
    }
    out.extend(d.finish());
    out
}

fn tickets(events: &[Event], columns: u16) -> Vec<Ticket> {
    let mut b = TicketBuilder::new(columns);
    let mut out: Vec<Ticket> = events.iter().filter_map(|e| b.apply(e)).collect();
    out.extend(b.take_unfinished());
    out
}

#[test]
fn an_escpos_kitchen_ticket_decodes_with_its_styles() {
    let bytes = escpos_bytes(None, kitchen_ticket);
    let t = tickets(&decode_all(&[&bytes]), 48);
    assert_eq!(t.len(), 1, "one cut, one ticket: {t:?}");
    let t = &t[0];
    assert!(t.cut && !t.partial_cut);
    assert!(t.unknown.is_empty(), "unknown commands: {:?}", t.unknown);
    assert_eq!(
        t.text(),
        "#0042\nTable 12\n2x Crème brûlée, jalapeño\nno nuts\n ALLERGY \n\n\n\n"
    );
    let big = t.style_of("#0042").expect("ticket number");
    assert!(big.is_large() && big.bold && big.width == 2 && big.height == 2);
    assert_eq!(big.justify, Justify::Center);
    let table = t.style_of("Table 12").expect("table");
    assert!(!table.is_large() && !table.bold);
    assert_eq!(t.style_of("2x ").map(|s| s.double_strike), Some(true));
    assert_eq!(t.style_of("Crème").map(|s| s.double_strike), Some(false));
    assert_eq!(t.style_of("Crème").map(|s| s.justify), Some(Justify::Left));
    assert_eq!(t.style_of("no nuts").map(|s| s.underline), Some(1));
    assert_eq!(t.style_of("ALLERGY").map(|s| s.reverse), Some(true));
}

#[test]
fn any_chunking_decodes_the_same() {
    let bytes = escpos_bytes(Some(PageCode::PC858), |p| {
        kitchen_ticket(p)?;
        p.real_time_status(RealTimeStatusRequest::RollPaperSensor)?;
        p.cash_drawer(CashDrawer::Pin2)?;
        p.writeln("Señor €5")?.cut()?;
        Ok(())
    });
    let whole = decode_all(&[&bytes]);
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        assert_eq!(decode_all(&[a, b]), whole, "split at {at}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_all(&singles), whole, "byte by byte");
}

#[test]
fn code_pages_decode_what_escpos_encodes() {
    for page in [
        PageCode::PC437,
        PageCode::PC850,
        PageCode::PC858,
        PageCode::WPC1252,
    ] {
        let bytes = escpos_bytes(Some(page), |p| {
            p.init()?.writeln("Crème brûlée, jalapeño, ÄÉÑÜ ç")?;
            Ok(())
        });
        assert!(
            bytes.iter().any(|&b| b >= 0x80) && !bytes.windows(2).any(|w| w == [0xC3, 0xA8]),
            "{page}: one byte per accented letter"
        );
        let t = tickets(&decode_all(&[&bytes]), 48);
        assert_eq!(t[0].text(), "Crème brûlée, jalapeño, ÄÉÑÜ ç\n", "{page}");
    }
    let euro = escpos_bytes(Some(PageCode::PC858), |p| {
        p.init()?.writeln("€")?;
        Ok(())
    });
    assert_eq!(tickets(&decode_all(&[&euro]), 48)[0].text(), "€\n");
    // No page code and bytes that are not UTF-8: a printer's default, PC437.
    assert_eq!(decode_text(&[b'a', 0x82, 0xA4], None), "aéñ");
}

#[test]
fn status_requests_are_events_and_their_padding_is_not_printed() {
    let bytes = escpos_bytes(None, |p| {
        for r in [
            RealTimeStatusRequest::Printer,
            RealTimeStatusRequest::OfflineCause,
            RealTimeStatusRequest::ErrorCause,
            RealTimeStatusRequest::RollPaperSensor,
        ] {
            p.real_time_status(r)?;
        }
        Ok(())
    });
    assert_eq!(
        bytes[..4],
        [0x10, 0x04, 1, 0],
        "escpos pads DLE EOT n with a NUL"
    );
    let mut d = Decoder::new();
    let events = d.push(&bytes);
    assert_eq!(
        events,
        vec![
            Event::Status(1),
            Event::Status(2),
            Event::Status(3),
            Event::Status(4)
        ]
    );
    assert_eq!(d.print_bytes(), 0, "status requests are not print data");
}

#[test]
fn unknown_commands_are_skipped_by_their_length() {
    let mut bytes = b"\x1b@A".to_vec();
    // GS ( k: a QR code's data (pL pH = 8), with ESC and GS inside.
    bytes.extend_from_slice(&[
        0x1D, b'(', b'k', 8, 0, 49, 80, 48, 0x1B, 0x1D, b'x', b'y', b'z',
    ]);
    // ESC * m=0, 3 columns of bit image; GS v 0 raster, 2 bytes x 2 rows.
    bytes.extend_from_slice(&[0x1B, b'*', 0, 3, 0, 0x0A, 0x0A, 0x0A]);
    bytes.extend_from_slice(&[0x1D, b'v', b'0', 0, 2, 0, 2, 0, 0x1D, 0x56, 0x41, 0]);
    // ESC t (page code) and ESC R (character set) are accepted silently.
    bytes.extend_from_slice(&[0x1B, b't', 19, 0x1B, b'R', 0, b'B', 0x0A, 0x1D, b'V', 0]);
    let events = decode_all(&[&bytes]);
    let t = tickets(&events, 48);
    assert_eq!(t.len(), 1, "{events:?}");
    assert_eq!(t[0].text(), "AB\n", "{events:?}");
    assert_eq!(t[0].unknown.len(), 3, "{:?}", t[0].unknown);
    assert_eq!(t[0].unknown[0][..3], [0x1D, b'(', b'k']);
}

#[test]
fn long_lines_wrap_at_the_paper_width() {
    let bytes = escpos_bytes(None, |p| {
        p.init()?
            .writeln(&"x".repeat(40))?
            .size(2, 1)?
            .writeln(&"W".repeat(20))?;
        Ok(())
    });
    let t = &tickets(&decode_all(&[&bytes]), 32)[0];
    assert!(!t.cut, "no cut sent");
    assert_eq!(
        t.text_lines(),
        vec!["x".repeat(32), "x".repeat(8), "W".repeat(16), "W".repeat(4)]
    );
}
