//! A virtual ESC/POS kitchen printer for the tests: a TCP printer (port 9100 style) that
//! decodes what docketd sends, keeps each ticket as styled lines, draws it as a PNG, and answers
//! real-time status requests from sensors a test sets (paper out, near end, cover open, hung).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use docket_tests::printer::{PrinterOptions, VirtualPrinter};
//! let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
//! // ... point docketd's kitchen printer at printer.addr(), place an order ...
//! let tickets = printer.wait_tickets(1, docket_tests::DEADLINE).await?;
//! assert!(tickets[0].cut && tickets[0].unknown.is_empty());
//! assert!(tickets[0].style_of("#0042").is_some_and(|s| s.is_large()));
//! printer.set_paper_out(true); // offline: status says so, tickets are thrown away
//! # Ok(()) }
//! ```
//!
//! What it does not model: graphics, barcodes and QR codes (skipped as `unknown`), line spacing
//! (ESC 3 is accepted, the drawing keeps ESC 2's pitch), upside-down and rotated text, the
//! international character sets of ESC R, DLE EOT 7, 8 and 18 (no answer), ASB.

pub mod decode;
mod render;
pub mod server;
pub mod status;
pub mod ticket;

pub use decode::{ByteSink, Decoder, Event, Justify, Style};
pub use server::{PrinterOptions, VirtualPrinter};
pub use status::Sensors;
pub use ticket::{PrintedLine, Run, Ticket, TicketBuilder};
