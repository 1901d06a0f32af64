//! docket-core: Docket's pure domain.
//!
//! Orders, commands, events, the order state machine, routing of lines to stations and the wire
//! types. Plain functions over plain data: no tokio, no SQL, no sockets, no clock. The daemon
//! (`docket-appliance`) wires storage and transport around it.

pub mod bundle;
pub mod decide;
pub mod health;
pub mod keys;
pub mod ledger;
pub mod menu;
pub mod once;
pub mod open_bytes;
pub mod order;
pub mod print;
pub mod speed;
pub mod topic;
pub mod wire;

pub use decide::{apply, authorise, decide, Actor, Change, OrderBook, Role, SiteLimits};
pub use menu::{Menu, MenuItem, ModGroup};
pub use order::{Line, LineStatus, Order, OrderStatus};

/// Stable error codes carried in `Reply.error.code`. Part of the wire contract: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The envelope is not a CBOR command envelope (no reply: the sender is unknown).
    Malformed,
    TooLarge,
    MalformedBody,
    UnknownCommand,
    UnknownDevice,
    Revoked,
    DeviceMismatch,
    BadMac,
    Forbidden,
    UnknownItem,
    BadQty,
    TooLong,
    BadField,
    NoLines,
    TooManyLines,
    BadCourse,
    CourseFired,
    UnknownOrder,
    OrderClosed,
    UnknownLine,
    LineVoided,
    UnknownStation,
    NothingToBump,
    NothingToRecall,
    NoMenu,
    /// The box could not commit (disk, I/O); retry with the same command id.
    Internal,
    /// The box's disk is full: nothing was written; retry with the same id once space is back.
    StorageFull,
    /// The device sent more commands than its rate limit allows; nothing was recorded: send it
    /// again with the same id in a moment.
    RateLimited,
    /// The site has as many open orders as the box keeps (`SiteLimits::max_open_orders`):
    /// complete some first (a refusal like any other: a new id then).
    TooManyOpenOrders,
    /// A line's modifiers break one of its item's groups (two donenesses, or none where one is
    /// required).
    BadChoice,
    /// A line's item is 86'd (sold out) until a station or a manager puts it back.
    SoldOut,
    /// A menu command would leave a menu the box cannot serve (a bad field, a duplicate id, no
    /// items); the message names what.
    BadMenu,
    /// A reprint names an order with nothing at that station, or a station with no tickets.
    NothingToPrint,
    /// A reprint for a station without a kitchen printer (or with its printer off).
    NoPrinter,
}

impl Code {
    pub const ALL: [Code; 34] = [
        Code::Malformed,
        Code::TooLarge,
        Code::MalformedBody,
        Code::UnknownCommand,
        Code::UnknownDevice,
        Code::Revoked,
        Code::DeviceMismatch,
        Code::BadMac,
        Code::Forbidden,
        Code::UnknownItem,
        Code::BadQty,
        Code::TooLong,
        Code::BadField,
        Code::NoLines,
        Code::TooManyLines,
        Code::BadCourse,
        Code::CourseFired,
        Code::UnknownOrder,
        Code::OrderClosed,
        Code::UnknownLine,
        Code::LineVoided,
        Code::UnknownStation,
        Code::NothingToBump,
        Code::NothingToRecall,
        Code::NoMenu,
        Code::Internal,
        Code::StorageFull,
        Code::RateLimited,
        Code::TooManyOpenOrders,
        Code::BadChoice,
        Code::SoldOut,
        Code::BadMenu,
        Code::NothingToPrint,
        Code::NoPrinter,
    ];

    /// Where the code stands in [`Code::ALL`]: a counter per code is an array, not a map.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The code a reply's `error.code` names.
    pub fn parse(s: &str) -> Option<Code> {
        Some(match s {
            "malformed" => Code::Malformed,
            "too_large" => Code::TooLarge,
            "malformed_body" => Code::MalformedBody,
            "unknown_command" => Code::UnknownCommand,
            "unknown_device" => Code::UnknownDevice,
            "revoked" => Code::Revoked,
            "device_mismatch" => Code::DeviceMismatch,
            "bad_mac" => Code::BadMac,
            "forbidden" => Code::Forbidden,
            "unknown_item" => Code::UnknownItem,
            "bad_qty" => Code::BadQty,
            "too_long" => Code::TooLong,
            "bad_field" => Code::BadField,
            "no_lines" => Code::NoLines,
            "too_many_lines" => Code::TooManyLines,
            "bad_course" => Code::BadCourse,
            "course_fired" => Code::CourseFired,
            "unknown_order" => Code::UnknownOrder,
            "order_closed" => Code::OrderClosed,
            "unknown_line" => Code::UnknownLine,
            "line_voided" => Code::LineVoided,
            "unknown_station" => Code::UnknownStation,
            "nothing_to_bump" => Code::NothingToBump,
            "nothing_to_recall" => Code::NothingToRecall,
            "no_menu" => Code::NoMenu,
            "internal" => Code::Internal,
            "storage_full" => Code::StorageFull,
            "rate_limited" => Code::RateLimited,
            "too_many_open_orders" => Code::TooManyOpenOrders,
            "bad_choice" => Code::BadChoice,
            "sold_out" => Code::SoldOut,
            "bad_menu" => Code::BadMenu,
            "nothing_to_print" => Code::NothingToPrint,
            "no_printer" => Code::NoPrinter,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::TooLarge => "too_large",
            Code::MalformedBody => "malformed_body",
            Code::UnknownCommand => "unknown_command",
            Code::UnknownDevice => "unknown_device",
            Code::Revoked => "revoked",
            Code::DeviceMismatch => "device_mismatch",
            Code::BadMac => "bad_mac",
            Code::Forbidden => "forbidden",
            Code::UnknownItem => "unknown_item",
            Code::BadQty => "bad_qty",
            Code::TooLong => "too_long",
            Code::BadField => "bad_field",
            Code::NoLines => "no_lines",
            Code::TooManyLines => "too_many_lines",
            Code::BadCourse => "bad_course",
            Code::CourseFired => "course_fired",
            Code::UnknownOrder => "unknown_order",
            Code::OrderClosed => "order_closed",
            Code::UnknownLine => "unknown_line",
            Code::LineVoided => "line_voided",
            Code::UnknownStation => "unknown_station",
            Code::NothingToBump => "nothing_to_bump",
            Code::NothingToRecall => "nothing_to_recall",
            Code::NoMenu => "no_menu",
            Code::Internal => "internal",
            Code::StorageFull => "storage_full",
            Code::RateLimited => "rate_limited",
            Code::TooManyOpenOrders => "too_many_open_orders",
            Code::BadChoice => "bad_choice",
            Code::SoldOut => "sold_out",
            Code::BadMenu => "bad_menu",
            Code::NothingToPrint => "nothing_to_print",
            Code::NoPrinter => "no_printer",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code is compared with the name a reply carries (`reply.error.code == "bad_mac"`).
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// On the wire a code is its name, a text string (the CDDL's `code: tstr`).
impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Code::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {name:?}")))
    }
}

/// Why a command was refused: a stable code and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Rejection {
    pub code: Code,
    pub message: String,
}

impl Rejection {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// Does `station`'s board show `order`: expo shows every open order, a station those with a line
/// being cooked there.
pub fn shows(station: &str, order: &Order) -> bool {
    if station == wire::EXPO {
        order.is_open()
    } else {
        order.on_station(station)
    }
}

/// The board snapshot for `station` (or [`wire::EXPO`]): its open orders in ticket order.
pub fn board<'a>(station: &str, seq: u64, orders: impl Iterator<Item = &'a Order>) -> wire::Board {
    let mut list: Vec<Order> = orders.filter(|o| shows(station, o)).cloned().collect();
    list.sort_by_key(|o| o.ticket);
    wire::Board {
        station: station.to_owned(),
        seq,
        orders: list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert!(c
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn every_code_parses_from_its_name_and_crosses_the_wire_as_it() {
        for (i, c) in Code::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i, "{c} stands elsewhere in Code::ALL");
            assert_eq!(Code::parse(c.as_str()), Some(c));
            let bytes = wire::encode(&c).expect("encode");
            assert_eq!(
                wire::decode::<String>(&bytes).expect("a text string"),
                c.as_str()
            );
            assert_eq!(wire::decode::<Code>(&bytes).expect("decode"), c);
        }
        assert_eq!(Code::parse("Bad_Mac"), None);
        let unknown = wire::encode(&"no_such_code").expect("encode");
        assert!(wire::decode::<Code>(&unknown).is_err());
    }
}
