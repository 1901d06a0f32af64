//! What a POS sends the local API, parsed strictly (unknown fields refused) and turned into the
//! one command body the engine decides ([`CommandBody`]): the API adds no order rule of its
//! own. Also the `Idempotency-Key` header, which becomes the command id.
//!
//! Pure: no I/O, no state.

use axum::http::HeaderMap;
use docket_core::order::Service;
use docket_core::wire::{CommandBody, LineInput};
use serde::Deserialize;

use crate::http::error::AppError;

/// The header whose value is the command id (exactly once by integration device and key).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest `Idempotency-Key`, in characters (the command id limit of the wire contract).
pub const MAX_KEY_CHARS: usize = 64;

/// `Idempotency-Key`: 1-64 visible ASCII characters (no spaces), given once.
pub fn idempotency_key(h: &HeaderMap) -> Result<String, AppError> {
    let mut values = h.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(AppError::BadIdempotencyKey);
    };
    let k = v.to_str().map_err(|_| AppError::BadIdempotencyKey)?;
    let ok = (1..=MAX_KEY_CHARS).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| k.to_owned()).ok_or(AppError::BadIdempotencyKey)
}

/// One line of an order as the POS sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub item: String,
    pub qty: u32,
    #[serde(default)]
    pub mods: Vec<String>,
    pub notes: Option<String>,
    pub allergy: Option<String>,
    pub course: Option<u32>,
    pub seat: Option<u32>,
}

impl From<LineIn> for LineInput {
    fn from(l: LineIn) -> Self {
        LineInput {
            item: l.item,
            qty: l.qty,
            mods: l.mods,
            notes: l.notes,
            course: l.course,
            allergy: l.allergy,
            seat: l.seat,
        }
    }
}

fn lines(v: Vec<LineIn>) -> Vec<LineInput> {
    v.into_iter().map(LineInput::from).collect()
}

/// `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub table: Option<String>,
    pub service: Option<Service>,
    pub server: Option<String>,
    pub channel: String,
    pub reference: Option<String>,
    pub lines: Vec<LineIn>,
}

impl NewOrder {
    /// The `place_order` it is. The ticket's table text: `table` when given; otherwise the way
    /// it leaves, or the channel for dine-in ([`crate::integration::table_for`]).
    pub fn into_command(self) -> CommandBody {
        let table = self
            .table
            .unwrap_or_else(|| crate::integration::table_for(self.service, &self.channel));
        CommandBody::PlaceOrder {
            table,
            lines: lines(self.lines),
            service: self.service,
            server: self.server,
            channel: Some(self.channel),
            reference: self.reference,
        }
    }
}

/// `POST /api/v1/orders/{order_id}/lines`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLines {
    pub lines: Vec<LineIn>,
}

impl NewLines {
    pub fn into_command(self, order_id: String) -> CommandBody {
        CommandBody::AddLines {
            order_id,
            lines: lines(self.lines),
        }
    }
}

/// `POST /api/v1/orders/{order_id}/void`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Void {
    pub line: u32,
}

/// `POST /api/v1/orders/{order_id}/fire`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fire {
    pub course: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::parse;
    use axum::http::HeaderValue;

    fn key(values: &[&str]) -> Result<String, AppError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(IDEMPOTENCY_KEY, HeaderValue::from_str(v).unwrap());
        }
        idempotency_key(&h)
    }

    #[test]
    fn idempotency_keys_are_1_to_64_visible_characters_given_once() {
        assert_eq!(key(&["pos-42"]).unwrap(), "pos-42");
        assert_eq!(key(&[&"k".repeat(64)]).unwrap().len(), 64);
        for bad in [&[][..], &[""], &["a b"], &[&"k".repeat(65)], &["a", "b"]] {
            assert!(
                matches!(key(bad), Err(AppError::BadIdempotencyKey)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_order_becomes_place_order_with_its_channel() {
        let o: NewOrder = parse(
            br#"{"table":"7","channel":"till","reference":"A-12","service":"takeaway",
                 "lines":[{"item":"fries","qty":2,"mods":["no-salt"],"seat":1,"course":1}]}"#,
        )
        .unwrap();
        let CommandBody::PlaceOrder {
            table,
            lines,
            service,
            channel,
            reference,
            ..
        } = o.into_command()
        else {
            panic!("not place_order")
        };
        assert_eq!(table, "7");
        assert_eq!(channel.as_deref(), Some("till"));
        assert_eq!(reference.as_deref(), Some("A-12"));
        assert_eq!(service, Some(Service::Takeaway));
        assert_eq!(lines[0].mods, vec!["no-salt".to_owned()]);
        assert_eq!(lines[0].seat, Some(1));
    }

    #[test]
    fn without_a_table_the_way_it_leaves_then_the_channel_is_the_table() {
        let table = |json: &str| match parse::<NewOrder>(json.as_bytes()).unwrap().into_command() {
            CommandBody::PlaceOrder { table, .. } => table,
            _ => unreachable!(),
        };
        let lines = r#""lines":[{"item":"fries","qty":1}]"#;
        assert_eq!(
            table(&format!(
                r#"{{"channel":"web","reference":"R-9","service":"takeaway",{lines}}}"#
            )),
            "takeaway"
        );
        assert_eq!(
            table(&format!(
                r#"{{"channel":"web","service":"delivery",{lines}}}"#
            )),
            "delivery"
        );
        assert_eq!(table(&format!(r#"{{"channel":"kiosk",{lines}}}"#)), "kiosk");
        assert_eq!(
            table(&format!(
                r#"{{"channel":"kiosk","service":"dine_in",{lines}}}"#
            )),
            "kiosk"
        );
    }

    #[test]
    fn unknown_fields_missing_channel_and_bad_types_are_refused() {
        for body in [
            r#"{"channel":"web","lines":[],"tip":1}"#,
            r#"{"lines":[{"item":"fries","qty":1}]}"#,
            r#"{"channel":"web","lines":[{"item":"fries","qty":1,"price":3}]}"#,
            r#"{"channel":"web","lines":[{"item":"fries","qty":-1}]}"#,
            r#"{"channel":"web","service":"drone","lines":[]}"#,
            r#"{"channel":"web","lines":"#,
        ] {
            assert!(
                matches!(
                    parse::<NewOrder>(body.as_bytes()),
                    Err(AppError::BadJson(_))
                ),
                "{body}"
            );
        }
        assert!(parse::<Void>(br#"{"line":1,"why":"x"}"#).is_err());
        assert!(parse::<Fire>(br#"{"course":"2"}"#).is_err());
        assert_eq!(parse::<Fire>(br#"{"course":2}"#).unwrap().course, 2);
    }
}
