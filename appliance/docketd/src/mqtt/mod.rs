//! MQTT on the LAN: the router (rumqttd's, as published) and the connection layer that owns
//! every device's socket and speaks to the router through local links.
//!
//! Owns nothing of the order state: commands go to the engine's inbox, boards and replies come
//! back from the engine through the router.

pub mod broker;
pub mod conn;
