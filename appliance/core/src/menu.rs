//! The menu: items, their prices, the station that cooks them (line routing) and the modifier
//! groups a line of each must satisfy (one doneness for a steak).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuItem {
    pub id: String,
    pub name: String,
    /// Price in cents.
    pub price: i64,
    /// The station whose board shows this item's lines.
    pub station: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Modifiers a tablet offers for this item (free text mods are allowed too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allergens: Vec<String>,
    /// Modifier groups: of each, a line must carry between `min` and `max` of its mods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ModGroup>,
    /// Minutes it takes to make (1-240): a ticket's items start so that they finish together,
    /// the shortest waiting for the longest (the KDS shows when each starts). Absent: start at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prep_min: Option<u32>,
    /// 86'd: sold out. Tablets grey it out and the box refuses it (`sold_out`) until it is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub out: bool,
}

/// The longest prep time an item may have, in minutes.
pub const MAX_PREP_MIN: u32 = 240;

/// A choice a line of its item makes among a few modifiers ("Doneness": pick one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModGroup {
    /// Shown on the tablet and in refusals: 1-32 characters.
    pub name: String,
    /// At least this many of `mods` on a line (0: the group is optional).
    pub min: u32,
    /// At most this many (1: pick one).
    pub max: u32,
    pub mods: Vec<String>,
}

impl ModGroup {
    /// How many of a line's `mods` belong to this group.
    pub fn chosen(&self, mods: &[String]) -> usize {
        mods.iter().filter(|m| self.mods.contains(m)).count()
    }
}

/// Groups per item at most: a tablet shows each as a row of choices.
pub const MAX_GROUPS: usize = 4;
/// A group's name at most, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 32;

/// The bounds of a menu a manager can edit from a device: what the retained menu topic and every
/// tablet carry. A menu file is held to the same.
pub mod bounds {
    pub const MAX_ITEMS: usize = 300;
    pub const MAX_ID_CHARS: usize = 64;
    pub const MAX_NAME_CHARS: usize = 64;
    pub const MAX_CATEGORY_CHARS: usize = 32;
    /// 100,000.00 in cents.
    pub const MAX_PRICE: i64 = 10_000_000;
    pub const MAX_ITEM_MODS: usize = 24;
    pub const MAX_ALLERGENS: usize = 16;
    pub const MAX_ALLERGEN_CHARS: usize = 24;
}

impl MenuItem {
    /// An item without category, modifiers or allergens.
    pub fn plain(id: &str, name: &str, price: i64, station: &str) -> Self {
        MenuItem {
            id: id.into(),
            name: name.into(),
            price,
            station: station.into(),
            category: None,
            mods: vec![],
            allergens: vec![],
            groups: vec![],
            prep_min: None,
            out: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    pub version: u64,
    pub items: Vec<MenuItem>,
}

/// One version of a menu as the box stores it and relays it to head office: who made it, with
/// which command (a seed from the menu file: device `docketd`, no command), and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuChange {
    pub menu: Menu,
    /// Box clock, Unix ms.
    pub at: u64,
    pub device: String,
    pub command: String,
}

/// A menu that cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MenuError {
    #[error("the menu has no items")]
    Empty,
    #[error("menu item {0:?} appears twice")]
    DuplicateItem(String),
    #[error("menu item {item:?} has an invalid {field}")]
    BadField { item: String, field: &'static str },
    #[error(
        "station name {0:?} is reserved or invalid (use lowercase letters, digits, '-' and '_')"
    )]
    BadStation(String),
    #[error(
        "menu item {item:?}: a modifier group's name must be 1-{MAX_GROUP_NAME_CHARS} characters"
    )]
    GroupName { item: String },
    #[error("menu item {item:?}: group {group:?} {problem}")]
    BadGroup {
        item: String,
        group: String,
        problem: &'static str,
    },
    #[error("menu item {item:?}: modifier {modifier:?} is in more than one group, or in both mods and a group")]
    ModTwice { item: String, modifier: String },
    #[error("menu item {item:?} has more than {MAX_GROUPS} modifier groups")]
    TooManyGroups { item: String },
    #[error("the menu has {0} items; at most {max} are served", max = bounds::MAX_ITEMS)]
    TooManyItems(usize),
}

impl Menu {
    /// Version 1 of plain items given as `(id, station)`, each named after its id in capitals at
    /// 5.00: the small menu the property tests, the fuzz targets and the engine's tests share.
    pub fn sample(items: &[(&str, &str)]) -> Menu {
        let items = items
            .iter()
            .map(|(id, station)| MenuItem::plain(id, &id.to_uppercase(), 500, station))
            .collect();
        Menu { version: 1, items }
    }

    pub fn item(&self, id: &str) -> Option<&MenuItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Stations in first-seen order: one board each.
    pub fn stations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in &self.items {
            if !out.contains(&i.station) {
                out.push(i.station.clone());
            }
        }
        out
    }

    /// Checks what routing and topics rely on: unique ids, station names that are topic-safe.
    pub fn validate(&self) -> Result<(), MenuError> {
        if self.items.is_empty() {
            return Err(MenuError::Empty);
        }
        if self.items.len() > bounds::MAX_ITEMS {
            return Err(MenuError::TooManyItems(self.items.len()));
        }
        let mut seen = std::collections::HashSet::new();
        for i in &self.items {
            if !seen.insert(i.id.as_str()) {
                return Err(MenuError::DuplicateItem(i.id.clone()));
            }
            check_fields(i)?;
            if i.prep_min.is_some_and(|m| m == 0 || m > MAX_PREP_MIN) {
                return Err(MenuError::BadField {
                    item: i.id.clone(),
                    field: "prep_min (1-240 minutes)",
                });
            }
            if !valid_name(&i.station) || i.station == crate::wire::EXPO {
                return Err(MenuError::BadStation(i.station.clone()));
            }
            validate_groups(i)?;
        }
        Ok(())
    }
}

/// An item's own fields within [`bounds`]: an id, a name, a price, its mods and allergens.
fn check_fields(i: &MenuItem) -> Result<(), MenuError> {
    use bounds::*;
    let bad = |field| {
        Err(MenuError::BadField {
            item: crate::decide::clip(&i.id).to_owned(),
            field,
        })
    };
    let within = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
    if !within(&i.id, MAX_ID_CHARS) {
        return bad("id (1-64 characters)");
    }
    if !within(&i.name, MAX_NAME_CHARS) {
        return bad("name (1-64 characters)");
    }
    if !(0..=MAX_PRICE).contains(&i.price) {
        return bad("price (0-10000000 cents)");
    }
    if i.category
        .as_deref()
        .is_some_and(|c| !within(c, MAX_CATEGORY_CHARS))
    {
        return bad("category (1-32 characters)");
    }
    let mod_chars = crate::decide::limits::MAX_MOD_CHARS;
    if i.mods.len() > MAX_ITEM_MODS || !i.mods.iter().all(|m| within(m, mod_chars)) {
        return bad("mods (at most 24, each 1-40 characters)");
    }
    if i.allergens.len() > MAX_ALLERGENS
        || !i.allergens.iter().all(|a| within(a, MAX_ALLERGEN_CHARS))
    {
        return bad("allergens (at most 16, each 1-24 characters)");
    }
    Ok(())
}

/// An item's groups: named, satisfiable, and each modifier in one place only.
fn validate_groups(i: &MenuItem) -> Result<(), MenuError> {
    if i.groups.len() > MAX_GROUPS {
        return Err(MenuError::TooManyGroups { item: i.id.clone() });
    }
    let mut seen: std::collections::HashSet<&str> = i.mods.iter().map(String::as_str).collect();
    for g in &i.groups {
        let chars = g.name.chars().count();
        if g.name.trim().is_empty() || chars > MAX_GROUP_NAME_CHARS {
            return Err(MenuError::GroupName { item: i.id.clone() });
        }
        let bad = |problem| MenuError::BadGroup {
            item: i.id.clone(),
            group: g.name.clone(),
            problem,
        };
        if g.mods.is_empty() {
            return Err(bad("has no modifiers"));
        }
        if g.mods.len() > bounds::MAX_ITEM_MODS {
            return Err(bad("has more than 24 modifiers"));
        }
        if g.max == 0 {
            return Err(bad("has max 0 (nothing could be chosen)"));
        }
        if g.min > g.max {
            return Err(bad("has min greater than max"));
        }
        if g.max as usize > g.mods.len() {
            return Err(bad("has max greater than its number of modifiers"));
        }
        let mut own = std::collections::HashSet::new();
        for m in &g.mods {
            let len = m.chars().count();
            if m.trim().is_empty() || len > crate::decide::limits::MAX_MOD_CHARS {
                return Err(bad("has an empty or too long modifier"));
            }
            if !own.insert(m.as_str()) {
                return Err(bad("lists a modifier twice"));
            }
            if !seen.insert(m.as_str()) {
                return Err(MenuError::ModTwice {
                    item: i.id.clone(),
                    modifier: m.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Names used in topics: 1–32 of `[a-z0-9_-]`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steak(groups: Vec<ModGroup>) -> Menu {
        let mut item = MenuItem::plain("steak", "Ribeye", 2900, "grill");
        item.mods = vec!["pepper-sauce".into()];
        item.groups = groups;
        Menu {
            version: 1,
            items: vec![item],
        }
    }

    fn g(name: &str, min: u32, max: u32, mods: &[&str]) -> ModGroup {
        ModGroup {
            name: name.into(),
            min,
            max,
            mods: mods.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn a_sound_group_is_served() {
        let m = steak(vec![
            g("Doneness", 1, 1, &["rare", "medium"]),
            g("Side", 0, 2, &["fries", "salad"]),
        ]);
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn groups_that_cannot_be_served_are_refused() {
        let bad = |problem: &str, groups| {
            let e = steak(groups).validate().expect_err(problem);
            let text = e.to_string();
            assert!(text.contains(problem), "{problem:?} not in {text:?}");
        };
        bad("name", vec![g("", 0, 1, &["a"])]);
        bad("name", vec![g(&"n".repeat(33), 0, 1, &["a"])]);
        bad("has no modifiers", vec![g("D", 0, 1, &[])]);
        bad("min greater than max", vec![g("D", 2, 1, &["a", "b"])]);
        bad("max 0", vec![g("D", 0, 0, &["a"])]);
        bad("max greater than", vec![g("D", 0, 2, &["a"])]);
        bad("twice", vec![g("D", 0, 1, &["a", "a"])]);
        bad("empty or too long", vec![g("D", 0, 1, &[" "])]);
        bad(
            "more than one group",
            vec![g("D", 0, 1, &["a"]), g("E", 0, 1, &["a"])],
        );
        bad("\"pepper-sauce\"", vec![g("D", 0, 1, &["pepper-sauce"])]);
        bad(
            "more than 4",
            (0..5)
                .map(|i| g(&format!("G{i}"), 0, 1, &[format!("m{i}").as_str()]))
                .collect(),
        );
    }

    #[test]
    fn a_prep_time_is_1_to_240_minutes() {
        let mut m = Menu::sample(&[("steak", "grill")]);
        m.items[0].prep_min = Some(14);
        assert_eq!(m.validate(), Ok(()));
        for bad in [0, 241] {
            m.items[0].prep_min = Some(bad);
            assert!(
                matches!(m.validate(), Err(MenuError::BadField { .. })),
                "{bad}"
            );
        }
    }
}
