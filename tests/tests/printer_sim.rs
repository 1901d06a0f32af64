//! The virtual kitchen printer end to end through real TCP sockets: a ticket made by the
//! `escpos` crate over its own network driver, the status answers per sensor state, paper out
//! (data thrown away, then printing again), a hung printer, a power cut and the printer back on
//! the same port.

use std::time::Duration;

use anyhow::{ensure, Context};
use escpos::driver::{Driver, NetworkDriver};
use escpos::printer::Printer;
use escpos::utils::{
    JustifyMode, Protocol, RealTimeStatusRequest as Req, RealTimeStatusResponse as Resp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use docket_tests::printer::{ByteSink, PrinterOptions, VirtualPrinter};
use docket_tests::DEADLINE;

/// How long a test waits to be sure nothing comes (a hung or offline printer).
const QUIET: Duration = Duration::from_millis(300);

/// The bytes escpos sends for a small kitchen ticket numbered `no`.
fn ticket_bytes(no: u32) -> anyhow::Result<Vec<u8>> {
    let sink = ByteSink::default();
    let mut p = Printer::new(sink.clone(), Protocol::default(), None);
    p.init()?
        .justify(JustifyMode::CENTER)?
        .size(2, 2)?
        .writeln(&format!("#{no:04}"))?
        .reset_size()?
        .justify(JustifyMode::LEFT)?
        .writeln("1x Burger")?
        .feeds(2)?
        .print_cut()?;
    Ok(sink.take())
}

async fn connect(p: &VirtualPrinter) -> anyhow::Result<TcpStream> {
    TcpStream::connect(p.addr())
        .await
        .context("connecting to the printer")
}

/// DLE EOT `n` and its one-byte answer (escpos's form: padded with a NUL).
async fn ask(s: &mut TcpStream, n: u8) -> anyhow::Result<u8> {
    s.write_all(&[0x10, 0x04, n, 0]).await?;
    let mut b = [0u8; 1];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b))
        .await
        .with_context(|| format!("no answer to DLE EOT {n}"))??;
    Ok(b[0])
}

/// The answers to DLE EOT 1, 2, 3 and 4.
async fn all(s: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
    let mut v = Vec::new();
    for n in 1..=4 {
        v.push(ask(s, n).await?);
    }
    Ok(v)
}

/// Nothing arrives on `s` for `QUIET`.
async fn silent(s: &mut TcpStream) -> anyhow::Result<()> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(QUIET, s.read(&mut b)).await {
        Err(_) => Ok(()),
        Ok(r) => anyhow::bail!("expected silence, read {r:?} ({:#04x})", b[0]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escpos_ticket_is_printed_and_drawn() -> anyhow::Result<()> {
    let out = tempfile::tempdir()?;
    let opts = PrinterOptions {
        columns: 48,
        out_dir: Some(out.path().to_owned()),
    };
    let printer = VirtualPrinter::start(opts).await?;
    let port = printer.port();
    // escpos's own network driver, two tickets on one connection, then the printer's status.
    let online = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let driver = NetworkDriver::open("127.0.0.1", port, Some(DEADLINE))?;
        let mut p = Printer::new(driver.clone(), Protocol::default(), None);
        for (no, dish) in [(41, "Crème brûlée"), (42, "Jalapeño poppers")] {
            p.init()?
                .justify(JustifyMode::CENTER)?
                .bold(true)?
                .size(2, 2)?
                .writeln(&format!("#{no:04}"))?
                .reset_size()?
                .writeln("Table 12")?
                .bold(false)?
                .justify(JustifyMode::LEFT)?
                .writeln(&format!("2x {dish}"))?
                .feeds(3)?
                .print_cut()?;
        }
        p.real_time_status(Req::Printer)?.send_status()?;
        let mut b = [0u8; 1];
        ensure!(driver.read(&mut b)? == 1, "no status byte");
        Ok(Resp::parse(Req::Printer, b[0])?[&Resp::Online])
    })
    .await??;
    ensure!(online, "an idle printer with paper is online");

    let tickets = printer.wait_tickets(2, DEADLINE).await?;
    ensure!(tickets.len() == 2, "{tickets:?}");
    let t = &tickets[1];
    ensure!(t.cut && t.unknown.is_empty(), "{t:?}");
    ensure!(
        t.text_lines() == ["#0042", "Table 12", "2x Jalapeño poppers"],
        "{}",
        t.text()
    );
    let number = t.style_of("#0042").context("ticket number")?;
    ensure!(number.is_large() && number.bold, "{number:?}");
    ensure!(tickets[0].has("2x Crème brûlée"), "{}", tickets[0].text());
    ensure!(printer.connections() == 1 && printer.status_queries() == 1);

    let txt = std::fs::read_to_string(out.path().join("0002.txt"))?;
    ensure!(txt == t.text(), "{txt}");
    let png = std::fs::read(out.path().join("0002.png"))?;
    ensure!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into()?);
    ensure!(width == 576, "80 mm paper is 576 dots wide, got {width}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_follow_the_sensors() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    let check = |n: u8, b: u8| -> anyhow::Result<std::collections::HashMap<Resp, bool>> {
        let req = [
            Req::Printer,
            Req::OfflineCause,
            Req::ErrorCause,
            Req::RollPaperSensor,
        ][usize::from(n) - 1];
        Ok(Resp::parse(req, b)?)
    };
    ensure!(all(&mut s).await? == [0x12, 0x12, 0x12, 0x12]);

    printer.set_near_end(true);
    let b = all(&mut s).await?;
    ensure!(b == [0x12, 0x12, 0x12, 0x1E], "near end: {b:x?}");
    ensure!(!check(4, b[3])?[&Resp::RollPaperNearEndSensorPaperAdequate]);
    ensure!(check(1, b[0])?[&Resp::Online], "near end still prints");
    printer.set_near_end(false);

    printer.set_paper_out(true);
    let b = all(&mut s).await?;
    ensure!(b == [0x1A, 0x72, 0x12, 0x7E], "paper out: {b:x?}");
    ensure!(!check(1, b[0])?[&Resp::Online]);
    ensure!(check(2, b[1])?[&Resp::PrintingStopsDueToPaperEnd]);
    ensure!(!check(4, b[3])?[&Resp::RollPaperEndSensorPaperPresent]);
    printer.set_paper_out(false);

    printer.set_cover_open(true);
    let b = all(&mut s).await?;
    ensure!(b == [0x1A, 0x56, 0x12, 0x12], "cover open: {b:x?}");
    ensure!(!check(2, b[1])?[&Resp::CoverClosed]);
    printer.set_cover_open(false);
    ensure!(
        all(&mut s).await? == [0x12, 0x12, 0x12, 0x12],
        "all clear again"
    );
    ensure!(
        printer.status_queries() == 20,
        "{}",
        printer.status_queries()
    );
    ensure!(
        printer.tickets().is_empty(),
        "status requests print nothing"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_throws_tickets_away_until_paper_is_back() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    printer.set_paper_out(true);
    let lost = ticket_bytes(1)?;
    s.write_all(&lost).await?;
    // Answered in real time while offline; the answer also says the ticket was read.
    ensure!(ask(&mut s, 1).await? == 0x1A);
    ensure!(
        printer.discarded_bytes() == lost.len() as u64,
        "{}",
        printer.discarded_bytes()
    );
    printer.set_paper_out(false);
    ensure!(ask(&mut s, 1).await? == 0x12);
    s.write_all(&ticket_bytes(2)?).await?;
    let t = printer.wait_tickets(1, DEADLINE).await?;
    ensure!(
        t.len() == 1 && t[0].has("#0002") && !t[0].has("#0001"),
        "{t:?}"
    );

    // Runs out after one more ticket: the next one is thrown away.
    printer.run_out_after(1);
    s.write_all(&[ticket_bytes(3)?, ticket_bytes(4)?].concat())
        .await?;
    ensure!(ask(&mut s, 2).await? == 0x72, "paper end after the cut");
    let t = printer.tickets();
    ensure!(t.len() == 2 && t[1].has("#0003"), "{t:?}");
    ensure!(t.iter().all(|t| t.cut), "{t:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_out_mid_ticket_tears_off_what_was_printed() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    let bytes = ticket_bytes(5)?;
    let half = bytes.len() - 14;
    s.write_all(&bytes[..half]).await?;
    ensure!(ask(&mut s, 1).await? == 0x12, "read while online");
    printer.set_paper_out(true);
    s.write_all(&bytes[half..]).await?;
    ensure!(ask(&mut s, 1).await? == 0x1A);
    let t = printer.tickets();
    ensure!(t.len() == 1 && !t[0].cut && t[0].has("#0005"), "{t:?}");
    ensure!(printer.discarded_bytes() > 0);
    printer.set_paper_out(false);
    s.write_all(&ticket_bytes(6)?).await?;
    let t = printer.wait_tickets(2, DEADLINE).await?;
    ensure!(
        t[1].cut && t[1].text_lines() == ["#0006", "1x Burger"],
        "{t:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_printer_answers_nothing_then_carries_on() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    ensure!(ask(&mut s, 1).await? == 0x12);
    printer.set_mute(true);
    s.write_all(&ticket_bytes(7)?).await?;
    s.write_all(&[0x10, 0x04, 1, 0]).await?;
    silent(&mut s).await?;
    ensure!(
        printer.tickets().is_empty(),
        "a hung printer prints nothing"
    );
    printer.set_mute(false);
    let mut b = [0u8; 1];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut b)).await??;
    ensure!(b[0] == 0x12, "{b:x?}");
    let t = printer.wait_tickets(1, DEADLINE).await?;
    ensure!(t[0].has("#0007"), "{t:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_resets_and_the_printer_comes_back_on_its_port() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let port = printer.port();
    let mut s = connect(&printer).await?;
    // Half a ticket, then the power goes.
    s.write_all(b"\x1b@half a ticket\n").await?;
    ensure!(ask(&mut s, 1).await? == 0x12);
    printer.kill().await;
    let mut b = [0u8; 16];
    let read = tokio::time::timeout(DEADLINE, s.read(&mut b)).await?;
    ensure!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a power cut resets the connection: {read:?}"
    );

    let printer = VirtualPrinter::start_on(port, PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    s.write_all(&ticket_bytes(9)?).await?;
    let t = printer.wait_tickets(1, DEADLINE).await?;
    ensure!(
        t.len() == 1 && t[0].has("#0009") && !t[0].has("half"),
        "{t:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_mid_ticket_leaves_an_uncut_ticket() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let mut s = connect(&printer).await?;
    s.write_all(&ticket_bytes(1)?).await?;
    s.write_all(b"\x1b@\x1b!\x30#0002\n1x Fries").await?;
    drop(s);
    let t = printer.wait_tickets(2, DEADLINE).await?;
    ensure!(t[0].cut && !t[1].cut, "{t:?}");
    ensure!(
        t[1].text_lines() == ["#0002", "1x Fries"],
        "{}",
        t[1].text()
    );
    ensure!(t[1].style_of("#0002").is_some_and(|s| s.is_large()));
    // Reconnecting is a new connection to the same printer.
    let mut s = connect(&printer).await?;
    s.write_all(&ticket_bytes(3)?).await?;
    printer.wait_tickets(3, DEADLINE).await?;
    ensure!(printer.connections() == 2);
    Ok(())
}
