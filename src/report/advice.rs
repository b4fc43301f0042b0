//! The command a listening end prints for its peer, ready to paste: the token (the one this
//! end made, or `$ZCP_TOKEN` for one the user gave), `FILE...` where the paths go, and each
//! address the peer can reach (`link::net::reachable`).

use std::net::SocketAddr;

use crate::link::auth::Token;
use crate::link::net;

/// Which command the peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCommand {
    /// `zcp send FILE... ADDR`, printed by a receiver.
    Send,
    /// `zcp recv --connect ADDR`, printed by a listening sender.
    RecvConnect,
}

/// How the peer proves the token in the printed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint<'a> {
    /// This end made the token: it is shown (it must be, or no one could use it).
    Made(&'a str),
    /// The user gave this end its token: the peer is told to use the same one.
    Given,
    /// `--no-auth`: the peer must say it too.
    Off,
}

impl<'a> TokenHint<'a> {
    /// The hint for a listening end's `token` (`None` with `--no-auth`), which it made itself
    /// when `generated`.
    pub fn of(token: Option<&'a Token>, generated: bool) -> TokenHint<'a> {
        match token {
            Some(t) if generated => TokenHint::Made(t.reveal()),
            Some(_) => TokenHint::Given,
            None => TokenHint::Off,
        }
    }
}

/// Prints, on stderr, the token this end made and then the peer's command for each address
/// a listener bound to `bound` can be reached at. A made token and its commands are printed
/// even with `--quiet` (`summary` false): no one could use the token otherwise.
pub fn print(
    peer: PeerCommand,
    token: TokenHint<'_>,
    encrypt: bool,
    summary: bool,
    bound: SocketAddr,
) {
    if let TokenHint::Made(t) = token {
        crate::terminal::line(format!("token {t}"));
    } else if !summary {
        return;
    }
    for line in peer_commands(peer, token, encrypt, &net::reachable(bound)) {
        crate::terminal::line(line);
    }
}

/// The peer's command for each address, one line each: "on the sender: ZCP_TOKEN=… zcp send
/// FILE... 10.0.0.5:7878".
pub fn peer_commands(
    peer: PeerCommand,
    token: TokenHint<'_>,
    encrypt: bool,
    addrs: &[SocketAddr],
) -> Vec<String> {
    let env = match token {
        TokenHint::Made(t) => format!("ZCP_TOKEN={t} "),
        TokenHint::Given => "ZCP_TOKEN=$ZCP_TOKEN ".to_string(),
        TokenHint::Off => String::new(),
    };
    // With --encrypt or --no-auth on one end only, the session fails: the peer needs them too.
    let mut flags = String::new();
    if encrypt {
        flags.push_str(" --encrypt");
    }
    if token == TokenHint::Off {
        flags.push_str(" --no-auth");
    }
    addrs
        .iter()
        .map(|addr| match peer {
            PeerCommand::Send => format!("on the sender: {env}zcp send{flags} FILE... {addr}"),
            PeerCommand::RecvConnect => {
                format!("on the receiver: {env}zcp recv{flags} --connect {addr}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_a_command_with_the_token_and_the_flags_the_peer_needs() {
        let addrs: Vec<SocketAddr> =
            ["10.0.0.5:7878", "[fd00::5]:7878"].iter().map(|a| a.parse().unwrap()).collect();
        let lines = peer_commands(PeerCommand::Send, TokenHint::Made("k3fq"), true, &addrs);
        assert_eq!(
            lines,
            [
                "on the sender: ZCP_TOKEN=k3fq zcp send --encrypt FILE... 10.0.0.5:7878",
                "on the sender: ZCP_TOKEN=k3fq zcp send --encrypt FILE... [fd00::5]:7878",
            ]
        );
        let given = peer_commands(PeerCommand::RecvConnect, TokenHint::Given, false, &addrs[..1]);
        assert_eq!(
            given,
            ["on the receiver: ZCP_TOKEN=$ZCP_TOKEN zcp recv --connect 10.0.0.5:7878"]
        );
        let off = peer_commands(PeerCommand::Send, TokenHint::Off, false, &addrs[..1]);
        assert_eq!(off, ["on the sender: zcp send --no-auth FILE... 10.0.0.5:7878"]);
    }
}
