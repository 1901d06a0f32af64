//! docket-printer: the virtual ESC/POS kitchen printer as a process, for the demo.
//!
//! `docket-printer --port 9100 [--columns 48] [--out DIR]` listens on 127.0.0.1:PORT, prints
//! `listening on 127.0.0.1:PORT`, then one line per ticket it prints (and, with `--out`, writes
//! `DIR/NNNN.txt` and `DIR/NNNN.png`), until it is killed. It owns nothing but that printer.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use docket_tests::printer::{PrinterOptions, VirtualPrinter};

#[derive(Parser)]
#[command(about = "A virtual ESC/POS kitchen printer on a TCP port (docket's demo)")]
struct Args {
    /// TCP port on 127.0.0.1 (0: any free one).
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Paper width in font A columns: 48 (80 mm) or 32 (58 mm).
    #[arg(long, default_value_t = 48)]
    columns: u16,
    /// Directory for each ticket's NNNN.txt and NNNN.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = PrinterOptions {
        columns: args.columns,
        out_dir: args.out.clone(),
    };
    let printer = VirtualPrinter::start_on(args.port, opts).await?;
    println!("listening on {}", printer.addr());
    let mut seen = 0;
    loop {
        // A day without a ticket is no failure for a demo printer: wait again.
        let Ok(tickets) = printer
            .wait_tickets(seen + 1, Duration::from_secs(86_400))
            .await
        else {
            continue;
        };
        for (i, t) in tickets.iter().enumerate().skip(seen) {
            let n = i + 1;
            let lines = t.lines.len();
            let what = if t.cut {
                ""
            } else {
                " (no cut: connection closed)"
            };
            match (&args.out, t.cut) {
                (Some(dir), true) => {
                    let png = dir.join(format!("{n:04}.png"));
                    println!("ticket {n:04}: {lines} lines → {}", png.display());
                }
                _ => println!("ticket {n:04}: {lines} lines{what}"),
            }
        }
        seen = tickets.len();
    }
}
