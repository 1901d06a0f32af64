//! A full disk: the box refuses new commands with `storage_full`, keeps everything it had
//! committed, and takes the same commands again (same ids) once space is back. The data dir is
//! a small tmpfs (mounting needs root; elsewhere the test says it is skipped and why).

use docket_core::wire::{self, CommandBody};
use docket_tests::{line, Client, Daemon, Tmpfs};

type R = anyhow::Result<()>;

fn place(table: &str) -> CommandBody {
    CommandBody::place(table, vec![line("burger-classic", 1), line("fries", 2)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_orders_clearly_and_recovers_with_the_same_ids() -> R {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let Some(_mount) = Tmpfs::mount(&data, "8m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the disk-full test did not run"
        );
        return Ok(());
    };
    let mut d = Daemon::start_with(
        &[("DOCKET_DATA_DIR", data.to_str().unwrap())],
        "test-site",
        "",
    )?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let screen = d.add_device("kds-grill", "station", &["grill"])?;
    let mut s = Client::connect(d.mqtt, &screen).await?;
    s.subscribe(wire::STATUS_TOPIC).await?;
    let mut placed = Vec::new();
    for i in 0..5 {
        let r = t.command(&place(&format!("{i}"))).await?;
        assert!(r.ok, "{r:?}");
        placed.push(r);
    }

    let filler = Tmpfs::fill(&data)?;
    // New orders are refused with a clear, retryable code, and nothing is written.
    let id = t.next_id();
    let mut refused = None;
    for _ in 0..20 {
        t.send_as(&id, &place("full")).await?;
        let r = t.reply_to(&id).await?;
        if !r.ok {
            refused = Some(r);
            break;
        }
        // A commit can still squeeze into the last free pages: try again with a new id.
        placed.push(r);
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(&filler)
            .map(|mut f| std::io::Write::write_all(&mut f, &[0u8; 4096]));
    }
    let refused = refused.expect("the box kept accepting orders on a full disk");
    let err = refused.error.clone().expect("an error");
    assert_eq!(err.code, "storage_full", "{refused:?}");
    assert!(err.message.contains("disk is full"), "{}", err.message);
    assert_eq!(d.metric("docket_storage_full")?, 1.0);
    // Every device sees the alarm in the box's status.
    let alarm = |want: bool| {
        move |m: &docket_tests::Msg| {
            m.topic == wire::STATUS_TOPIC
                && wire::decode::<wire::ApplianceStatus>(&m.payload)
                    .is_ok_and(|st| st.storage_full == want)
        }
    };
    s.wait_for(alarm(true)).await?;
    let (status, health) = d.get("/healthz")?;
    assert_eq!(status, 200, "the box still serves what it has: {health}");

    // Space returns: the same command id is taken now, once.
    std::fs::remove_file(&filler)?;
    t.send_as(&id, &place("full")).await?;
    let r = t.reply_to(&id).await?;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.ticket, Some(placed.len() as u64 + 1));
    assert_eq!(d.metric("docket_storage_full")?, 0.0);
    s.wait_for(alarm(false)).await?;
    t.send_as(&id, &place("full")).await?;
    let again = t.reply_to(&id).await?;
    assert_eq!(again.ticket, r.ticket, "a resend is the same order");

    // Everything committed before the disk filled is intact.
    d.terminate()?;
    let conn = rusqlite::Connection::open_with_flags(
        data.join("docket.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    let orders: i64 = conn.query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?;
    assert_eq!(orders as usize, placed.len() + 1);
    Ok(())
}
