//! Wire contract v1: the CBOR messages tablets, screens and the box exchange over MQTT.
//!
//! Owns the message shapes, their encoding and the command MAC. It must not know about orders'
//! rules (that is `decide`) nor about transport (that is the daemon).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::keys::MacKey;
use crate::order::Order;

pub use crate::topic::{Filter, Topic, PREFIX};

/// Subscription filter of the engine for commands.
pub const CMD_FILTER: &str = "docket/v1/cmd/+";
/// Every station's board (the expo's subscription, and the engine's guard over them).
pub const BOARDS_FILTER: &str = "docket/v1/board/+";
/// Every device's replies (the router's filter for the engine's output).
pub const REPLIES_FILTER: &str = "docket/v1/reply/+";
/// Every device's presence (the engine tracks who is online).
pub const PRESENCE_FILTER: &str = "docket/v1/devices/+/presence";
/// Topic of the event stream.
pub const EVENTS_TOPIC: &str = "docket/v1/events";
/// Retained menu topic.
pub const MENU_TOPIC: &str = "docket/v1/menu";
/// Retained appliance status topic.
pub const STATUS_TOPIC: &str = "docket/v1/appliance/status";
/// Name of the expo board (not a station).
pub const EXPO: &str = "expo";
/// Largest command envelope the engine accepts; larger ones are answered `too_large`.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

pub fn cmd_topic(device: &str) -> String {
    Topic::Cmd(device).to_string()
}
pub fn reply_topic(device: &str) -> String {
    Topic::Reply(device).to_string()
}
pub fn board_topic(station: &str) -> String {
    Topic::Board(station).to_string()
}
pub fn presence_topic(device: &str) -> String {
    Topic::Presence(device).to_string()
}

/// The device id a command topic names, if `topic` is one.
pub fn device_of_cmd_topic(topic: &str) -> Option<&str> {
    match Topic::parse(topic)? {
        Topic::Cmd(device) => Some(device),
        _ => None,
    }
}

/// Whether a presence message (or a presence will) says "online": the text as a CBOR string, as
/// the pages and simulators send it, or as bare bytes. Anything else is offline.
pub fn presence_online(payload: &[u8]) -> bool {
    match decode::<String>(payload) {
        Ok(s) => s == "online",
        Err(_) => payload == b"online",
    }
}

/// Errors decoding or encoding wire messages.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message is not valid CBOR for this type: {0}")]
    Decode(String),
    #[error("could not encode message: {0}")]
    Encode(String),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    cbor4ii::serde::to_vec(Vec::new(), value).map_err(|e| WireError::Encode(format!("{e:?}")))
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| WireError::Decode(format!("{e:?}")))
}

/// The signed command envelope a device publishes on `docket/v1/cmd/{device}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Client-made unique id: the idempotency key.
    pub id: String,
    pub device: String,
    /// CBOR encoding of a [`CommandBody`], MAC'd as sent (never re-encoded).
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub mac: Vec<u8>,
}

impl Envelope {
    /// Builds a signed envelope; what tablets do, used by tests and the load generator.
    pub fn sign(
        id: &str,
        device: &str,
        key: &MacKey,
        body: &CommandBody,
    ) -> Result<Self, WireError> {
        let body = encode(body)?;
        let mac = mac(key, device, id, &body).to_vec();
        Ok(Envelope {
            id: id.to_owned(),
            device: device.to_owned(),
            body,
            mac,
        })
    }

    /// Constant-time check of the MAC over this envelope's device, id and body.
    pub fn verify(&self, key: &MacKey) -> bool {
        mac_of(key, &self.device, &self.id, &self.body)
            .verify_slice(&self.mac)
            .is_ok()
    }
}

/// The `id` of an envelope, read without decoding the rest (the body is skipped, not copied):
/// what the box needs to refuse an oversized command by name. At most 64 characters are kept.
pub fn envelope_id(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    let e: IdOnly = cbor4ii::serde::from_slice(bytes).ok()?;
    (!e.id.is_empty()).then(|| e.id.chars().take(64).collect())
}

/// Domain separator that starts every command MAC's message (then a zero byte).
pub const MAC_DOMAIN: &[u8] = b"docket/v1 command";

/// HMAC-SHA256 keyed with the device's MAC key over
/// `"docket/v1 command" 0x00 ‖ u32be(len device) ‖ device ‖ u32be(len id) ‖ id ‖ body`:
/// the same body under another id or device is another MAC.
pub fn mac(key: &MacKey, device: &str, id: &str, body: &[u8]) -> [u8; 32] {
    mac_of(key, device, id, body).finalize().into_bytes().into()
}

fn mac_of(key: &MacKey, device: &str, id: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes any key size");
    m.update(MAC_DOMAIN);
    m.update(&[0]);
    for field in [device.as_bytes(), id.as_bytes()] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        m.update(&len.to_be_bytes());
        m.update(field);
    }
    m.update(body);
    m
}

/// One ordered line as a tablet sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    pub item: String,
    pub qty: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course: Option<u32>,
    /// The guest's allergy ("sesame"): kitchen pages show it as an alarm, apart from `notes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergy: Option<String>,
    /// The guest's seat at the table (1-99), so the runner knows who gets what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<u32>,
}

impl LineInput {
    /// `qty` of `item`, with nothing else said (no mods, notes, allergy or seat; course 1).
    pub fn plain(item: &str, qty: u32) -> Self {
        LineInput {
            item: item.to_owned(),
            qty,
            mods: Vec::new(),
            notes: None,
            course: None,
            allergy: None,
            seat: None,
        }
    }
}

/// Command bodies, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandBody {
    PlaceOrder {
        table: String,
        lines: Vec<LineInput>,
        /// Dine-in (absent), takeaway or delivery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<crate::order::Service>,
        /// The server's name as the tablet has it (1-32 characters), shown on the tickets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        /// Only from an integration (required there): the channel the order came in on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// Only from an integration: the order's number on its channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    AddLines {
        order_id: String,
        lines: Vec<LineInput>,
    },
    VoidLine {
        order_id: String,
        line: u32,
    },
    FireCourse {
        order_id: String,
        course: u32,
    },
    Bump {
        order_id: String,
        station: String,
    },
    Recall {
        order_id: String,
        station: String,
    },
    Complete {
        order_id: String,
    },
    Replay {
        after_seq: u64,
    },
    /// One line done at its station (the fries before the burger): the ticket stays on the
    /// board until its last fired line there is bumped.
    BumpLine {
        order_id: String,
        line: u32,
    },
    /// Mark an open order as a rush (or no longer): every screen shows it first.
    SetRush {
        order_id: String,
        rush: bool,
    },
    /// 86 an item (`out: true`: sold out) or put it back on: a new menu version.
    SetStock {
        item: String,
        out: bool,
    },
    /// Adds an item to the menu, or replaces the item with its id: a new menu version.
    SetItem {
        item: Box<crate::menu::MenuItem>,
    },
    /// Takes an item off the menu: a new menu version.
    RemoveItem {
        item: String,
    },
    /// Prints a station's ticket again on its kitchen printer, marked REPRINT: one order
    /// (`order_id`) or the station's `last` few open tickets (1-20). No event.
    Reprint {
        station: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last: Option<u32>,
    },
}

impl CommandBody {
    /// A dine-in `place_order` with no server named.
    pub fn place(table: &str, lines: Vec<LineInput>) -> Self {
        CommandBody::PlaceOrder {
            table: table.to_owned(),
            lines,
            service: None,
            server: None,
            channel: None,
            reference: None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CommandBody::PlaceOrder { .. } => "place_order",
            CommandBody::AddLines { .. } => "add_lines",
            CommandBody::VoidLine { .. } => "void_line",
            CommandBody::FireCourse { .. } => "fire_course",
            CommandBody::Bump { .. } => "bump",
            CommandBody::Recall { .. } => "recall",
            CommandBody::Complete { .. } => "complete",
            CommandBody::Replay { .. } => "replay",
            CommandBody::BumpLine { .. } => "bump_line",
            CommandBody::SetRush { .. } => "set_rush",
            CommandBody::SetStock { .. } => "set_stock",
            CommandBody::SetItem { .. } => "set_item",
            CommandBody::RemoveItem { .. } => "remove_item",
            CommandBody::Reprint { .. } => "reprint",
        }
    }

    /// Whether it changes the menu (a new menu version, no order event) rather than an order.
    pub fn is_menu(&self) -> bool {
        matches!(
            self,
            CommandBody::SetStock { .. }
                | CommandBody::SetItem { .. }
                | CommandBody::RemoveItem { .. }
        )
    }

    /// The order a command acts on, if it acts on an existing one.
    pub fn order_id(&self) -> Option<&str> {
        match self {
            CommandBody::AddLines { order_id, .. }
            | CommandBody::VoidLine { order_id, .. }
            | CommandBody::FireCourse { order_id, .. }
            | CommandBody::Bump { order_id, .. }
            | CommandBody::Recall { order_id, .. }
            | CommandBody::BumpLine { order_id, .. }
            | CommandBody::SetRush { order_id, .. }
            | CommandBody::Complete { order_id } => Some(order_id),
            CommandBody::Reprint { order_id, .. } => order_id.as_deref(),
            CommandBody::PlaceOrder { .. }
            | CommandBody::Replay { .. }
            | CommandBody::SetStock { .. }
            | CommandBody::SetItem { .. }
            | CommandBody::RemoveItem { .. } => None,
        }
    }
}

/// Decodes a command body, telling an unknown `type` apart from a malformed body.
pub fn decode_body(bytes: &[u8]) -> Result<CommandBody, crate::Rejection> {
    match decode::<CommandBody>(bytes) {
        Ok(b) => Ok(b),
        Err(e) => {
            #[derive(Deserialize)]
            struct Tagged {
                #[serde(rename = "type")]
                kind: String,
            }
            const KNOWN: [&str; 14] = [
                "place_order",
                "add_lines",
                "void_line",
                "fire_course",
                "bump",
                "recall",
                "complete",
                "replay",
                "bump_line",
                "set_rush",
                "set_stock",
                "set_item",
                "remove_item",
                "reprint",
            ];
            match decode::<Tagged>(bytes) {
                Ok(t) if !KNOWN.contains(&t.kind.as_str()) => Err(crate::Rejection::new(
                    crate::Code::UnknownCommand,
                    format!("unknown command type {:?}", truncate(&t.kind, 40)),
                )),
                _ => Err(crate::Rejection::new(
                    crate::Code::MalformedBody,
                    format!("command body does not decode: {e}"),
                )),
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A reply error: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyError {
    pub code: crate::Code,
    pub message: String,
}

/// The box's answer to one command, on `docket/v1/reply/{device}`. Field order is the wire
/// order of the contract's examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub command: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
    /// Only in replies to `replay`: one page of events after `after_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    /// Only in replies to `replay`: true when more events follow this page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// Only in replies to accepted menu commands: the menu's version after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_version: Option<u64>,
}

impl Reply {
    pub fn rejected(command: &str, rejection: &crate::Rejection) -> Self {
        Reply {
            command: command.to_owned(),
            ok: false,
            order_id: None,
            ticket: None,
            seq: None,
            error: Some(ReplyError {
                code: rejection.code,
                message: rejection.message.clone(),
            }),
            events: None,
            more: None,
            menu_version: None,
        }
    }

    /// An accepted menu command: the menu is now at `version`.
    pub fn menu(command: &str, version: u64) -> Self {
        Reply {
            command: command.to_owned(),
            ok: true,
            order_id: None,
            ticket: None,
            seq: None,
            error: None,
            events: None,
            more: None,
            menu_version: Some(version),
        }
    }

    /// An accepted command that changed nothing on the record (a reprint).
    pub fn done(command: &str) -> Self {
        Reply {
            menu_version: None,
            ..Reply::menu(command, 0)
        }
    }

    pub fn accepted(command: &str, order_id: &str, ticket: u64, seq: u64) -> Self {
        Reply {
            command: command.to_owned(),
            ok: true,
            order_id: Some(order_id.to_owned()),
            ticket: Some(ticket),
            seq: Some(seq),
            error: None,
            events: None,
            more: None,
            menu_version: None,
        }
    }
}

/// One committed change of one order, on `docket/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Site-wide, gapless, starting at 1.
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub order_id: String,
    /// The order's version after this event.
    pub version: u64,
    /// Id of the command that caused it.
    pub command: String,
    pub device: String,
    /// Wall-clock milliseconds at commit; informational only.
    pub at: u64,
    /// The whole order after this event.
    pub order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    OrderPlaced,
    LinesAdded,
    LineVoided,
    CourseFired,
    TicketBumped,
    TicketRecalled,
    OrderCompleted,
    /// One line bumped (`bump_line`); when it was the station's last fired line the ticket is
    /// done there, as with `ticket_bumped`.
    LineBumped,
    /// `order.rush` changed (`set_rush`).
    RushChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderPlaced => "order_placed",
            EventKind::LinesAdded => "lines_added",
            EventKind::LineVoided => "line_voided",
            EventKind::CourseFired => "course_fired",
            EventKind::TicketBumped => "ticket_bumped",
            EventKind::TicketRecalled => "ticket_recalled",
            EventKind::OrderCompleted => "order_completed",
            EventKind::LineBumped => "line_bumped",
            EventKind::RushChanged => "rush_changed",
        }
    }
}

/// Retained snapshot of one station's (or expo's) open tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Board {
    pub station: String,
    /// The last event seq this snapshot includes.
    pub seq: u64,
    pub orders: Vec<Order>,
}

/// Retained on `docket/v1/appliance/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceStatus {
    pub version: String,
    pub site_id: String,
    pub seq: u64,
    /// Uplink state; "none" until an uplink is configured.
    pub uplink: String,
    /// Events committed locally but not yet relayed.
    pub sync_lag: u64,
    pub started_at: u64,
    /// The box clock when published. The status is republished every 2 s, so a screen that has
    /// heard nothing from the box for longer knows its board may be stale.
    #[serde(default)]
    pub now_ms: u64,
    /// The alarm: the box's disk is full and new commands get `storage_full`.
    #[serde(default)]
    pub storage_full: bool,
    /// Each station with a kitchen printer: printing or not, why, the printer's condition, and
    /// the alarm (no live screen and a printer that can't print). Absent without printers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printing: Option<Vec<crate::health::StationPrinting>>,
}

/// Device ids (MQTT user names): 1–64 of `[A-Za-z0-9._-]`, not starting with "docketd"
/// (reserved for the daemon's own connections).
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with("docketd")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_are_the_typed_topics() {
        assert_eq!(CMD_FILTER, Filter::AllCommands.to_string());
        assert_eq!(BOARDS_FILTER, Filter::AllBoards.to_string());
        assert_eq!(REPLIES_FILTER, Filter::AllReplies.to_string());
        assert_eq!(PRESENCE_FILTER, Filter::AllPresence.to_string());
        assert_eq!(EVENTS_TOPIC, Topic::Events.to_string());
        assert_eq!(MENU_TOPIC, Topic::Menu.to_string());
        assert_eq!(STATUS_TOPIC, Topic::Status.to_string());
    }

    #[test]
    fn presence_payloads() {
        assert!(presence_online(&encode(&"online").expect("encode")));
        assert!(presence_online(b"online"));
        for off in [
            &encode(&"offline").expect("encode")[..],
            b"offline",
            b"",
            b"Online",
        ] {
            assert!(!presence_online(off), "{off:?}");
        }
    }

    #[test]
    fn cmd_topic_parsing() {
        assert_eq!(
            device_of_cmd_topic("docket/v1/cmd/tablet-1"),
            Some("tablet-1")
        );
        assert_eq!(device_of_cmd_topic("docket/v1/cmd/"), None);
        assert_eq!(device_of_cmd_topic("docket/v1/cmd/a/b"), None);
        assert_eq!(device_of_cmd_topic("docket/v1/events"), None);
    }

    #[test]
    fn unknown_type_is_told_apart_from_garbage() {
        let body = encode(&serde_json::json!({"type": "launch_rockets"})).unwrap();
        assert_eq!(
            decode_body(&body).unwrap_err().code,
            crate::Code::UnknownCommand
        );
        assert_eq!(
            decode_body(&[0xff, 0x00]).unwrap_err().code,
            crate::Code::MalformedBody
        );
        let missing = encode(&serde_json::json!({"type": "bump"})).unwrap();
        assert_eq!(
            decode_body(&missing).unwrap_err().code,
            crate::Code::MalformedBody
        );
    }
}
