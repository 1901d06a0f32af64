//! A logged-in device's byte stream through the connection layer (rumqttd's codec, the MQTT 5
//! strictness check, the device ACL's judge): nothing panics, nothing outside the ACL is
//! forwarded to the router (`replay` asserts it), and how the bytes arrive never changes what is.
//!
//! The first byte picks the protocol (its low bit) and the sizes the rest arrives in.
#![no_main]

use docket_appliance::mqtt::conn::{inbound::replay, Proto};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&head, bytes)) = data.split_first() else {
        return;
    };
    let proto = if head & 1 == 0 { Proto::V4 } else { Proto::V5 };
    let piece = usize::from(head >> 1).max(1);
    let whole = replay(proto, "tab-1", true, bytes, &[bytes.len().max(1)]);
    let split = replay(proto, "tab-1", true, bytes, &[piece, 1, piece * 3]);
    assert_eq!(format!("{whole:?}"), format!("{split:?}"), "the split changed the outcome");
});
