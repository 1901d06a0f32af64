//! Arbitrary bytes as every wire message the box decodes from the network: the command envelope
//! (then its body and MAC, as the engine does), and the replies, events, boards and menus that
//! devices decode. None of it may panic, and what decodes must survive an encode/decode round
//! trip unchanged (receivers re-encode nothing, but the load generator and tests do).

#![no_main]

use docket_core::wire::{self, ApplianceStatus, Board, CommandBody, Envelope, Event, Reply};
use docket_core::Menu;
use libfuzzer_sys::fuzz_target;

/// A MAC key no seed was signed with: `verify` must say no without panicking, whatever the MAC's
/// length.
const SECRET: docket_core::keys::MacKey = docket_core::keys::MacKey([7u8; 32]);

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = wire::decode::<Envelope>(data) {
        if let Ok(body) = wire::decode_body(&env.body) {
            body_round_trip(&body);
        }
        let _ = env.verify(&SECRET);
        let bytes = wire::encode(&env)
            .unwrap_or_else(|e| panic!("{env:?} decoded but does not encode: {e}"));
        match wire::decode::<Envelope>(&bytes) {
            Ok(back) => assert_eq!(back, env, "envelope round trip changed it"),
            Err(e) => panic!("{env:?} does not decode after encoding: {e}"),
        }
    }
    // The raw bytes as a body too: the fuzzer mutates a bare body more easily than one inside
    // an envelope.
    if let Ok(body) = wire::decode_body(data) {
        body_round_trip(&body);
    }
    let _ = wire::decode::<Reply>(data);
    let _ = wire::decode::<Event>(data);
    let _ = wire::decode::<Board>(data);
    let _ = wire::decode::<Menu>(data);
    let _ = wire::decode::<ApplianceStatus>(data);
});

fn body_round_trip(body: &CommandBody) {
    let bytes =
        wire::encode(body).unwrap_or_else(|e| panic!("{body:?} decoded but does not encode: {e}"));
    match wire::decode_body(&bytes) {
        Ok(back) => assert_eq!(&back, body, "command body round trip changed it"),
        Err(e) => panic!("{body:?} does not decode after encoding: {e}"),
    }
}
