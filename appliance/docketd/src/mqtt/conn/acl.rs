//! The device topic ACL: what a tablet or screen may publish and subscribe to.
//!
//! rumqttd has no per-topic authorisation: any logged-in device could publish fake replies on
//! another tablet's reply topic ("your order is in" for an order that is not), fake events that
//! screens would show, or retained junk on any topic (kept in memory until restart). The
//! connection layer judges every PUBLISH topic, SUBSCRIBE filter and will of a logged-in device
//! with these rules, on the very packet rumqttd's codec parsed (the one and only MQTT parser in
//! the process), and cuts the connection at the first packet outside them, before any of it
//! reaches the router.
//!
//! A device (client id = its device id) may:
//! - publish on `docket/v1/cmd/{itself}` and `docket/v1/devices/{itself}/presence` (also as its
//!   will);
//! - subscribe to `docket/v1/reply/{itself}`, `docket/v1/events`, `docket/v1/menu`,
//!   `docket/v1/appliance/status` and `docket/v1/board/{station}` (or `docket/v1/board/+`).
//!
//! Pure: names in, verdict out.

use docket_core::topic::{Filter, Topic};

/// Why a connection was cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

/// The topics a device may publish on (and leave as its will).
pub fn may_publish(device: &str, topic: &str) -> Result<(), Violation> {
    if topic.is_empty() {
        return Err(Violation(
            "a PUBLISH without a topic (topic aliases are not accepted)".into(),
        ));
    }
    match Topic::parse(topic) {
        Some(Topic::Cmd(d) | Topic::Presence(d)) if d == device => Ok(()),
        _ => Err(Violation(format!("publish on {topic:?}"))),
    }
}

/// A will is a publish the box makes for the device later: the same rule, said as a will.
pub fn may_will(device: &str, topic: &str) -> Result<(), Violation> {
    match Topic::parse(topic) {
        Some(Topic::Presence(d)) if d == device => Ok(()),
        _ => Err(Violation(format!("a will on {topic:?}"))),
    }
}

/// The filters a device may subscribe to.
pub fn may_subscribe(device: &str, filter: &str) -> bool {
    match Filter::parse(filter) {
        Some(Filter::Exact(Topic::Reply(d))) => d == device,
        Some(Filter::Exact(Topic::Events | Topic::Menu | Topic::Status | Topic::Board(_))) => true,
        Some(Filter::AllBoards) => true,
        Some(
            Filter::Exact(Topic::Cmd(_) | Topic::Presence(_))
            | Filter::AllCommands
            | Filter::AllReplies
            | Filter::AllPresence,
        )
        | None => false,
    }
}

/// Filters of the box's retained state (boards, menu, status): a subscriber must receive every
/// retained message they match, however many (one board per station).
pub fn is_state_filter(filter: &str) -> bool {
    match Filter::parse(filter) {
        Some(Filter::Exact(t)) => t.is_state(),
        Some(Filter::AllBoards) => true,
        Some(Filter::AllCommands | Filter::AllReplies | Filter::AllPresence) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_publishes_only_its_commands_and_presence() {
        assert!(may_publish("tab-1", "docket/v1/cmd/tab-1").is_ok());
        assert!(may_publish("tab-1", "docket/v1/devices/tab-1/presence").is_ok());
        for t in [
            "docket/v1/cmd/tab-2",
            "docket/v1/reply/tab-1",
            "docket/v1/events",
            "docket/v1/board/grill",
            "docket/v1/menu",
            "docket/v1/appliance/status",
            "docket/v1/devices/tab-2/presence",
            "docket/v1/cmd/+",
            "docket/v1/cmd/#",
            "junk/1",
            "",
        ] {
            assert!(may_publish("tab-1", t).is_err(), "{t:?} allowed");
        }
        assert_eq!(
            may_publish("tab-1", "docket/v1/events").unwrap_err().0,
            "publish on \"docket/v1/events\""
        );
    }

    #[test]
    fn a_will_goes_only_on_the_devices_own_presence() {
        assert!(may_will("tab-1", "docket/v1/devices/tab-1/presence").is_ok());
        for t in [
            "docket/v1/events",
            "docket/v1/devices/tab-2/presence",
            "docket/v1/devices/#/presence",
            "docket/v1/cmd/tab-1",
            "docket/v1/reply/tab-1",
        ] {
            assert!(may_will("tab-1", t).is_err(), "{t:?} allowed");
        }
    }

    #[test]
    fn subscriptions() {
        for ok in [
            "docket/v1/reply/tab-1",
            "docket/v1/events",
            "docket/v1/menu",
            "docket/v1/appliance/status",
            "docket/v1/board/grill",
            "docket/v1/board/+",
        ] {
            assert!(may_subscribe("tab-1", ok), "{ok} refused");
        }
        for bad in [
            "#",
            "+/#",
            "docket/#",
            "docket/v1/reply/+",
            "docket/v1/reply/#",
            "docket/v1/reply/tab-2",
            "docket/v1/cmd/+",
            "docket/v1/cmd/tab-1",
            "docket/v1/board/#",
            "docket/v1/board/gr+ill",
            "docket/v1/board/grill/x",
            "docket/v1/board/",
            "docket/v1/devices/+/presence",
            "$share/g/docket/v1/events",
            "$SYS/#",
        ] {
            assert!(!may_subscribe("tab-1", bad), "{bad} allowed");
        }
    }

    #[test]
    fn state_filters_are_boards_menu_and_status() {
        for s in [
            "docket/v1/board/grill",
            "docket/v1/board/+",
            "docket/v1/board/expo",
            "docket/v1/menu",
            "docket/v1/appliance/status",
        ] {
            assert!(is_state_filter(s), "{s}");
        }
        for s in [
            "docket/v1/events",
            "docket/v1/reply/tab-1",
            "docket/v1/board/#",
            "#",
        ] {
            assert!(!is_state_filter(s), "{s}");
        }
    }
}
