//! Which end of a transfer this is: the vocabulary the handshake's proofs, the reports and the
//! messages share. It imports nothing of ours.

use serde::Serialize;

/// Which end of the transfer: the one that sends files or the one that receives them (whichever
/// connected). In JSON reports and events it is `send` or `recv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// The end that sends files.
    #[serde(rename = "send")]
    Sender,
    /// The end that receives files.
    #[serde(rename = "recv")]
    Receiver,
}

impl Role {
    /// The other end's role.
    pub fn peer(self) -> Role {
        match self {
            Role::Sender => Role::Receiver,
            Role::Receiver => Role::Sender,
        }
    }

    /// `sender` or `receiver`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }

    /// `send` or `recv`: the subcommand, and the side's label in reports.
    pub fn side(self) -> &'static str {
        match self {
            Role::Sender => "send",
            Role::Receiver => "recv",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn reports_name_the_side_as_the_subcommand() {
        assert_eq!(serde_json::to_string(&Role::Sender).unwrap(), "\"send\"");
        assert_eq!(serde_json::to_string(&Role::Receiver).unwrap(), "\"recv\"");
        assert_eq!(Role::Sender.peer(), Role::Receiver);
        assert_eq!(Role::Receiver.name(), "receiver");
    }
}
