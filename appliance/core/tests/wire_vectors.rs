//! The byte-exact examples from the shared wire contract: a foreign client and docketd agree.

use docket_core::keys::{self, DeviceKeys, MacKey};
use docket_core::wire::{
    self, decode, decode_body, encode, CommandBody, Envelope, LineInput, Reply,
};
use docket_core::Code;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("wire-vectors.json")).expect("vectors parse")
}

fn hex_of(v: &Value, path: &[&str]) -> Vec<u8> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    hex::decode(cur.as_str().expect("hex string")).expect("valid hex")
}

fn secret() -> [u8; 32] {
    let v = vectors();
    hex_of(&v, &["device", "secret_hex"])
        .try_into()
        .expect("32 bytes")
}

fn mac_key() -> MacKey {
    DeviceKeys::derive(&secret()).mac
}

#[test]
fn keys_derive_byte_exact() {
    let v = vectors();
    let k = DeviceKeys::derive(&secret());
    assert_eq!(k.login.0.to_vec(), hex_of(&v, &["device", "login_key_hex"]));
    assert_eq!(k.mac.0.to_vec(), hex_of(&v, &["device", "mac_key_hex"]));
    assert_eq!(keys::password(&secret()), v["device"]["mqtt_password"]);
    assert_ne!(v["device"]["mqtt_password"], v["device"]["secret_hex"]);
}

#[test]
fn body_encodes_byte_exact_and_mac_matches() {
    let v = vectors();
    let body = CommandBody::place(
        "12",
        vec![LineInput {
            mods: vec!["no-onion".into()],
            notes: Some("medium rare".into()),
            ..LineInput::plain("burger-classic", 2)
        }],
    );
    let want = hex_of(&v, &["command_place_order", "body_cbor_hex"]);
    assert_eq!(encode(&body).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), body);
    let id = v["command_place_order"]["envelope"]["id"].as_str().unwrap();
    let mut input = wire::MAC_DOMAIN.to_vec();
    input.push(0);
    for field in ["tablet-1", id] {
        input.extend_from_slice(&(field.len() as u32).to_be_bytes());
        input.extend_from_slice(field.as_bytes());
    }
    input.extend_from_slice(&want);
    assert_eq!(input, hex_of(&v, &["command_place_order", "mac_input_hex"]));
    assert_eq!(
        wire::mac(&mac_key(), "tablet-1", id, &want).to_vec(),
        hex_of(&v, &["command_place_order", "mac_hex"])
    );
}

#[test]
fn envelope_round_trips_byte_exact_and_verifies() {
    let v = vectors();
    let bytes = hex_of(&v, &["command_place_order", "envelope_cbor_hex"]);
    let env: Envelope = decode(&bytes).unwrap();
    assert_eq!(env.id, "01JDQ7ZK4P8X3V2M6N9R5T0W1Y");
    assert_eq!(env.device, "tablet-1");
    assert!(env.verify(&mac_key()));
    assert_eq!(encode(&env).unwrap(), bytes);
    assert_eq!(
        v["command_place_order"]["topic"],
        wire::cmd_topic("tablet-1")
    );
    let signed = Envelope::sign(
        &env.id,
        "tablet-1",
        &mac_key(),
        &decode_body(&env.body).unwrap(),
    )
    .unwrap();
    assert_eq!(signed, env);
}

#[test]
fn wrong_mac_does_not_verify() {
    let v = vectors();
    let env: Envelope = decode(&hex_of(
        &v,
        &["command_with_wrong_mac", "envelope_cbor_hex"],
    ))
    .unwrap();
    assert!(!env.verify(&mac_key()));
}

#[test]
fn an_envelope_replayed_under_a_new_id_does_not_verify() {
    let v = vectors();
    let good: Envelope =
        decode(&hex_of(&v, &["command_place_order", "envelope_cbor_hex"])).unwrap();
    let replayed: Envelope = decode(&hex_of(
        &v,
        &["command_replayed_under_new_id", "envelope_cbor_hex"],
    ))
    .unwrap();
    assert_eq!((&replayed.body, &replayed.mac), (&good.body, &good.mac));
    assert_ne!(replayed.id, good.id);
    assert!(!replayed.verify(&mac_key()));
    // Nor under another device's name, nor keyed with the secret or the login key.
    let other = Envelope {
        device: "tablet-2".into(),
        ..good.clone()
    };
    assert!(!other.verify(&mac_key()));
    assert!(!good.verify(&MacKey(secret())));
    assert!(!good.verify(&MacKey(DeviceKeys::derive(&secret()).login.0)));
}

#[test]
fn replies_encode_byte_exact() {
    let v = vectors();
    let ok = Reply::accepted("01JDQ7ZK4P8X3V2M6N9R5T0W1Y", "o-000042", 42, 1077);
    assert_eq!(
        encode(&ok).unwrap(),
        hex_of(&v, &["reply_ok_example", "cbor_hex"])
    );
    let rej = docket_core::Rejection::new(
        Code::BadMac,
        "command signature does not match the device secret",
    );
    let err = Reply::rejected("01JDQ80000000000000000000B", &rej);
    let bytes = hex_of(&v, &["reply_error_example", "cbor_hex"]);
    assert_eq!(encode(&err).unwrap(), bytes);
    assert_eq!(decode::<Reply>(&bytes).unwrap(), err);
}

#[test]
fn garbage_never_decodes_nor_panics() {
    let v = vectors();
    for g in v["garbage_payloads_hex"].as_array().unwrap() {
        let bytes = hex::decode(g.as_str().unwrap()).unwrap();
        assert!(
            decode::<Envelope>(&bytes).is_err(),
            "garbage {g} decoded as an envelope"
        );
        assert!(decode_body(&bytes).is_err());
    }
}

#[test]
fn a_line_with_a_doneness_and_an_allergy_encodes_byte_exact() {
    let v = vectors();
    let body = CommandBody::place(
        "7",
        vec![LineInput {
            mods: vec!["medium-rare".into(), "bearnaise".into()],
            notes: Some("birthday: candle please".into()),
            allergy: Some("sesame".into()),
            ..LineInput::plain("steak-ribeye", 1)
        }],
    );
    let want = hex_of(&v, &["command_place_order_with_allergy", "body_cbor_hex"]);
    assert_eq!(encode(&body).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), body);
}

#[test]
fn a_menu_item_with_a_group_encodes_byte_exact() {
    let v = vectors();
    let bytes = hex_of(&v, &["menu_item_with_group", "cbor_hex"]);
    let item: docket_core::MenuItem = decode(&bytes).unwrap();
    assert_eq!(item.groups.len(), 1);
    assert_eq!(item.groups[0].name, "Doneness");
    assert_eq!((item.groups[0].min, item.groups[0].max), (1, 1));
    assert_eq!(encode(&item).unwrap(), bytes);
    let json: docket_core::MenuItem =
        serde_json::from_value(v["menu_item_with_group"]["value"].clone()).unwrap();
    assert_eq!(json, item);
}

#[test]
fn the_menu_commands_and_their_reply_encode_byte_exact() {
    let v = vectors();
    let stock = CommandBody::SetStock {
        item: "fries".into(),
        out: true,
    };
    let want = hex_of(&v, &["command_set_stock", "body_cbor_hex"]);
    assert_eq!(encode(&stock).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), stock);
    let want = hex_of(&v, &["command_set_item", "body_cbor_hex"]);
    let CommandBody::SetItem { item } = decode_body(&want).unwrap() else {
        panic!("a set_item");
    };
    assert!(item.out && item.groups[0].name == "Size" && item.prep_min == Some(3));
    assert_eq!(encode(&CommandBody::SetItem { item }).unwrap(), want);
    let want = hex_of(&v, &["reply_menu_example", "cbor_hex"]);
    let reply = Reply::menu("01JDQ9A0000000000000000086", 7);
    assert_eq!(encode(&reply).unwrap(), want);
}

#[test]
fn the_reprint_command_encodes_byte_exact() {
    let v = vectors();
    let last = CommandBody::Reprint {
        station: "grill".into(),
        order_id: None,
        last: Some(3),
    };
    let want = hex_of(&v, &["command_reprint", "body_cbor_hex"]);
    assert_eq!(encode(&last).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), last);
    let one = CommandBody::Reprint {
        station: "grill".into(),
        order_id: Some("o-000042".into()),
        last: None,
    };
    let want = hex_of(&v, &["command_reprint_order", "body_cbor_hex"]);
    assert_eq!(encode(&one).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), one);
}

#[test]
fn an_integrations_order_encodes_byte_exact() {
    let v = vectors();
    let body = CommandBody::PlaceOrder {
        table: "D-17".into(),
        lines: vec![LineInput::plain("burger-classic", 1)],
        service: Some(docket_core::order::Service::Delivery),
        server: None,
        channel: Some("Deliveroo".into()),
        reference: Some("DR-4411".into()),
    };
    let want = hex_of(&v, &["command_place_order_integration", "body_cbor_hex"]);
    assert_eq!(encode(&body).unwrap(), want);
    assert_eq!(decode_body(&want).unwrap(), body);
}
