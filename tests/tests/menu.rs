//! The menu as a kitchen changes it, against the real daemon over MQTT: an item 86'd from a
//! station screen reaches every device at once and is refused until it is back; a manager adds,
//! changes and removes items; the refused, the unauthorised and the duplicate change nothing;
//! the edits survive a restart until the menu file itself changes.

use anyhow::Context;
use docket_core::menu::{Menu, MenuItem, ModGroup};
use docket_core::wire::{self, CommandBody};
use docket_tests::{line, reply_code, Client, Daemon};

type R = anyhow::Result<()>;

fn stock(item: &str, out: bool) -> CommandBody {
    CommandBody::SetStock {
        item: item.into(),
        out,
    }
}

fn set_item(item: MenuItem) -> CommandBody {
    CommandBody::SetItem {
        item: Box::new(item),
    }
}

fn place(item: &str) -> CommandBody {
    CommandBody::place("3", vec![line(item, 1)])
}

/// Versions in the box's `menu_versions`, and events.
fn stored(d: &Daemon) -> anyhow::Result<(i64, i64)> {
    let db = rusqlite::Connection::open(d.db_path())?;
    let versions = db.query_row("SELECT COUNT(*) FROM menu_versions", [], |r| r.get(0))?;
    let events = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    Ok((versions, events))
}

/// The next retained menu at `version` or above.
async fn menu_at(c: &mut Client, version: u64) -> anyhow::Result<Menu> {
    loop {
        let m = c.wait_for(|m| m.topic == wire::MENU_TOPIC).await?;
        let menu: Menu = wire::decode(&m.payload)?;
        if menu.version >= version {
            return Ok(menu);
        }
    }
}

fn out(menu: &Menu, id: &str) -> bool {
    menu.item(id).is_some_and(|i| i.out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_86_reaches_every_tablet_and_refuses_the_item_until_it_is_back() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let fry = d.add_device("kds-fry", "station", &["fry"])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut f = Client::connect(d.mqtt, &fry).await?;
    let mut g = Client::connect(d.mqtt, &grill).await?;
    t.subscribe(wire::MENU_TOPIC).await?;
    let first = menu_at(&mut t, 0).await?;
    assert!(!out(&first, "fries"));

    // Not the grill's item, and not a tablet's to 86: refused, nothing stored.
    let before = stored(&d)?;
    let r = g.command(&stock("fries", true)).await?;
    assert_eq!(reply_code(&r), "forbidden", "{r:?}");
    let why = r.error.map(|e| e.message).unwrap_or_default();
    assert!(why.contains("Fries") && why.contains("fry"), "{why}");
    assert_eq!(
        reply_code(&t.command(&stock("fries", true)).await?),
        "forbidden"
    );
    assert_eq!(
        reply_code(&f.command(&stock("unicorn", true)).await?),
        "unknown_item"
    );
    assert_eq!(stored(&d)?, before);

    // The fry screen 86s its fries: every tablet has it at once, as the menu's next version.
    f.send_as("86-fries", &stock("fries", true)).await?;
    let r = f.reply_to("86-fries").await?;
    assert_eq!(
        (r.ok, r.menu_version),
        (true, Some(first.version + 1)),
        "{r:?}"
    );
    let menu = menu_at(&mut t, first.version + 1).await?;
    assert!(out(&menu, "fries") && menu.items.len() == first.items.len());
    let r = t.command(&place("fries")).await?;
    assert_eq!(reply_code(&r), "sold_out");
    assert_eq!(r.error.context("why")?.message, "Fries is 86'd (sold out)");
    // The same command again (QoS 1 redelivery): the first reply, no new version.
    f.send_as("86-fries", &stock("fries", true)).await?;
    assert_eq!(f.reply_to("86-fries").await?, r_ok(first.version + 1));
    assert_eq!(
        stored(&d)?,
        (before.0 + 1, before.1),
        "one version, no event"
    );

    // Back on: a new version, and the fries are taken again.
    let r = f.command(&stock("fries", false)).await?;
    assert_eq!(r.menu_version, Some(first.version + 2));
    assert!(!out(&menu_at(&mut t, first.version + 2).await?, "fries"));
    let r = t.command(&place("fries")).await?;
    assert!(r.ok, "{r:?}");
    assert_eq!(stored(&d)?, (before.0 + 2, before.1 + 1));
    Ok(())
}

fn r_ok(version: u64) -> wire::Reply {
    wire::Reply::menu("86-fries", version)
}

const MENU: &str = "version = 1\n\
    [[items]]\nid = \"fries\"\nname = \"Fries\"\nprice = 450\nstation = \"fry\"\n\
    [[items]]\nid = \"steak\"\nname = \"Steak\"\nprice = 2900\nstation = \"grill\"\n";

fn shake() -> MenuItem {
    let mut i = MenuItem::plain("shake", "Vanilla shake", 550, "bar");
    i.category = Some("Drinks".into());
    i.prep_min = Some(3);
    i.groups = vec![ModGroup {
        name: "Size".into(),
        min: 1,
        max: 1,
        mods: vec!["small".into(), "large".into()],
    }];
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managers_edits_survive_a_restart_until_the_menu_file_changes() -> R {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("menu.toml");
    std::fs::write(&file, MENU)?;
    let path = file.display().to_string();
    let mut d = Daemon::start_with_env(&[("DOCKET_MENU_FILE", &path)])?;
    let admin = d.add_device("admin-1", "manager", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut a = Client::connect(d.mqtt, &admin).await?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;

    // A new item at a new station: the menu's version 2, and the bar gets its board.
    a.subscribe(&wire::board_topic("bar")).await?;
    let r = a.command(&set_item(shake())).await?;
    assert_eq!((r.ok, r.menu_version), (true, Some(2)), "{r:?}");
    let m = a.wait_for(|m| m.topic == wire::board_topic("bar")).await?;
    let board: wire::Board = wire::decode(&m.payload)?;
    assert!(board.orders.is_empty());
    let r = t.command(&place("shake")).await?;
    assert_eq!(
        reply_code(&r),
        "bad_choice",
        "its Size group is asked: {r:?}"
    );

    // The refused and the unauthorised change nothing.
    let before = stored(&d)?;
    let mut bad = shake();
    bad.price = -1;
    let r = a.command(&set_item(bad)).await?;
    assert_eq!(reply_code(&r), "bad_menu");
    assert!(r.error.context("why")?.message.contains("price"));
    let mut fat = shake();
    fat.mods = (0..25).map(|n| format!("mod-{n}")).collect();
    assert_eq!(reply_code(&a.command(&set_item(fat)).await?), "bad_menu");
    assert_eq!(
        reply_code(&t.command(&set_item(shake())).await?),
        "forbidden"
    );
    let rm = |id: &str| CommandBody::RemoveItem { item: id.into() };
    assert_eq!(reply_code(&t.command(&rm("fries")).await?), "forbidden");
    assert_eq!(
        reply_code(&a.command(&rm("unicorn")).await?),
        "unknown_item"
    );
    assert_eq!(stored(&d)?, before);

    // A price change and a removal: versions 3 and 4.
    let mut steak = MenuItem::plain("steak", "Steak", 3100, "grill");
    steak.prep_min = Some(14);
    assert_eq!(
        a.command(&set_item(steak.clone())).await?.menu_version,
        Some(3)
    );
    assert_eq!(a.command(&rm("fries")).await?.menu_version, Some(4));
    assert_eq!(
        reply_code(&t.command(&place("fries")).await?),
        "unknown_item"
    );

    // kill -9 and back: the edits are the menu.
    d.restart()?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    t.subscribe(wire::MENU_TOPIC).await?;
    let menu = menu_at(&mut t, 0).await?;
    assert_eq!(menu.version, 4);
    assert_eq!(menu.item("steak"), Some(&steak));
    assert!(menu.item("fries").is_none() && menu.item("shake").is_some());

    // The file changes: it is the menu again, above every version, and the log says so.
    std::fs::write(&file, MENU.replace("2900", "3200"))?;
    d.restart()?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    t.subscribe(wire::MENU_TOPIC).await?;
    let menu = menu_at(&mut t, 0).await?;
    assert_eq!(menu.version, 5);
    assert_eq!(menu.item("steak").map(|i| i.price), Some(3200));
    assert!(menu.item("fries").is_some() && menu.item("shake").is_none());
    assert!(
        d.log_text().contains("the menu file changed"),
        "{}",
        d.log_text()
    );
    Ok(())
}
