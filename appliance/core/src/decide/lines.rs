//! A new line from what a tablet sent: the menu item, its quantity, modifiers and groups, notes,
//! allergy, course and seat checked against the bounds (`limits`), and the line made, fired or
//! held. Pure, like the rest of `decide`.

use super::{clip, limits};
use crate::menu::{Menu, MenuItem};
use crate::order::{Line, LineStatus};
use crate::wire::LineInput;
use crate::{Code, Rejection};

pub(super) fn check_lines_count(adding: usize, existing: usize) -> Result<(), Rejection> {
    if adding == 0 {
        return Err(Rejection::new(
            Code::NoLines,
            "an order needs at least one line",
        ));
    }
    if adding > limits::MAX_LINES_PER_COMMAND || existing + adding > limits::MAX_LINES_PER_ORDER {
        return Err(Rejection::new(
            Code::TooManyLines,
            format!(
                "at most {} lines per command and {} per order",
                limits::MAX_LINES_PER_COMMAND,
                limits::MAX_LINES_PER_ORDER
            ),
        ));
    }
    Ok(())
}

/// Free text checks. Only notes (`multiline`) may be empty or hold newlines.
pub(super) fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
    multiline: bool,
) -> Result<(), Rejection> {
    if !multiline && value.trim().is_empty() {
        return Err(Rejection::new(
            Code::BadField,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(Rejection::new(
            Code::TooLong,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && c == '\n'))
    {
        return Err(Rejection::new(
            Code::BadField,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

/// A new line from its input, fired when its course already is: at `fired_at`, or (`None`) with
/// the order's placement (`placed_at`, which the line then does not repeat: an order's bytes are
/// bounded, and most lines go out with it).
pub(super) fn make_line(
    menu: &Menu,
    input: &LineInput,
    n: u32,
    fired_course: u32,
    fired_at: Option<u64>,
) -> Result<Line, Rejection> {
    let item = menu.item(&input.item).ok_or_else(|| {
        Rejection::new(
            Code::UnknownItem,
            format!("no menu item {:?}", clip(&input.item)),
        )
    })?;
    if item.out {
        return Err(Rejection::new(
            Code::SoldOut,
            format!("{} is 86'd (sold out)", item.name),
        ));
    }
    if input.qty == 0 || input.qty > limits::MAX_QTY {
        return Err(Rejection::new(
            Code::BadQty,
            format!("qty must be 1..={}, got {}", limits::MAX_QTY, input.qty),
        ));
    }
    if input.mods.len() > limits::MAX_MODS {
        return Err(Rejection::new(
            Code::TooLong,
            format!("at most {} modifiers per line", limits::MAX_MODS),
        ));
    }
    for m in &input.mods {
        check_text("modifier", m, limits::MAX_MOD_CHARS, false)?;
    }
    check_groups(item, &input.mods)?;
    if let Some(notes) = &input.notes {
        check_text("notes", notes, limits::MAX_NOTES_CHARS, true)?;
    }
    if let Some(allergy) = input.allergy.as_deref().filter(|a| !a.is_empty()) {
        check_text("allergy", allergy, limits::MAX_ALLERGY_CHARS, false)?;
    }
    let course = input.course.unwrap_or(1);
    if course == 0 || course > limits::MAX_COURSE {
        return Err(Rejection::new(
            Code::BadCourse,
            format!("course must be 1..={}", limits::MAX_COURSE),
        ));
    }
    if input.seat.is_some_and(|s| s == 0 || s > limits::MAX_SEAT) {
        return Err(Rejection::new(
            Code::BadField,
            format!("seat must be 1..={}", limits::MAX_SEAT),
        ));
    }
    let fired = course <= fired_course;
    Ok(Line {
        n,
        item: item.id.clone(),
        name: item.name.clone(),
        qty: input.qty,
        mods: input.mods.clone(),
        notes: input.notes.clone().filter(|n| !n.is_empty()),
        allergy: input.allergy.clone().filter(|a| !a.is_empty()),
        course,
        station: item.station.clone(),
        status: if fired {
            LineStatus::Fired
        } else {
            LineStatus::Held
        },
        fired_at: fired.then_some(fired_at).flatten(),
        seat: input.seat,
    })
}

/// A line's mods against its item's groups: within each group's `[min, max]`.
pub(super) fn check_groups(item: &MenuItem, mods: &[String]) -> Result<(), Rejection> {
    for g in &item.groups {
        let n = g.chosen(mods);
        if n < g.min as usize || n > g.max as usize {
            let want = match (g.min, g.max) {
                (min, max) if min == max => format!("choose {min} of {}", g.name),
                (0, max) => format!("choose at most {max} of {}", g.name),
                (min, max) => format!("choose {min} to {max} of {}", g.name),
            };
            return Err(Rejection::new(
                Code::BadChoice,
                format!("{}: {want}", item.name),
            ));
        }
    }
    Ok(())
}
