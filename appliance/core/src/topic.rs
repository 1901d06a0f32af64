//! The MQTT topics of the wire contract, typed: one place that builds them and one that parses
//! them, so the engine, the device ACL and the router's setup never take a topic apart with
//! string literals of their own (docs/protocol.md, "Topics").
//!
//! A name inside a topic (device id, station) is one topic level: not empty, no `/`, and no
//! wildcard (`+`, `#`), else the string is not that topic. Pure: strings in, values out.

use std::fmt;

/// Topic prefix of every Docket message.
pub const PREFIX: &str = "docket/v1";

/// One concrete Docket topic (no wildcards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    /// `docket/v1/cmd/{device}`: a device's signed commands.
    Cmd(&'a str),
    /// `docket/v1/reply/{device}`: the box's answers to that device.
    Reply(&'a str),
    /// `docket/v1/board/{station}`: a station's (or the expo's) retained board.
    Board(&'a str),
    /// `docket/v1/devices/{device}/presence`: a device's online/offline (and its will).
    Presence(&'a str),
    /// `docket/v1/events`: every committed change.
    Events,
    /// `docket/v1/menu`: the retained menu.
    Menu,
    /// `docket/v1/appliance/status`: the box's retained status.
    Status,
}

/// A subscription filter of the contract: one topic, or one of its wildcards. Devices may use
/// `Exact` and `AllBoards` (the ACL says which exact ones); the other wildcards are the box's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter<'a> {
    Exact(Topic<'a>),
    /// `docket/v1/board/+`: every board (the expo, a manager's overview).
    AllBoards,
    /// `docket/v1/cmd/+`: every device's commands (the engine's own subscription).
    AllCommands,
    /// `docket/v1/reply/+`: every device's replies (the router's filter for the engine's output).
    AllReplies,
    /// `docket/v1/devices/+/presence`: every device's presence (the engine tracks who is online).
    AllPresence,
}

/// One level of a topic: a device id or a station name as a topic carries it.
fn level(s: &str) -> Option<&str> {
    (!s.is_empty() && !s.contains(['/', '+', '#'])).then_some(s)
}

impl<'a> Topic<'a> {
    /// The topic `s` names, if it is one of the contract's (exactly, no wildcard).
    pub fn parse(s: &'a str) -> Option<Topic<'a>> {
        let rest = s.strip_prefix(PREFIX)?.strip_prefix('/')?;
        match rest {
            "events" => return Some(Topic::Events),
            "menu" => return Some(Topic::Menu),
            "appliance/status" => return Some(Topic::Status),
            _ => {}
        }
        let (kind, name) = rest.split_once('/')?;
        match kind {
            "cmd" => level(name).map(Topic::Cmd),
            "reply" => level(name).map(Topic::Reply),
            "board" => level(name).map(Topic::Board),
            "devices" => level(name.strip_suffix("/presence")?).map(Topic::Presence),
            _ => None,
        }
    }

    /// Whether the box keeps this topic's last message as the state screens start from.
    pub fn is_state(self) -> bool {
        matches!(self, Topic::Board(_) | Topic::Menu | Topic::Status)
    }
}

impl fmt::Display for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Cmd(d) => write!(f, "{PREFIX}/cmd/{d}"),
            Topic::Reply(d) => write!(f, "{PREFIX}/reply/{d}"),
            Topic::Board(s) => write!(f, "{PREFIX}/board/{s}"),
            Topic::Presence(d) => write!(f, "{PREFIX}/devices/{d}/presence"),
            Topic::Events => write!(f, "{PREFIX}/events"),
            Topic::Menu => write!(f, "{PREFIX}/menu"),
            Topic::Status => write!(f, "{PREFIX}/appliance/status"),
        }
    }
}

impl<'a> Filter<'a> {
    /// The filter `s` names: a contract topic, or one of the two wildcards the contract uses.
    /// Any other wildcard filter is not one of ours.
    pub fn parse(s: &'a str) -> Option<Filter<'a>> {
        match s.strip_prefix(PREFIX).and_then(|r| r.strip_prefix('/')) {
            Some("board/+") => Some(Filter::AllBoards),
            Some("cmd/+") => Some(Filter::AllCommands),
            Some("reply/+") => Some(Filter::AllReplies),
            Some("devices/+/presence") => Some(Filter::AllPresence),
            _ => Topic::parse(s).map(Filter::Exact),
        }
    }
}

impl fmt::Display for Filter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Exact(t) => t.fmt(f),
            Filter::AllBoards => write!(f, "{PREFIX}/board/+"),
            Filter::AllCommands => write!(f, "{PREFIX}/cmd/+"),
            Filter::AllReplies => write!(f, "{PREFIX}/reply/+"),
            Filter::AllPresence => write!(f, "{PREFIX}/devices/+/presence"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_parses_back_to_itself() {
        for t in [
            Topic::Cmd("tablet-1"),
            Topic::Reply("kds-grill"),
            Topic::Board("grill"),
            Topic::Board("expo"),
            Topic::Presence("tablet-1"),
            Topic::Events,
            Topic::Menu,
            Topic::Status,
        ] {
            let s = t.to_string();
            assert_eq!(Topic::parse(&s), Some(t), "{s}");
            assert_eq!(Filter::parse(&s), Some(Filter::Exact(t)), "{s}");
        }
        for f in [
            Filter::AllBoards,
            Filter::AllCommands,
            Filter::AllReplies,
            Filter::AllPresence,
        ] {
            assert_eq!(Filter::parse(&f.to_string()), Some(f));
        }
    }

    #[test]
    fn the_contract_spelling() {
        assert_eq!(Topic::Cmd("t").to_string(), "docket/v1/cmd/t");
        assert_eq!(
            Topic::Presence("t").to_string(),
            "docket/v1/devices/t/presence"
        );
        assert_eq!(Topic::Status.to_string(), "docket/v1/appliance/status");
    }

    #[test]
    fn not_a_topic() {
        for s in [
            "",
            "docket/v1",
            "docket/v1/",
            "docket/v2/events",
            "docket/v1events",
            "docket/v1/events/",
            "docket/v1/cmd/",
            "docket/v1/cmd/a/b",
            "docket/v1/cmd/+",
            "docket/v1/cmd/#",
            "docket/v1/reply/#",
            "docket/v1/board/",
            "docket/v1/board/gr+ill",
            "docket/v1/devices/t",
            "docket/v1/devices//presence",
            "docket/v1/devices/+/presence",
            "docket/v1/devices/a/b/presence",
            "docket/v1/appliance",
            "docket/v1/nope/x",
        ] {
            assert_eq!(Topic::parse(s), None, "{s:?}");
        }
        for s in ["docket/v1/#", "docket/v1/+/grill", "docket/v1/reply/#", "#"] {
            assert_eq!(Filter::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn state_topics() {
        assert!(Topic::Board("grill").is_state());
        assert!(Topic::Menu.is_state() && Topic::Status.is_state());
        assert!(!Topic::Events.is_state() && !Topic::Cmd("t").is_state());
    }
}
