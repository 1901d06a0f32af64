//! Modifier groups and allergies on lines: `bad_choice`, the allergy's limits, and what a line
//! carries of them.

use super::*;
use crate::menu::{MenuItem, ModGroup};

fn group(name: &str, min: u32, max: u32, mods: &[&str]) -> ModGroup {
    ModGroup {
        name: name.into(),
        min,
        max,
        mods: mods.iter().map(|m| m.to_string()).collect(),
    }
}

const DONENESS: [&str; 4] = ["rare", "medium-rare", "medium", "well-done"];

fn site() -> OrderBook {
    let mut steak = MenuItem::plain("steak", "Ribeye 300g", 2900, "grill");
    steak.mods = vec!["pepper-sauce".into()];
    steak.groups = vec![group("Doneness", 1, 1, &DONENESS)];
    let mut burger = MenuItem::plain("burger", "Burger", 1250, "grill");
    burger.groups = vec![
        group("Doneness", 0, 1, &DONENESS),
        group("Extras", 0, 2, &["bacon", "cheese", "egg"]),
    ];
    let menu = Menu {
        version: 1,
        items: vec![steak, burger, MenuItem::plain("fries", "Fries", 400, "fry")],
    };
    menu.validate().expect("the test menu is valid");
    OrderBook {
        menu: Some(menu),
        orders: BTreeMap::new(),
        next_ticket: 1,
        limits: SiteLimits::default(),
        open_bytes: OpenBytes::default(),
    }
}

fn tablet() -> Actor {
    Actor {
        device: "tablet-1".into(),
        role: Role::Tablet,
        stations: vec![],
    }
}

fn line(item: &str, mods: &[&str]) -> LineInput {
    LineInput {
        item: item.into(),
        qty: 1,
        mods: mods.iter().map(|m| m.to_string()).collect(),
        notes: None,
        course: None,
        allergy: None,
        seat: None,
    }
}

fn place(lines: Vec<LineInput>) -> CommandBody {
    CommandBody::place("7", lines)
}

/// Decides and applies `cmd`; the order after it.
fn run(site: &mut OrderBook, cmd: &CommandBody) -> Result<Order, Rejection> {
    let changes = decide(site, &tablet(), cmd, 1_000)?;
    for c in &changes {
        apply(site, c);
    }
    Ok(changes[0].order.clone())
}

#[track_caller]
fn refused(site: &mut OrderBook, cmd: CommandBody) -> Rejection {
    let before = site.clone();
    let r = run(site, &cmd).expect_err("refused");
    assert_eq!(*site, before, "a refusal changes nothing");
    r
}

#[test]
fn two_donenesses_are_refused_and_named() {
    let mut s = site();
    let r = refused(&mut s, place(vec![line("steak", &["medium", "well-done"])]));
    assert_eq!(r.code, Code::BadChoice);
    assert_eq!(r.message, "Ribeye 300g: choose 1 of Doneness");
    let r = refused(&mut s, place(vec![line("burger", &["rare", "medium"])]));
    assert_eq!(r.code, Code::BadChoice);
    assert_eq!(r.message, "Burger: choose at most 1 of Doneness");
}

#[test]
fn a_required_group_needs_a_choice() {
    let mut s = site();
    let r = refused(&mut s, place(vec![line("steak", &["pepper-sauce"])]));
    assert_eq!(r.code, Code::BadChoice);
    // One good line does not carry a bad one.
    let r = refused(
        &mut s,
        place(vec![line("steak", &["rare"]), line("steak", &[])]),
    );
    assert_eq!(r.code, Code::BadChoice);
}

#[test]
fn choices_within_every_group_are_taken_with_free_mods() {
    let mut s = site();
    let o = run(
        &mut s,
        &place(vec![
            line("steak", &["medium-rare", "pepper-sauce", "no salt"]),
            line("burger", &[]),
            line("burger", &["well-done", "bacon", "egg", "no onion"]),
            line("fries", &["rare", "well-done"]),
        ]),
    )
    .expect("accepted");
    assert_eq!(o.lines[0].mods, ["medium-rare", "pepper-sauce", "no salt"]);
    assert_eq!(o.lines.len(), 4);
}

#[test]
fn too_many_of_an_optional_group_is_refused() {
    let mut s = site();
    let r = refused(
        &mut s,
        place(vec![line("burger", &["bacon", "cheese", "egg"])]),
    );
    assert_eq!(r.code, Code::BadChoice);
    assert_eq!(r.message, "Burger: choose at most 2 of Extras");
}

#[test]
fn add_lines_checks_groups_too() {
    let mut s = site();
    let o = run(&mut s, &place(vec![line("fries", &[])])).expect("placed");
    let add = |lines| CommandBody::AddLines {
        order_id: o.id.clone(),
        lines,
    };
    assert_eq!(
        refused(&mut s, add(vec![line("steak", &[])])).code,
        Code::BadChoice
    );
    let o = run(&mut s, &add(vec![line("steak", &["rare"])])).expect("added");
    assert_eq!(o.lines.len(), 2);
}

#[test]
fn an_allergy_is_kept_apart_from_notes() {
    let mut s = site();
    let mut l = line("fries", &[]);
    l.allergy = Some("sesame".into());
    l.notes = Some("birthday: candle please".into());
    let mut empty = line("fries", &[]);
    empty.allergy = Some(String::new());
    let o = run(&mut s, &place(vec![l, empty])).expect("placed");
    assert_eq!(o.lines[0].allergy.as_deref(), Some("sesame"));
    assert_eq!(o.lines[0].notes.as_deref(), Some("birthday: candle please"));
    assert_eq!(o.lines[1].allergy, None, "\"\" is stored as absent");
    // It crosses the wire with the order and counts in its bytes.
    let bytes = crate::wire::encode(&o).expect("encodes");
    let back: Order = crate::wire::decode(&bytes).expect("decodes");
    assert_eq!(back, o);
    assert_eq!(s.open_bytes.total(), open_bytes::size(&o));
}

#[test]
fn an_allergy_has_limits_like_text() {
    let mut s = site();
    let with = |a: String| {
        let mut l = line("fries", &[]);
        l.allergy = Some(a);
        place(vec![l])
    };
    let longest = "a".repeat(limits::MAX_ALLERGY_CHARS);
    assert!(run(&mut s.clone(), &with(longest)).is_ok());
    let r = refused(&mut s, with("a".repeat(limits::MAX_ALLERGY_CHARS + 1)));
    assert_eq!(r.code, Code::TooLong);
    for bad in ["nuts\u{7}", "nuts\nsesame", "   "] {
        let r = refused(&mut s, with(bad.into()));
        assert_eq!(r.code, Code::BadField, "{bad:?}");
        assert!(r.message.contains("allergy"), "{}", r.message);
    }
}
