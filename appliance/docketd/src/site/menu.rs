//! Loading the menu: a site's TOML file, or the demo restaurant built into the binary.

use std::path::Path;

use docket_core::Menu;

/// "Demo Bistro": grill, fry, cold and bar stations.
pub const DEMO_MENU: &str = include_str!("demo-menu.toml");

#[derive(Debug, thiserror::Error)]
pub enum MenuLoadError {
    #[error("cannot read menu file {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("menu {origin} is not valid TOML for a menu")]
    Parse {
        origin: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("menu {origin} cannot be served")]
    Invalid {
        origin: String,
        #[source]
        source: docket_core::menu::MenuError,
    },
}

pub fn load(file: Option<&Path>) -> Result<Menu, MenuLoadError> {
    let (origin, text) = match file {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|source| MenuLoadError::Read {
                path: p.to_owned(),
                source,
            })?,
        ),
        None => ("(built-in demo)".to_owned(), DEMO_MENU.to_owned()),
    };
    let menu: Menu = toml::from_str(&text).map_err(|source| MenuLoadError::Parse {
        origin: origin.clone(),
        source: Box::new(source),
    })?;
    menu.validate()
        .map_err(|source| MenuLoadError::Invalid { origin, source })?;
    Ok(menu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_menu_is_a_real_restaurant() {
        let m = load(None).expect("demo menu loads");
        assert!(m.items.len() >= 25);
        assert_eq!(m.stations(), vec!["grill", "fry", "cold", "bar"]);
    }

    #[test]
    fn broken_menus_are_refused() {
        let dir = std::env::temp_dir().join(format!("docket-menu-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.toml");
        std::fs::write(&p, "version = 1\nitems = []\n").unwrap();
        assert!(matches!(load(Some(&p)), Err(MenuLoadError::Invalid { .. })));
        std::fs::write(
            &p,
            "version = 1\n[[items]]\nid='a'\nname='A'\nprice=1\nstation='Bad Station'\n",
        )
        .unwrap();
        assert!(matches!(load(Some(&p)), Err(MenuLoadError::Invalid { .. })));
        std::fs::write(&p, "nonsense").unwrap();
        assert!(matches!(load(Some(&p)), Err(MenuLoadError::Parse { .. })));
        assert!(matches!(
            load(Some(&dir.join("missing.toml"))),
            Err(MenuLoadError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_demo_asks_one_doneness_of_a_steak_and_at_most_one_of_a_burger() {
        let m = load(None).expect("demo menu loads");
        let doneness = |id: &str| {
            let item = m.item(id).expect(id);
            let g = item.groups.iter().find(|g| g.name == "Doneness");
            g.map(|g| (g.min, g.max, g.mods.len()))
        };
        assert_eq!(doneness("steak-ribeye"), Some((1, 1, 4)));
        assert_eq!(doneness("burger-classic"), Some((0, 1, 4)));
        assert_eq!(doneness("burger-bacon"), Some((0, 1, 2)));
        assert_eq!(doneness("fries"), None);
    }

    #[test]
    fn a_menu_with_an_unservable_group_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("docket-menu-groups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.toml");
        let text = "version = 1\n[[items]]\nid = 'steak'\nname = 'Steak'\nprice = 1\n\
                    station = 'grill'\n[[items.groups]]\nname = 'Doneness'\nmin = 2\nmax = 1\n\
                    mods = ['rare', 'medium']\n";
        std::fs::write(&p, text).unwrap();
        let e = load(Some(&p)).expect_err("min > max is refused");
        let MenuLoadError::Invalid { source, .. } = &e else {
            panic!("{e:?}");
        };
        let why = source.to_string();
        assert!(
            why.contains("\"steak\"") && why.contains("\"Doneness\""),
            "{why}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
