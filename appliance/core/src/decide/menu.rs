//! The menu commands: `set_stock` (86 an item, or put it back), `set_item` (add or replace one
//! item) and `remove_item`. Each decides a whole new menu, one version up, or refuses and
//! changes nothing. They touch no order: the engine stores the new menu in the same group
//! commit as the command's reply and republishes it retained; lines already ordered keep the
//! name and station they were ordered with.

use crate::menu::{Menu, MenuItem};
use crate::wire::{self, CommandBody};
use crate::{Code, Rejection};

use super::{authorise, clip, Actor, OrderBook, Role};

/// The retained menu's encoding at most: what every tablet takes on each change.
pub const MAX_MENU_BYTES: usize = 256 * 1024;

/// Decides one menu command: `Ok(Some(menu))` is the new menu (version + 1), `Ok(None)` a
/// command that changes nothing (an item 86'd twice, an item saved unchanged).
pub fn decide_menu(
    site: &OrderBook,
    actor: &Actor,
    cmd: &CommandBody,
) -> Result<Option<Menu>, Rejection> {
    authorise(actor, cmd)?;
    let menu = site
        .menu
        .as_ref()
        .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
    let mut next = menu.clone();
    match cmd {
        CommandBody::SetStock { item, out } => {
            let i = item_mut(&mut next, item)?;
            if actor.role == Role::Station && !actor.stations.contains(&i.station) {
                return Err(Rejection::new(
                    Code::Forbidden,
                    format!(
                        "{} is cooked at {}: a station screen may 86 only its own items",
                        i.name, i.station
                    ),
                ));
            }
            i.out = *out;
        }
        CommandBody::SetItem { item } => set_item(&mut next, item),
        CommandBody::RemoveItem { item } => {
            item_mut(&mut next, item)?;
            next.items.retain(|i| i.id != *item);
        }
        _ => {
            return Err(Rejection::new(
                Code::MalformedBody,
                format!("{} is not a menu command", cmd.kind()),
            ))
        }
    }
    if next.items == menu.items {
        return Ok(None);
    }
    next.version = menu.version + 1;
    servable(&next)?;
    Ok(Some(next))
}

/// What every menu the box serves must pass, however it came (the menu file's own check,
/// a menu command, head office's menu): [`Menu::validate`], and its encoding within
/// [`MAX_MENU_BYTES`].
pub fn servable(menu: &Menu) -> Result<(), Rejection> {
    menu.validate()
        .map_err(|e| Rejection::new(Code::BadMenu, e.to_string()))?;
    let bytes = wire::encode(menu)
        .map_err(|e| Rejection::new(Code::Internal, e.to_string()))?
        .len();
    if bytes > MAX_MENU_BYTES {
        return Err(Rejection::new(
            Code::BadMenu,
            format!("the menu would be {bytes} bytes; at most {MAX_MENU_BYTES} are served"),
        ));
    }
    Ok(())
}

/// Decides a menu from head office (docs/operations.md, "Menus from head office"): its items
/// replace the box's (names, prices, stations, groups: head office owns the content, and
/// local item edits since its last menu are gone), but an item the box has 86'd stays 86'd,
/// and one the box has back on stays on, whatever head office's copy says: the kitchen knows
/// what it has run out of. An item new to the box takes head office's `out`. `Ok(None)`: the
/// box already serves exactly this. Validated as every served menu ([`servable`]).
pub fn decide_central(site: &OrderBook, items: Vec<MenuItem>) -> Result<Option<Menu>, Rejection> {
    let menu = site
        .menu
        .as_ref()
        .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
    let items = merge_central(menu, items);
    if items == menu.items {
        return Ok(None);
    }
    let next = Menu {
        version: menu.version + 1,
        items,
    };
    servable(&next)?;
    Ok(Some(next))
}

/// Head office's items with the box's stock state: each item the box has keeps its `out`.
pub fn merge_central(box_menu: &Menu, central: Vec<MenuItem>) -> Vec<MenuItem> {
    central
        .into_iter()
        .map(|mut i| {
            if let Some(mine) = box_menu.item(&i.id) {
                i.out = mine.out;
            }
            i
        })
        .collect()
}

fn item_mut<'a>(menu: &'a mut Menu, id: &str) -> Result<&'a mut MenuItem, Rejection> {
    menu.items
        .iter_mut()
        .find(|i| i.id == id)
        .ok_or_else(|| Rejection::new(Code::UnknownItem, format!("no menu item {:?}", clip(id))))
}

/// Replaces the item with this id in place, or adds it after the last item of its category
/// (at the end when its category is new).
fn set_item(menu: &mut Menu, item: &MenuItem) {
    if let Some(i) = menu.items.iter_mut().find(|i| i.id == item.id) {
        *i = item.clone();
        return;
    }
    let at = menu
        .items
        .iter()
        .rposition(|i| i.category == item.category)
        .map_or(menu.items.len(), |p| p + 1);
    menu.items.insert(at, item.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;
    use crate::wire::LineInput;

    fn actor(role: Role, stations: &[&str]) -> Actor {
        Actor {
            device: format!("{}-1", role.as_str()),
            role,
            stations: stations.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn book() -> OrderBook {
        OrderBook {
            menu: Some(Menu::sample(&[("fries", "fry"), ("steak", "grill")])),
            ..Default::default()
        }
    }

    fn stock(item: &str, out: bool) -> CommandBody {
        CommandBody::SetStock {
            item: item.into(),
            out,
        }
    }

    fn order(item: &str) -> CommandBody {
        CommandBody::place("4", vec![LineInput::plain(item, 1)])
    }

    #[test]
    fn an_86d_item_is_refused_until_it_is_back() {
        let mut l = Ledger::new(book());
        let fry = actor(Role::Station, &["fry"]);
        let tablet = actor(Role::Tablet, &[]);
        let r = l.handle("c1", &fry, &stock("fries", true), 1);
        assert_eq!((r.ok, r.menu_version), (true, Some(2)), "{r:?}");
        let r = l.handle("c2", &tablet, &order("fries"), 2);
        let e = r.error.expect("refused");
        assert_eq!(e.code, Code::SoldOut);
        assert_eq!(e.message, "FRIES is 86'd (sold out)");
        assert!(l.site.orders.is_empty(), "nothing placed");
        // 86'd twice changes nothing: the same version.
        let r = l.handle("c3", &fry, &stock("fries", true), 3);
        assert_eq!(r.menu_version, Some(2));
        let r = l.handle("c4", &fry, &stock("fries", false), 4);
        assert_eq!(r.menu_version, Some(3));
        assert!(l.handle("c5", &tablet, &order("fries"), 5).ok);
        assert!(l
            .log
            .iter()
            .all(|e| e.kind == crate::wire::EventKind::OrderPlaced));
    }

    #[test]
    fn a_station_86s_only_its_own_items_and_a_tablet_none() {
        let site = book();
        let fry = actor(Role::Station, &["fry"]);
        let e = decide_menu(&site, &fry, &stock("steak", true)).expect_err("not its station");
        assert_eq!(e.code, Code::Forbidden);
        let tablet = actor(Role::Tablet, &[]);
        let e = decide_menu(&site, &tablet, &stock("fries", true)).expect_err("a tablet");
        assert_eq!(e.code, Code::Forbidden);
        let expo = actor(Role::Expo, &[]);
        assert!(decide_menu(&site, &expo, &stock("steak", true)).is_ok());
        let e = decide_menu(&site, &fry, &stock("nope", true)).expect_err("unknown");
        assert_eq!(e.code, Code::UnknownItem);
    }

    #[test]
    fn only_a_manager_edits_items_and_a_bad_item_changes_nothing() {
        let site = book();
        let manager = actor(Role::Manager, &[]);
        let mut burger = MenuItem::plain("burger", "Burger", 1450, "grill");
        burger.prep_min = Some(9);
        let add = CommandBody::SetItem {
            item: Box::new(burger.clone()),
        };
        for who in [actor(Role::Expo, &[]), actor(Role::Station, &["grill"])] {
            let e = decide_menu(&site, &who, &add).expect_err("not a manager");
            assert_eq!(e.code, Code::Forbidden);
        }
        let next = decide_menu(&site, &manager, &add)
            .unwrap()
            .expect("changed");
        assert_eq!(next.version, 2);
        assert_eq!(next.item("burger"), Some(&burger));
        let mut bad = burger.clone();
        bad.price = -1;
        let e = decide_menu(
            &site,
            &manager,
            &CommandBody::SetItem {
                item: Box::new(bad),
            },
        )
        .expect_err("negative price");
        assert_eq!(e.code, Code::BadMenu);
        assert!(e.message.contains("price"), "{}", e.message);
        let mut long = burger;
        long.name = "n".repeat(65);
        let e = decide_menu(
            &site,
            &manager,
            &CommandBody::SetItem {
                item: Box::new(long),
            },
        )
        .expect_err("long name");
        assert!(e.message.contains("name"), "{}", e.message);
    }

    #[test]
    fn removing_takes_one_item_but_never_the_last() {
        let site = book();
        let manager = actor(Role::Manager, &[]);
        let rm = |id: &str| CommandBody::RemoveItem { item: id.into() };
        let next = decide_menu(&site, &manager, &rm("fries")).unwrap().unwrap();
        assert_eq!(next.stations(), vec!["grill"]);
        let last = OrderBook {
            menu: Some(next),
            ..Default::default()
        };
        let e = decide_menu(&last, &manager, &rm("steak")).expect_err("last item");
        assert_eq!(e.code, Code::BadMenu);
        let e = decide_menu(&site, &manager, &rm("nope")).expect_err("unknown");
        assert_eq!(e.code, Code::UnknownItem);
    }

    fn central(items: &[(&str, &str, i64, bool)]) -> Vec<MenuItem> {
        items
            .iter()
            .map(|(id, station, price, out)| {
                let mut i = MenuItem::plain(id, &id.to_uppercase(), *price, station);
                i.out = *out;
                i
            })
            .collect()
    }

    #[test]
    fn head_office_owns_the_content_and_the_box_its_stock() {
        // The box: fries 86'd here, steak's price edited here.
        let mut site = book();
        let menu = site.menu.as_mut().unwrap();
        menu.items[0].out = true;
        menu.items[1].price = 999;
        // Head office: a new price for fries (on, in its copy), steak (out, in its copy), and a
        // new item already out.
        let items = central(&[
            ("fries", "fry", 450, false),
            ("steak", "grill", 2900, true),
            ("soup", "cold", 700, true),
        ]);
        let next = decide_central(&site, items).unwrap().expect("changed");
        assert_eq!(next.version, 2);
        let got: Vec<(&str, i64, bool)> = next
            .items
            .iter()
            .map(|i| (i.id.as_str(), i.price, i.out))
            .collect();
        // Fries stay 86'd (the box's), steak stays on (the box's) at head office's price, the
        // local price edit is replaced; soup is new and takes head office's `out`.
        assert_eq!(
            got,
            [
                ("fries", 450, true),
                ("steak", 2900, false),
                ("soup", 700, true)
            ]
        );
        // The same menu again changes nothing.
        let again = OrderBook {
            menu: Some(next.clone()),
            ..Default::default()
        };
        let items = central(&[
            ("fries", "fry", 450, false),
            ("steak", "grill", 2900, true),
            ("soup", "cold", 700, true),
        ]);
        assert_eq!(decide_central(&again, items), Ok(None));
    }

    #[test]
    fn a_central_menu_is_held_to_what_every_menu_is() {
        let site = book();
        for (items, why) in [
            (vec![], "no items"),
            (central(&[("a", "Bad Station", 1, false)]), "station"),
            (central(&[("a", "fry", -5, false)]), "price"),
            (
                central(&[("a", "fry", 1, false), ("a", "grill", 1, false)]),
                "twice",
            ),
        ] {
            let e = decide_central(&site, items).expect_err(why);
            assert_eq!(e.code, Code::BadMenu);
            assert!(e.message.contains(why), "{why:?} not in {:?}", e.message);
        }
        let e = decide_central(&OrderBook::default(), central(&[("a", "fry", 1, false)]))
            .expect_err("no menu");
        assert_eq!(e.code, Code::NoMenu);
    }

    #[test]
    fn a_menu_over_its_bytes_is_refused() {
        let manager = actor(Role::Manager, &[]);
        let mut site = book();
        let fat = |n: usize| {
            let mut i = MenuItem::plain(&format!("item-{n}"), &"N".repeat(64), 1, "grill");
            i.mods = (0..24).map(|m| format!("{m:0>40}")).collect();
            i
        };
        let menu = site.menu.as_mut().unwrap();
        menu.items.extend((0..280).map(fat));
        let e = decide_menu(
            &site,
            &manager,
            &CommandBody::SetItem {
                item: Box::new(fat(999)),
            },
        )
        .expect_err("too big");
        assert_eq!(e.code, Code::BadMenu);
        assert!(e.message.contains("bytes"), "{}", e.message);
    }
}
