//! What a simulated tablet orders and what a device's commands are for: a realistic order from
//! the retained menu, the timers and actions of a device. Pure: no I/O.

use docket_core::wire::{self, LineInput};
use docket_core::{Menu, MenuItem};
use rand::rngs::StdRng;
use rand::Rng;

pub enum Timer {
    /// A tablet's next order.
    Order,
    /// A tablet fires a held course.
    Fire {
        order_id: String,
        ticket: u64,
        course: u32,
    },
    /// A screen bumps (station) or completes (expo) a ticket on `board`.
    Act { order_id: String, board: String },
}

#[derive(Debug, Clone)]
pub enum Action {
    Place {
        table: String,
        lines: usize,
        held_course: Option<u32>,
    },
    Fire {
        order_id: String,
        ticket: u64,
        course: u32,
    },
    Bump {
        order_id: String,
        ticket: u64,
        station: String,
    },
    Complete {
        order_id: String,
        ticket: u64,
        table: String,
    },
}

impl Action {
    /// (order, board) this action acts on, for screens.
    pub fn target(&self) -> Option<(&str, &str)> {
        match self {
            Action::Bump {
                order_id, station, ..
            } => Some((order_id, station)),
            Action::Complete { order_id, .. } => Some((order_id, wire::EXPO)),
            _ => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Action::Place { table, .. } => format!("place_order for table {table}"),
            Action::Fire {
                order_id, course, ..
            } => format!("fire_course {course} of {order_id}"),
            Action::Bump {
                order_id, station, ..
            } => format!("bump of {order_id} at {station}"),
            Action::Complete { order_id, .. } => format!("complete of {order_id}"),
        }
    }
}

const NOTES: [&str; 8] = [
    "sauce on the side",
    "birthday: candle please",
    "no rush, long lunch",
    "rush please",
    "share plates",
    "gluten free please",
    "kids' portion",
    "extra napkins",
];

/// A guest's allergy, sent apart from the notes (`allergy`): kitchen pages show it as an alarm.
const ALLERGIES: [&str; 5] = [
    "nut allergy",
    "shellfish allergy",
    "sesame",
    "severe peanut allergy",
    "coeliac",
];

/// A line's mods as a waiter picks them: now and then a free one or two, and within every
/// group of the item between its min and max (a steak always gets one doneness, never two).
pub fn pick_mods(rng: &mut StdRng, item: &MenuItem) -> Vec<String> {
    let mut mods = Vec::new();
    if !item.mods.is_empty() && rng.gen_bool(0.3) {
        let a = rng.gen_range(0..item.mods.len());
        mods.push(item.mods[a].clone());
        if item.mods.len() > 1 && rng.gen_bool(0.2) {
            let b = (a + rng.gen_range(1..item.mods.len())) % item.mods.len();
            mods.push(item.mods[b].clone());
        }
    }
    for g in &item.groups {
        let (min, max) = (g.min as usize, (g.max as usize).min(g.mods.len()));
        let n = if min == 0 && !rng.gen_bool(0.4) {
            0
        } else {
            rng.gen_range(min.max(1)..=max.max(1))
        };
        let start = rng.gen_range(0..g.mods.len());
        let chosen = (0..n).map(|k| g.mods[(start + k) % g.mods.len()].clone());
        mods.extend(chosen);
    }
    mods
}

fn in_category<'a>(menu: &'a Menu, cats: &[&str]) -> Vec<&'a MenuItem> {
    menu.items
        .iter()
        .filter(|i| i.category.as_deref().is_some_and(|c| cats.contains(&c)))
        .collect()
}

fn or_all<'a>(menu: &'a Menu, pool: Vec<&'a MenuItem>) -> Vec<&'a MenuItem> {
    if pool.is_empty() {
        menu.items.iter().collect()
    } else {
        pool
    }
}

/// A realistic order: (table, lines, the held course if any).
pub fn make_order(rng: &mut StdRng, menu: &Menu) -> (String, Vec<LineInput>, Option<u32>) {
    let table = match rng.gen_range(0..100) {
        0..=79 => rng.gen_range(1..=24).to_string(),
        80..=91 => format!("bar-{}", rng.gen_range(1..=8)),
        _ => "takeaway".to_owned(),
    };
    let n: usize = [1, 2, 2, 2, 3, 3, 3, 4, 4, 5][rng.gen_range(0..10)];
    let second = n >= 2 && rng.gen_bool(0.25);
    let (first_pool, second_pool) = if second {
        (
            or_all(menu, in_category(menu, &["Starters", "Drinks", "Sides"])),
            or_all(menu, in_category(menu, &["Mains", "Desserts"])),
        )
    } else {
        let not_dessert: Vec<&MenuItem> = menu
            .items
            .iter()
            .filter(|i| i.category.as_deref() != Some("Desserts"))
            .collect();
        (or_all(menu, not_dessert), Vec::new())
    };
    let n2 = if !second {
        0
    } else if n >= 4 {
        rng.gen_range(1..=2)
    } else {
        1
    };
    let mut lines: Vec<LineInput> = Vec::with_capacity(n);
    for k in 0..n {
        let (pool, course) = if k < n - n2 {
            (&first_pool, None)
        } else {
            (&second_pool, Some(2))
        };
        let item = pool[rng.gen_range(0..pool.len())];
        let mods = pick_mods(rng, item);
        let notes = rng
            .gen_bool(0.08)
            .then(|| NOTES[rng.gen_range(0..NOTES.len())].to_owned());
        let allergy = rng
            .gen_bool(0.03)
            .then(|| ALLERGIES[rng.gen_range(0..ALLERGIES.len())].to_owned());
        let qty = match rng.gen_range(0..100) {
            0..=74 => 1,
            75..=94 => 2,
            _ => rng.gen_range(3..=4),
        };
        // The same plain item twice is one line with a bigger qty, as a tablet would send it.
        if mods.is_empty() && notes.is_none() && allergy.is_none() {
            if let Some(l) = lines.iter_mut().find(|l| {
                l.item == item.id
                    && l.course == course
                    && l.mods.is_empty()
                    && l.notes.is_none()
                    && l.allergy.is_none()
            }) {
                l.qty += qty;
                continue;
            }
        }
        lines.push(LineInput {
            item: item.id.clone(),
            qty,
            mods,
            notes,
            course,
            allergy,
            // At a table, most lines name the guest's seat; a takeaway has none.
            seat: (table != "takeaway" && rng.gen_bool(0.6)).then(|| rng.gen_range(1..=4)),
        });
    }
    let held = lines.iter().any(|l| l.course == Some(2)).then_some(2);
    (table, lines, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::decide::{decide, Actor, OrderBook, Role};
    use docket_core::wire::CommandBody;
    use rand::SeedableRng;

    /// Every order the simulator makes from the demo menu is one the box takes: within every
    /// modifier group (never two donenesses), allergies and notes within their limits.
    #[test]
    fn simulated_orders_are_always_accepted_by_the_demo_menu() {
        let menu = docket_appliance::site::menu::load(None).expect("demo menu");
        let book = OrderBook {
            menu: Some(menu.clone()),
            next_ticket: 1,
            ..OrderBook::default()
        };
        let tablet = Actor {
            device: "tablet-1".into(),
            role: Role::Tablet,
            stations: vec![],
        };
        let mut rng = StdRng::seed_from_u64(20);
        let (mut allergies, mut chosen) = (0, 0);
        for _ in 0..3000 {
            let (table, lines, _) = make_order(&mut rng, &menu);
            allergies += lines.iter().filter(|l| l.allergy.is_some()).count();
            chosen += lines.iter().filter(|l| l.item == "steak-ribeye").count();
            let cmd = CommandBody::place(&table, lines);
            if let Err(r) = decide(&book, &tablet, &cmd, 0) {
                panic!("{cmd:?} refused: {r}");
            }
        }
        assert!(
            allergies > 0 && chosen > 0,
            "{allergies} allergies, {chosen} ribeyes"
        );
    }
}
