//! Orders from outside: where an order came from (said only by an integration, checked here)
//! and the rule that an integration changes only the orders it placed.

use super::lines::check_text;
use super::{clip, limits, Actor, OrderBook, Role};
use crate::order::Origin;
use crate::{Code, Rejection};

/// Where an order comes from: said by an integration (a channel, 1-16 characters, and the
/// order's number there, 1-32), never by the restaurant's own devices.
pub(super) fn origin(
    actor: &Actor,
    channel: Option<&str>,
    reference: Option<&str>,
) -> Result<Option<Origin>, Rejection> {
    if actor.role != Role::Integration {
        if channel.is_some() || reference.is_some() {
            return Err(Rejection::new(
                Code::Forbidden,
                format!(
                    "a {} device may not say where an order came from (channel, reference): only an integration may",
                    actor.role.as_str()
                ),
            ));
        }
        return Ok(None);
    }
    let channel = channel.ok_or_else(|| {
        Rejection::new(
            Code::MalformedBody,
            "an order from an integration names its channel (\"online\", \"kiosk\", a platform's name)",
        )
    })?;
    check_text("channel", channel, limits::MAX_CHANNEL_CHARS, false)?;
    if let Some(r) = reference {
        check_text("reference", r, limits::MAX_REFERENCE_CHARS, false)?;
    }
    Ok(Some(Origin {
        channel: channel.to_owned(),
        reference: reference.map(str::to_owned),
        device: actor.device.clone(),
    }))
}

/// An integration changes only the orders it placed.
pub(super) fn own_order(site: &OrderBook, actor: &Actor, order_id: &str) -> Result<(), Rejection> {
    let Some(order) = site.orders.get(order_id) else {
        // Unknown orders are the command's own error (unknown_order).
        return Ok(());
    };
    if order
        .origin
        .as_ref()
        .is_some_and(|o| o.device == actor.device)
    {
        Ok(())
    } else {
        Err(Rejection::new(
            Code::Forbidden,
            format!(
                "{} did not place order {}: an integration changes only its own orders",
                clip(&actor.device),
                order.id
            ),
        ))
    }
}
