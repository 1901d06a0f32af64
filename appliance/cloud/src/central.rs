//! Menus from head office, as a box reads them (`sql/007_central_menus.sql`): the newest menu
//! that applies to a site (its own beats its brand's), and the 86s after a cursor.
//!
//! Reads only, as the site's role (row-level security shows it its own site's rows and its
//! brand's); decides nothing about the box's menu (docket-core's `decide::menu::decide_central`).

use tokio_postgres::Client;

use crate::CloudError;

/// The channel head office notifies when a central menu or an 86 is inserted, or a site's
/// brand is set (`sql/010_central_notify.sql`; empty payload). Listen with
/// [`crate::connect_listening`].
pub const CHANNEL: &str = "docket_central";

/// A central menu's items larger than this (as JSON text) are not fetched: the box's own
/// menu is bounded far below it (`MAX_MENU_BYTES`), and refusing says so.
pub const MAX_CENTRAL_MENU_JSON: i32 = 4 * 1024 * 1024;

/// One version of a menu from head office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralMenu {
    pub brand: String,
    /// `Some`: this site's own menu; `None`: the whole brand's.
    pub site: Option<String>,
    pub version: i64,
    /// The items as JSON text, or why they were not fetched (too large).
    pub items: Result<String, String>,
}

impl CentralMenu {
    /// Names this version, for the box's exactly-once record: `hq-menu:<brand>:<version>` or
    /// `hq-menu:<brand>/<site>:<version>` (brands and sites never contain `:` or `/`).
    pub fn key(&self) -> String {
        match &self.site {
            None => format!("hq-menu:{}:{}", self.brand, self.version),
            Some(s) => format!("hq-menu:{}/{}:{}", self.brand, s, self.version),
        }
    }
}

/// An item 86'd (`out`) or back on, from head office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralStock {
    pub id: i64,
    pub item: String,
    pub out: bool,
}

impl CentralStock {
    /// Names this change, for the box's exactly-once record.
    pub fn key(&self) -> String {
        format!("hq-86:{}", self.id)
    }
}

/// The newest central menu for `site`: its own newest version if it has one, else its brand's
/// newest (`docket.site_brands`); `None` when neither exists.
pub async fn newest_central_menu(
    c: &Client,
    site: &str,
) -> Result<Option<CentralMenu>, CloudError> {
    let row = c
        .query_opt(
            "SELECT brand, site_id, version,
                    CASE WHEN octet_length(items::text) <= $2 THEN items::text END,
                    octet_length(items::text)
             FROM docket.central_menus
             WHERE site_id = $1
                OR (site_id IS NULL
                    AND brand = (SELECT brand FROM docket.site_brands WHERE site_id = $1))
             ORDER BY (site_id IS NOT NULL) DESC, version DESC
             LIMIT 1",
            &[&site, &MAX_CENTRAL_MENU_JSON],
        )
        .await?;
    Ok(row.map(|r| {
        let len: i32 = r.get(4);
        CentralMenu {
            brand: r.get(0),
            site: r.get(1),
            version: r.get(2),
            items: r.get::<_, Option<String>>(3).ok_or_else(|| {
                format!(
                    "its items are {len} bytes of JSON; at most {MAX_CENTRAL_MENU_JSON} are read"
                )
            }),
        }
    }))
}

/// Head office's 86s for `site` (its own and its brand's) after `after_id`, oldest first, at
/// most `limit`.
pub async fn central_stock_after(
    c: &Client,
    site: &str,
    after_id: i64,
    limit: i64,
) -> Result<Vec<CentralStock>, CloudError> {
    let rows = c
        .query(
            "SELECT id, item, out FROM docket.central_stock
             WHERE id > $2
               AND (site_id = $1
                    OR (site_id IS NULL
                        AND brand = (SELECT brand FROM docket.site_brands WHERE site_id = $1)))
             ORDER BY id
             LIMIT $3",
            &[&site, &after_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CentralStock {
            id: r.get(0),
            item: r.get(1),
            out: r.get(2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_collide_between_a_brand_and_a_site() {
        let m = |brand: &str, site: Option<&str>, version| CentralMenu {
            brand: brand.into(),
            site: site.map(Into::into),
            version,
            items: Ok("[]".into()),
        };
        assert_eq!(m("a-b", None, 1).key(), "hq-menu:a-b:1");
        assert_eq!(m("a", Some("b"), 1).key(), "hq-menu:a/b:1");
        assert_ne!(m("a-b", None, 1).key(), m("a", Some("b"), 1).key());
        let s = CentralStock {
            id: 7,
            item: "fries".into(),
            out: true,
        };
        assert_eq!(s.key(), "hq-86:7");
    }
}
