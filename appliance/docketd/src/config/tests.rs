//! Configuration: defaults, validation, environment overrides.

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect::<Vec<_>>()
        .into_iter()
}

#[test]
fn default_config_parses_and_validates() {
    let raw: RawConfig = toml::from_str(DEFAULT_CONFIG).expect("default config parses");
    let c = raw.validate().expect("default config validates");
    assert_eq!(
        c.mqtt_listen.port(),
        1884,
        "must not collide with a broker on 1883"
    );
    assert_eq!(c.site_id, "demo");
}

#[test]
fn env_overrides_file() {
    let mut raw: RawConfig =
        toml::from_str("site_id = \"a\"\n[http]\nlisten = \"127.0.0.1:1\"").unwrap();
    raw.apply_env(env(&[
        ("DOCKET_SITE_ID", "b"),
        ("DOCKET_HTTP_LISTEN", "127.0.0.1:2"),
        ("HOME", "/x"),
    ]))
    .unwrap();
    let c = raw.validate().unwrap();
    assert_eq!(c.site_id, "b");
    assert_eq!(c.http_listen.port(), 2);
}

#[test]
fn bad_values_are_refused_clearly() {
    let bad = [
        "site_id = \"Bad Site\"",
        "[mqtt]\nlisten = \"nope\"",
        "[log]\nformat = \"xml\"",
        "[mqtt]\nmax_payload_bytes = 10",
        "[http]\nheader_timeout_ms = 0",
        "[http]\nmax_connections = 10\nmax_connections_per_address = 11",
    ];
    for b in bad {
        let raw: RawConfig = toml::from_str(b).unwrap();
        assert!(raw.validate().is_err(), "{b} accepted");
    }
    assert!(toml::from_str::<RawConfig>("unknown_key = 1").is_err());
    let mut raw = RawConfig::default();
    assert!(raw
        .apply_env(env(&[("DOCKET_MQTT_MAX_CONNECTIONS", "many")]))
        .is_err());
}

#[test]
fn byte_bounds_stay_under_the_packet_limit() {
    let mut raw = RawConfig::default();
    raw.engine.max_open_bytes = Some(2 * 1024 * 1024);
    let e = raw.validate().unwrap_err().to_string();
    assert!(e.contains("engine.max_open_bytes"), "{e}");
    // A smaller packet limit shrinks the defaults with it.
    let mut raw = RawConfig::default();
    raw.mqtt.max_payload_bytes = Some(256 * 1024);
    let c = raw.validate().unwrap();
    assert!(c.engine.max_open_bytes + 64 * 1024 <= 256 * 1024);
    assert!(c.engine.replay_page_bytes <= 128 * 1024);
    let c = RawConfig::default().validate().unwrap();
    assert_eq!(
        (
            c.engine.max_order_bytes,
            c.engine.max_open_bytes,
            c.engine.replay_page_bytes
        ),
        (16 * 1024, 1536 * 1024, 256 * 1024)
    );
}

#[test]
fn tls_files_go_in_pairs_and_names_are_dns_names() {
    let mut raw = RawConfig::default();
    raw.tls.cert_file = Some("a.pem".into());
    assert!(raw
        .validate()
        .unwrap_err()
        .to_string()
        .contains("tls.cert_file"));
    let mut raw = RawConfig::default();
    raw.tls.names = Some(vec!["bad name".into()]);
    assert!(raw
        .validate()
        .unwrap_err()
        .to_string()
        .contains("tls.names"));
    let mut raw = RawConfig::default();
    raw.tls.https_listen = Some(String::new());
    assert!(raw.validate().is_err(), "HTTPS cannot be off");
    let c = RawConfig::default().validate().unwrap();
    assert!(
        !c.plain_mqtt && !c.plain_http,
        "plain text is off by default"
    );
    assert_eq!(c.tls.https_listen.port(), 8443);
}

#[test]
fn printers_are_checked_one_per_station_with_a_mode_and_paper() {
    let parse = |text: &str| toml::from_str::<RawConfig>(text).unwrap().validate();
    let c = parse(
        "[printing]\nutc_offset_minutes = 60\n[[printing.printer]]\nstation = \"grill\"\naddress = \"192.168.1.50:9100\"\n[[printing.printer]]\nstation = \"fry\"\naddress = \"printer.local:9100\"\nmode = \"always\"\npaper_mm = 58",
    )
    .unwrap();
    let p = &c.printing;
    assert_eq!((p.utc_offset_minutes, p.fallback_after.as_secs()), (60, 10));
    assert_eq!(p.printers[0].mode, Mode::Fallback, "fallback by default");
    assert_eq!(p.printers[1].paper, docket_core::print::Paper::Mm58);
    for (bad, says) in [
        ("station = \"grill\"\naddress = \"10.0.0.1\"", "no port"),
        (
            "station = \"grill\"\naddress = \"10.0.0.1:9100\"\nmode = \"sometimes\"",
            "fallback, always or off",
        ),
        (
            "station = \"grill\"\naddress = \"10.0.0.1:9100\"\npaper_mm = 70",
            "58 or 80",
        ),
        (
            "station = \"\"\naddress = \"10.0.0.1:9100\"",
            "station name",
        ),
    ] {
        let e = parse(&format!("[[printing.printer]]\n{bad}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
    }
    let twice = "[[printing.printer]]\nstation = \"grill\"\naddress = \"a:1\"\n[[printing.printer]]\nstation = \"grill\"\naddress = \"b:1\"";
    assert!(parse(twice)
        .unwrap_err()
        .to_string()
        .contains("two printers"));
}

#[test]
fn integration_keys_have_defaults_bounds_and_env_overrides() {
    let c = RawConfig::default().validate().unwrap();
    assert_eq!(
        c.integration.webhook_backoff_max,
        std::time::Duration::from_secs(60)
    );
    assert!(!c.integration.allow_plain_webhooks);
    let raw: RawConfig = toml::from_str("[integration]\nwebhook_backoff_max_secs = 0").unwrap();
    let e = raw.validate().unwrap_err().to_string();
    assert!(e.contains("integration.webhook_backoff_max_secs"), "{e}");
    let mut raw = RawConfig::default();
    raw.apply_env(env(&[
        ("DOCKET_INTEGRATION_WEBHOOK_BACKOFF_MAX_SECS", "5"),
        ("DOCKET_INTEGRATION_ALLOW_PLAIN_WEBHOOKS", "true"),
    ]))
    .unwrap();
    let c = raw.validate().unwrap();
    assert_eq!(
        c.integration.webhook_backoff_max,
        std::time::Duration::from_secs(5)
    );
    assert!(c.integration.allow_plain_webhooks);
    assert!(toml::from_str::<RawConfig>("[integration]\nwebhook_retries = 3").is_err());
}
