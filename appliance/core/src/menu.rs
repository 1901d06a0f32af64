//! The menu: items, their prices and the station that cooks them (line routing).

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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    pub version: u64,
    pub items: Vec<MenuItem>,
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
        let mut seen = std::collections::HashSet::new();
        for i in &self.items {
            if !seen.insert(i.id.as_str()) {
                return Err(MenuError::DuplicateItem(i.id.clone()));
            }
            if i.id.is_empty() || i.id.len() > 64 {
                return Err(MenuError::BadField {
                    item: i.id.clone(),
                    field: "id",
                });
            }
            if i.name.is_empty() {
                return Err(MenuError::BadField {
                    item: i.id.clone(),
                    field: "name",
                });
            }
            if i.price < 0 {
                return Err(MenuError::BadField {
                    item: i.id.clone(),
                    field: "price",
                });
            }
            if !valid_name(&i.station) || i.station == crate::wire::EXPO {
                return Err(MenuError::BadStation(i.station.clone()));
            }
        }
        Ok(())
    }
}

/// Names used in topics: 1–32 of `[a-z0-9_-]`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
