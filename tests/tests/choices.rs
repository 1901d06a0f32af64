//! Modifier groups and allergies against the real daemon over MQTT: a line that breaks its
//! item's group is refused `bad_choice` with nothing written, an allergy has the limits of a
//! text and reaches every kitchen board, and a menu whose groups cannot be served stops docketd
//! at start with a message naming the item and the group.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use docket_core::wire::{self, CommandBody, LineInput};
use docket_tests::{docketd_bin, line, reply_code as code, Client, Daemon};

type R = anyhow::Result<()>;

fn place(lines: Vec<LineInput>) -> CommandBody {
    CommandBody::place("5", lines)
}

fn with_mods(item: &str, mods: &[&str]) -> LineInput {
    let mut l = line(item, 1);
    l.mods = mods.iter().map(|m| m.to_string()).collect();
    l
}

fn with_allergy(allergy: &str) -> LineInput {
    let mut l = line("fries", 1);
    l.allergy = Some(allergy.into());
    l
}

/// Sends `body`, asserts it is refused with `want`, and that nothing was written.
async fn refused(
    d: &Daemon,
    c: &mut Client,
    body: &CommandBody,
    want: &str,
) -> anyhow::Result<String> {
    let before = d.store_counts()?;
    let r = c.command(body).await?;
    assert!(!r.ok, "{body:?} accepted");
    assert_eq!(code(&r), want, "{body:?}: {r:?}");
    assert_eq!(d.store_counts()?, before, "{body:?} wrote something");
    Ok(r.error.map(|e| e.message).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_must_satisfy_its_items_groups() -> R {
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;

    let two = place(vec![with_mods("steak-ribeye", &["medium", "well-done"])]);
    let why = refused(&d, &mut t, &two, "bad_choice").await?;
    assert_eq!(why, "Ribeye 300g: choose 1 of Doneness");
    let none = place(vec![
        line("fries", 1),
        with_mods("steak-ribeye", &["bearnaise"]),
    ]);
    refused(&d, &mut t, &none, "bad_choice").await?;
    let burger = place(vec![with_mods("burger-classic", &["rare", "well-done"])]);
    let why = refused(&d, &mut t, &burger, "bad_choice").await?;
    assert!(
        why.contains("Classic Burger") && why.contains("Doneness"),
        "{why}"
    );

    // One doneness is taken, with free mods beside it; a burger may go without.
    let ok = place(vec![
        with_mods("steak-ribeye", &["medium-rare", "bearnaise", "no salt"]),
        line("burger-classic", 1),
    ]);
    let r = t.command(&ok).await?;
    assert!(r.ok, "{r:?}");
    let order_id = r.order_id.context("order id")?;
    let add = CommandBody::AddLines {
        order_id,
        lines: vec![line("steak-ribeye", 1)],
    };
    refused(&d, &mut t, &add, "bad_choice").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allergy_has_limits_and_reaches_the_kitchen() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let fry = d.add_device("kds-fry", "station", &["fry"])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut k = Client::connect(d.mqtt, &fry).await?;
    k.subscribe(&wire::board_topic("fry")).await?;

    let long = place(vec![with_allergy(&"a".repeat(101))]);
    refused(&d, &mut t, &long, "too_long").await?;
    let bell = place(vec![with_allergy("sesame\u{7}")]);
    refused(&d, &mut t, &bell, "bad_field").await?;
    let newline = place(vec![with_allergy("sesame\nnuts")]);
    refused(&d, &mut t, &newline, "bad_field").await?;

    let mut l = with_allergy(&"s".repeat(100));
    l.notes = Some("birthday: candle please".into());
    let r = t.command(&place(vec![l, with_allergy("")])).await?;
    assert!(r.ok, "{r:?}");
    let board = k.board("fry", r.seq.context("seq")?).await?;
    let lines = &board
        .orders
        .first()
        .context("the order is on the fry board")?
        .lines;
    assert_eq!(lines[0].allergy.as_deref(), Some("s".repeat(100).as_str()));
    assert_eq!(lines[0].notes.as_deref(), Some("birthday: candle please"));
    assert_eq!(lines[1].allergy, None, "an empty allergy is stored as none");
    Ok(())
}

/// A menu whose steak asks for at least two of one doneness group of max one.
const BAD_MENU: &str = "version = 1\n[[items]]\nid = \"steak\"\nname = \"Steak\"\nprice = 100\n\
                        station = \"grill\"\n[[items.groups]]\nname = \"Doneness\"\nmin = 2\n\
                        max = 1\nmods = [\"rare\", \"medium\"]\n";

#[test]
fn a_menu_with_an_unservable_group_stops_docketd_at_start() -> R {
    let dir = tempfile::tempdir()?;
    let menu = dir.path().join("menu.toml");
    std::fs::write(&menu, BAD_MENU)?;
    let config = dir.path().join("docketd.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nsite_id = \"test-site\"\n[mqtt]\nlisten = \"127.0.0.1:0\"\n\
             listen_v5 = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [tls]\nhttps_listen = \"127.0.0.1:0\"\nmqtt_listen = \"127.0.0.1:0\"\n\
             mqtt_listen_v5 = \"127.0.0.1:0\"\n[menu]\nfile = \"{}\"\n",
            menu.display()
        ),
    )?;
    let mut child = Command::new(docketd_bin())
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("docketd served a menu whose group asks min 2 of max 1");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().context("stderr")?, &mut err)?;
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("\"steak\"") && err.contains("\"Doneness\"") && err.contains("min"),
        "the refusal names the item, the group and the fault: {err}"
    );
    Ok(())
}
