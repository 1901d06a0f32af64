//! Which HTTP status a refusal of the engine is: the core's reject [`Code`] (the same code an
//! MQTT client gets in its reply) mapped to a status a POS's HTTP client understands. The body
//! keeps the core code itself, so the status is only a summary.
//!
//! Pure: no I/O, no state.

use axum::http::StatusCode;
use docket_core::Code;

/// The HTTP status of a reply refused with `code`.
///
/// 400: the request itself is wrong (a bad field, too long, no lines); 401: the device is not
/// (or no longer) one the box knows; 403: the role may not (another integration's order);
/// 404: no such order; 409: the order's state does not allow it (closed, course already fired,
/// line already voided, the box's open-order limit); 422: well-formed but the menu or the order
/// has no such thing (unknown item or line, sold out, a bad modifier choice); 429: over the
/// device's rate limit; 503: the box could not take it now (storage full, no menu, a failed
/// commit): send it again with the same `Idempotency-Key`; 500: the box itself built a command
/// it then refused (a bug).
pub fn status_of(code: Code) -> StatusCode {
    use Code as C;
    use StatusCode as S;
    match code {
        C::Malformed
        | C::TooLarge
        | C::MalformedBody
        | C::UnknownCommand
        | C::BadQty
        | C::TooLong
        | C::BadField
        | C::NoLines
        | C::TooManyLines
        | C::BadCourse
        | C::BadMenu => S::BAD_REQUEST,
        C::UnknownDevice | C::Revoked => S::UNAUTHORIZED,
        C::Forbidden => S::FORBIDDEN,
        C::UnknownOrder => S::NOT_FOUND,
        C::OrderClosed
        | C::CourseFired
        | C::LineVoided
        | C::NothingToBump
        | C::NothingToRecall
        | C::NothingToPrint
        | C::TooManyOpenOrders => S::CONFLICT,
        C::UnknownItem
        | C::UnknownLine
        | C::UnknownStation
        | C::BadChoice
        | C::SoldOut
        | C::NoPrinter => S::UNPROCESSABLE_ENTITY,
        C::RateLimited => S::TOO_MANY_REQUESTS,
        C::Internal | C::StorageFull | C::NoMenu => S::SERVICE_UNAVAILABLE,
        C::DeviceMismatch | C::BadMac => S::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_the_brief_names_map_as_documented() {
        let cases = [
            ("malformed_body", 400),
            ("bad_field", 400),
            ("too_long", 400),
            ("no_lines", 400),
            ("forbidden", 403),
            ("unknown_order", 404),
            ("order_closed", 409),
            ("course_fired", 409),
            ("unknown_item", 422),
            ("sold_out", 422),
            ("bad_choice", 422),
            ("rate_limited", 429),
            ("storage_full", 503),
            ("internal", 503),
            ("revoked", 401),
        ];
        for (code, status) in cases {
            let c = Code::parse(code).expect(code);
            assert_eq!(status_of(c).as_u16(), status, "{code}");
        }
    }

    #[test]
    fn every_code_is_an_error_status() {
        for c in Code::ALL {
            let s = status_of(c);
            assert!(s.is_client_error() || s.is_server_error(), "{c:?} -> {s}");
        }
    }
}
