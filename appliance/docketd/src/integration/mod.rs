//! Orders from outside the restaurant's own devices: head office's downlink
//! ([`crate::uplink::inbound`]) and the till's local API. Both speak for a registered device of
//! role `integration` and go through the one command path: [`Submitter::submit`] signs the
//! command with that device's MAC key (as a tablet does), hands it to the engine's queue as a
//! connection session would, and waits for its reply, which comes only after the commit. So an
//! order from outside meets the same checks (device known and not revoked, role, the order rules
//! of `docket_core::decide`), the same exactly-once rule by (device, command id) and the same
//! durability as one from a tablet.
//!
//! Owns nothing but the waiting; must not decide anything itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docket_core::wire::{self, CommandBody, Envelope, Reply};
use docket_core::Role;

use crate::engine::inbox::Commands;
use crate::store::registry::{DeviceRegistry, Lookup};

/// How long a caller waits for the engine's reply: far above a group commit, below an HTTP
/// client's patience. A reply that does not come in time is not lost: the same id asks again.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What an order from outside shows as its table when it names none, as a tablet's takeaway
/// reads "Takeaway": the way it leaves ("delivery", "takeaway"), the channel for a dine-in one
/// (a kiosk's). The channel and its number are on the ticket anyway (`Order.origin`). One rule
/// for head office's downlink and the local API.
pub fn table_for(service: Option<docket_core::order::Service>, channel: &str) -> String {
    use docket_core::order::Service;
    match service {
        Some(s @ (Service::Delivery | Service::Takeaway)) => s.as_str().to_owned(),
        _ => channel.to_owned(),
    }
}

/// Why a command from outside got no reply from the engine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("no device {0:?} is paired")]
    Unknown(String),
    #[error("device {0:?} has been revoked")]
    Revoked(String),
    #[error("device {0:?} is not an integration")]
    NotIntegration(String),
    #[error("the command could not be encoded: {0}")]
    Encode(String),
    #[error("the engine stopped taking commands")]
    Stopped,
    #[error("no reply from the engine within {}s: send it again with the same id", REPLY_TIMEOUT.as_secs())]
    Timeout,
}

/// Signs and sends commands for integration devices, and waits for their replies.
#[derive(Clone)]
pub struct Submitter {
    commands: Commands,
    registry: Arc<DeviceRegistry>,
}

impl Submitter {
    pub fn new(commands: Commands, registry: Arc<DeviceRegistry>) -> Self {
        Submitter { commands, registry }
    }

    /// The registry, to check who an API caller is.
    pub fn registry(&self) -> &Arc<DeviceRegistry> {
        &self.registry
    }

    /// `device`'s command `id` decided by the engine, exactly once by (device, id): sending the
    /// same id again gets the first reply.
    pub async fn submit(
        &self,
        device: &str,
        id: &str,
        body: &CommandBody,
    ) -> Result<Reply, SubmitError> {
        // The registry looks at SQLite's data_version first: off the async workers.
        let (registry, who) = (self.registry.clone(), device.to_owned());
        let found = tokio::task::spawn_blocking(move || registry.lookup(&who))
            .await
            .map_err(|_| SubmitError::Stopped)?;
        let key = match found {
            Lookup::Active(actor, _) if actor.role != Role::Integration => {
                return Err(SubmitError::NotIntegration(device.to_owned()))
            }
            Lookup::Active(_, key) => key,
            Lookup::Revoked => return Err(SubmitError::Revoked(device.to_owned())),
            Lookup::Unknown => return Err(SubmitError::Unknown(device.to_owned())),
        };
        let envelope = Envelope::sign(id, device, &key, body)
            .and_then(|e| wire::encode(&e))
            .map_err(|e| SubmitError::Encode(e.to_string()))?;
        let rx = self
            .commands
            .request(device, id, Bytes::from(envelope))
            .await
            .map_err(|_| SubmitError::Stopped)?;
        let bytes = match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return Err(SubmitError::Stopped),
            Err(_) => {
                self.commands.forget(device, id);
                return Err(SubmitError::Timeout);
            }
        };
        wire::decode::<Reply>(&bytes).map_err(|e| SubmitError::Encode(e.to_string()))
    }
}
