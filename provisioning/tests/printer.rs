//! `docket doctor` against a box with a kitchen printer: a line per station's printer, red when
//! the printer can't print, saying what to do.

use std::process::Command;
use std::time::{Duration, Instant};

use docket_tests::printer::{PrinterOptions, VirtualPrinter};
use docket_tests::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_printer_and_is_red_when_it_cannot_print() -> anyhow::Result<()> {
    let printer = VirtualPrinter::start(PrinterOptions::default()).await?;
    let toml = format!(
        "[printing]\n[[printing.printer]]\nstation = \"grill\"\naddress = \"{}\"\nmode = \"always\"\n",
        printer.addr()
    );
    let d = Daemon::start_with(&[], "test-site", &toml)?;
    let doctor = || -> anyhow::Result<String> {
        let o = Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(["doctor", &format!("{}:{}", d.host, d.https)])
            .args(["--mqtt-port", &d.mqtts.to_string()])
            .output()?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    // Until the doctor sees what it waits for, within a deadline.
    let until = |want: &str| -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = doctor()?;
            if text.contains(want) || Instant::now() > deadline {
                return Ok(text);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let text = until("printer ok")?;
    assert!(text.contains("ok   printer"), "{text}");
    assert!(
        text.contains(&format!("grill → {} (always)", printer.addr())),
        "{text}"
    );
    printer.set_paper_out(true);
    let text = until("FAIL printer")?;
    assert!(text.contains("paper out: load paper"), "{text}");
    Ok(())
}
