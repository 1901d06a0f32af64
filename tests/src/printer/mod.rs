//! A virtual ESC/POS kitchen printer for the tests: a TCP printer (port 9100 style) that
//! decodes what docketd sends, keeps each ticket as styled lines, draws it as a PNG, and answers
//! real-time status requests from sensors a test sets (paper out, near end, cover open, hung).

pub mod decode;
mod render;
pub mod server;
pub mod status;
pub mod ticket;

pub use decode::{ByteSink, Decoder, Event, Justify, Style};
pub use server::{PrinterOptions, VirtualPrinter};
pub use status::Sensors;
pub use ticket::{PrintedLine, Run, Ticket, TicketBuilder};
