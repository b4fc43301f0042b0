//! `--encrypt`: a TLS 1.3 channel (rustls, ring provider) under the zcp handshake. The end that
//! connected is the TLS client; keys are ephemeral and no certificate authority is involved:
//! the server's key is made per process and the client checks only its signature, because the
//! token, proved inside the tunnel over the TLS exporter (`binding`), is what authenticates
//! both ends (the argument is in `crate::manual::protocol`). After the handshake the keys go
//! to the kernel (`ktls`) where it can take them, else the `pump` seals records in user space.

use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, SubjectPublicKeyInfoDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, Connection, DigitallySignedStruct, ExtractedSecrets, ServerConfig,
    SignatureScheme,
};

use super::auth::Direction;
use super::ktls::{self, CryptoInfo};
use super::peer::{Deadline, HANDSHAKE_TIMEOUT};
use super::pump::{Failure, Pump};
use crate::copy::socket::Socket;
use crate::datapath::Encryption;
use crate::error::SessionError;
use crate::protocol::{self, Hello, MAGIC, ProtocolError, TLS_HANDSHAKE};
use crate::role::Role;

/// The label of the TLS exporter (RFC 8446 §7.5) that binds the token proofs to this channel.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-zcp/2 channel binding";
/// Length of the exporter value.
pub const BINDING_LEN: usize = 32;
/// Longest TLS record on the wire: 2^14 bytes of plaintext plus 256 of expansion (RFC 8446 §5.2).
const MAX_RECORD: usize = (1 << 14) + 256;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const ED25519_SPKI: [u8; 12] =
    [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A connection as the session uses it, under `--encrypt` or not: the socket the session
/// reads and writes, the network peer's address, and what the TLS channel adds (the
/// encryption the report names, the exporter value the token proofs cover). Where the kernel
/// does not seal records, the record layer (`pump`) owns the TCP connection and the session's
/// socket is its end of a Unix stream pair; else the socket is the TCP connection itself.
pub struct Channel {
    /// What the session reads and writes. Declared first, so it closes before the record
    /// layer's network socket is shut.
    socket: Socket,
    /// The network peer, when the TCP connection could name it.
    peer: Option<SocketAddr>,
    encryption: Encryption,
    binding: Option<[u8; BINDING_LEN]>,
    /// The user-space record layer, when the kernel does not seal records.
    pump: Option<Pump>,
    /// When the connection came: the whole handshake, TLS and token, has `HANDSHAKE_TIMEOUT`.
    opened: Instant,
}

/// The network peer of a channel, as messages name it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("the peer"),
        }
    }
}

impl Channel {
    /// A plaintext connection: the session reads and writes `socket` itself.
    pub fn plain(socket: TcpStream) -> Channel {
        let peer = socket.peer_addr().ok();
        Channel {
            socket: Socket::Tcp(socket),
            peer,
            encryption: Encryption::None,
            binding: None,
            pump: None,
            opened: Instant::now(),
        }
    }

    /// The socket the session reads and writes.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The socket the session reads and writes, to write frames to.
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// The network peer, for messages.
    pub fn peer(&self) -> Peer {
        Peer(self.peer)
    }

    /// What is left of the handshake's deadline for the token exchange inside the tunnel.
    pub fn time_left(&self) -> Duration {
        HANDSHAKE_TIMEOUT.saturating_sub(self.opened.elapsed())
    }

    /// The TLS exporter value the token proofs must cover, when encrypted.
    pub fn binding(&self) -> Option<&[u8; BINDING_LEN]> {
        self.binding.as_ref()
    }

    /// How the session's bytes travel, for the report.
    pub fn encryption(&self) -> Encryption {
        self.encryption.clone()
    }

    /// Ends the channel with the session's `result`: closes the session's socket, waits for
    /// the record layer to write what the session wrote, and, when the encrypted stream
    /// failed (a record that did not authenticate), returns that failure as the cause of the
    /// error the session saw. Other handles on the socket (the session's clones) must be
    /// closed by then.
    pub fn close<T>(self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        let Channel { socket, pump, .. } = self;
        drop(socket);
        let Some(pump) = pump else { return result };
        match (result, pump.finish()) {
            (Err(seen), Some(Failure::Tls(why))) => {
                Err(Broken { seen, cause: SessionError::Encryption(why) }.into())
            }
            // A socket error there is the session's own, seen from the other side.
            (result, _) => result,
        }
    }
}

/// A session's error whose cause is a failure of the encrypted stream: what the session saw
/// (a reset, the end of the stream) follows from the record the record layer refused.
#[derive(Debug)]
pub struct Broken {
    /// The error the session saw.
    pub seen: anyhow::Error,
    /// Why the encrypted stream failed.
    pub cause: SessionError,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seen)
    }
}

impl std::error::Error for Broken {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Opens the channel on a fresh `socket` made in `direction`: plaintext, or TLS when
/// `encrypt`; `them` is the peer's role, for messages. The accepting end first writes a
/// plaintext greeting with the ENCRYPT flag (so a plaintext peer learns at once that it must
/// use `--encrypt`) and expects a TLS ClientHello; the connecting end expects that greeting
/// and starts TLS. With keys in user space the record layer takes `socket`, and the channel
/// holds the session's end of the record layer's socket pair.
pub fn open(
    mut socket: TcpStream,
    direction: Direction,
    encrypt: bool,
    them: Role,
) -> anyhow::Result<Channel> {
    if !encrypt {
        return Ok(Channel::plain(socket));
    }
    let opened = Instant::now();
    let peer = socket.peer_addr().ok();
    let wire = socket.try_clone().context("duplicating the socket")?;
    let mut deadline = Deadline::on(Socket::Tcp(wire), HANDSHAKE_TIMEOUT);
    let mut conn: Connection = match direction {
        Direction::Connected => {
            let name = ServerName::try_from("zcp").context("naming the TLS server")?;
            let client =
                rustls::ClientConnection::new(client_config()?, name).context("starting TLS")?;
            let mut conn = Connection::from(client);
            write_pending(&mut conn, &mut socket)?;
            conn
        }
        Direction::Accepted => {
            protocol::write_hello(&mut socket, Hello::ours().encrypting())
                .context("sending the greeting")?;
            rustls::ServerConnection::new(server_config()?).context("starting TLS")?.into()
        }
    };
    match direction {
        Direction::Connected => expect_preface(&mut deadline, them)?,
        Direction::Accepted => expect_client_hello(&socket, them, HANDSHAKE_TIMEOUT)?,
    }
    handshake(&mut conn, &mut socket, &mut deadline)?;
    let mut binding = [0u8; BINDING_LEN];
    conn.export_keying_material(&mut binding, EXPORTER_LABEL, None)
        .map_err(|e| anyhow!("deriving the channel binding: {e}"))?;
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite()));
    let secrets = conn
        .dangerous_extract_secrets()
        .map_err(|e| anyhow!("taking the TLS keys from the handshake: {e}"))?;
    let (kernel, fallback, socket, pump) = match to_kernel(&secrets, &socket)? {
        None => (true, None, Socket::Tcp(socket), None),
        Some(why) => {
            let (pump, session) = Pump::start(&secrets, socket)?;
            (false, Some(why), Socket::Local(session), Some(pump))
        }
    };
    let encryption = Encryption::Tls { kernel, cipher, fallback };
    Ok(Channel { socket, peer, encryption, binding: Some(binding), pump, opened })
}

/// Hands both directions' keys and sequence numbers to the kernel, so the session keeps the
/// socket and `sendfile`/`splice` on it carry TLS records. `Some(reason)` where the kernel
/// takes no keys (nothing installed: the socket still carries plain bytes, and the records
/// are sealed in user space).
fn to_kernel(secrets: &ExtractedSecrets, socket: &TcpStream) -> anyhow::Result<Option<String>> {
    if let Err(errno) = ktls::attach(socket) {
        return Ok(Some(format!(
            "kernel TLS not used: setsockopt(TCP_ULP, \"tls\") failed: the kernel has no kTLS \
             ({errno:?})"
        )));
    }
    let tx = CryptoInfo::from_secrets(secrets.tx.0, &secrets.tx.1).map_err(|e| anyhow!(e))?;
    let rx = CryptoInfo::from_secrets(secrets.rx.0, &secrets.rx.1).map_err(|e| anyhow!(e))?;
    if let Err(errno) = ktls::install_rx(socket, &rx) {
        return Ok(Some(format!(
            "kernel TLS not used: setsockopt(SOL_TLS, TLS_RX) refused the receive keys ({errno:?})"
        )));
    }
    // With the receive keys in, a refusal here cannot fall back: the kernel already opens
    // what arrives.
    ktls::install_tx(socket, &tx).map_err(|e| {
        anyhow::Error::from(e).context("installing the TLS transmit keys in the kernel")
    })?;
    Ok(None)
}

/// The connecting end reads the accepting end's plaintext greeting: it must say ENCRYPT.
fn expect_preface(deadline: &mut Deadline, them: Role) -> anyhow::Result<()> {
    let them = them.name();
    let hello = protocol::read_hello(deadline).map_err(|e| {
        super::peer::read_failure(e, &format!("the {them}'s greeting"), Some(HANDSHAKE_TIMEOUT))
    })?;
    if hello.encrypts() {
        return Ok(());
    }
    Err(SessionError::Encryption(format!(
        "the {them} does not use --encrypt: use it on both ends, or on neither"
    ))
    .into())
}

/// The accepting end looks at the first byte without taking it: a TLS handshake record, or a
/// plaintext zcp greeting (whose sender has read our ENCRYPT greeting and stops by itself).
fn expect_client_hello(socket: &TcpStream, them: Role, within: Duration) -> anyhow::Result<()> {
    let mut first = [0u8; 1];
    socket.set_read_timeout(Some(within)).context("setting the read timeout")?;
    let n = socket.peek(&mut first).context("waiting for the TLS handshake")?;
    match (n, first[0]) {
        (0, _) => Err(ProtocolError::Closed.into()),
        (_, TLS_HANDSHAKE) => Ok(()),
        (_, b) if b == MAGIC[0] => Err(SessionError::Encryption(format!(
            "the {} does not use --encrypt: use it on both ends, or on neither",
            them.name()
        ))
        .into()),
        _ => Err(ProtocolError::NotZcpPeer.into()),
    }
}

/// Runs the TLS handshake to its end, reading one record at a time so that nothing after it
/// is taken from the socket (the kernel, when it takes over, must see the next record first).
fn handshake(
    conn: &mut Connection,
    socket: &mut TcpStream,
    deadline: &mut Deadline,
) -> anyhow::Result<()> {
    while conn.is_handshaking() {
        let record = read_record(deadline)?;
        let mut rest = &record[..];
        while !rest.is_empty() {
            conn.read_tls(&mut rest).context("reading the TLS handshake")?;
        }
        if let Err(e) = conn.process_new_packets() {
            // rustls queued an alert saying why; the peer should learn it.
            let _ = write_pending(conn, socket);
            return Err(SessionError::Encryption(format!("the TLS handshake failed: {e}")).into());
        }
        write_pending(conn, socket)?;
    }
    Ok(())
}

/// One whole TLS record: the 5-byte header, then the length it gives.
fn read_record(deadline: &mut Deadline) -> anyhow::Result<Vec<u8>> {
    let mut record = vec![0u8; 5];
    deadline.read_exact(&mut record).context("reading the TLS handshake")?;
    let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
    if len > MAX_RECORD {
        return Err(ProtocolError::Malformed(format!("a TLS record of {len} bytes")).into());
    }
    record.resize(5 + len, 0);
    deadline.read_exact(&mut record[5..]).context("reading the TLS handshake")?;
    Ok(record)
}

/// Writes whatever TLS bytes rustls has queued.
fn write_pending(conn: &mut Connection, socket: &mut TcpStream) -> anyhow::Result<()> {
    while conn.wants_write() {
        conn.write_tls(socket).context("sending the TLS handshake")?;
    }
    Ok(())
}

/// ring's TLS 1.3 suites, AES-128-GCM first: with AES-NI it is the fastest, and the client's
/// order decides.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    let make = || {
        use rustls::crypto::ring::{cipher_suite, default_provider};
        let cipher_suites = vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ];
        Arc::new(CryptoProvider { cipher_suites, ..default_provider() })
    };
    PROVIDER.get_or_init(make).clone()
}

/// The client's configuration: TLS 1.3 only, no resumption, any server key whose signature
/// checks (the token decides who the server is), secrets extractable for kTLS.
fn client_config() -> anyhow::Result<Arc<ClientConfig>> {
    let provider = provider();
    let verifier = TokenDecides(provider.signature_verification_algorithms);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("configuring TLS")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_secret_extraction = true;
    Ok(Arc::new(config))
}

/// The server's configuration, made once per process with a fresh Ed25519 key: TLS 1.3 only,
/// no session tickets (a kTLS receiver could not read them), secrets extractable.
fn server_config() -> anyhow::Result<Arc<ServerConfig>> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let provider = provider();
    let key = Arc::new(ephemeral_key(&provider)?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("configuring TLS")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Ephemeral(key)));
    config.send_tls13_tickets = 0;
    config.enable_secret_extraction = true;
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// A fresh Ed25519 key. Its "certificate" is the bare SubjectPublicKeyInfo: no authority
/// signs anything here, and the client reads the key from it to check the handshake signature.
fn ephemeral_key(provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow!("making a TLS key"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow!("making a TLS key"))?;
    let spki = [&ED25519_SPKI[..], pair.public_key().as_ref()].concat();
    let der = PrivateKeyDer::Pkcs8(pkcs8.as_ref().to_vec().into());
    let signer = provider.key_provider.load_private_key(der).context("loading the TLS key")?;
    Ok(CertifiedKey::new(vec![CertificateDer::from(spki)], signer))
}

/// The server's one key, whatever the client asks for.
#[derive(Debug)]
struct Ephemeral(Arc<CertifiedKey>);

impl ResolvesServerCert for Ephemeral {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The client's view of the server's key: any key is acceptable, provided the handshake is
/// signed by it. Who holds it is settled by the token proofs over the exporter.
#[derive(Debug)]
struct TokenDecides(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for TokenDecides {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = SubjectPublicKeyInfoDer::from(cert.as_ref());
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::super::records::{APPLICATION_DATA, HEADER, MAX_RECORD, Opener, Sealer};
    use super::*;

    /// A client and a server of zcp's configurations, handshaken in memory.
    fn handshaken() -> (rustls::ClientConnection, rustls::ServerConnection) {
        let name = ServerName::try_from("zcp").unwrap();
        let mut client = rustls::ClientConnection::new(client_config().unwrap(), name).unwrap();
        let mut server = rustls::ServerConnection::new(server_config().unwrap()).unwrap();
        while client.is_handshaking() || server.is_handshaking() {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            bytes.clear();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        (client, server)
    }

    /// A failure of the encrypted stream is the cause of what the session saw: the session's
    /// error reads first, the TLS reason after it, the exit code is the encryption one, and the
    /// session's own error, whole, stays reachable.
    #[test]
    fn a_broken_stream_is_the_typed_cause_of_the_session_error() {
        let seen = anyhow::anyhow!("connection reset by peer").context("receiving data.bin");
        let why = "a TLS record did not authenticate".to_string();
        let err = anyhow::Error::from(Broken { seen, cause: SessionError::Encryption(why) })
            .context("receiving from 127.0.0.1:9");
        assert_eq!(
            format!("{err:#}"),
            "receiving from 127.0.0.1:9: receiving data.bin: a TLS record did not authenticate"
        );
        assert_eq!(crate::error::exit_code(&err), crate::error::ExitCode::Encryption);
        let broken = err.downcast_ref::<Broken>().expect("the typed error");
        assert_eq!(format!("{:#}", broken.seen), "receiving data.bin: connection reset by peer");
    }

    #[test]
    fn both_ends_agree_on_the_exporter_and_tls_1_3_with_aes_128_gcm_first() {
        let (client, server) = handshaken();
        let (mut a, mut b) = ([0u8; BINDING_LEN], [0u8; BINDING_LEN]);
        client.export_keying_material(&mut a, EXPORTER_LABEL, None).unwrap();
        server.export_keying_material(&mut b, EXPORTER_LABEL, None).unwrap();
        assert_eq!(a, b);
        assert_eq!(client.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
        let suite = client.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(format!("{suite:?}"), "TLS13_AES_128_GCM_SHA256");
        // A second handshake (another connection) gets another exporter.
        let (other, _) = handshaken();
        let mut c = [0u8; BINDING_LEN];
        other.export_keying_material(&mut c, EXPORTER_LABEL, None).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn our_records_and_rustls_records_are_the_same_tls() {
        let (client, mut server) = handshaken();
        let secrets = client.dangerous_extract_secrets().unwrap();
        // Ours to rustls.
        let mut sealer = Sealer::new(secrets.tx.0, &secrets.tx.1).unwrap();
        let mut slot = vec![0u8; MAX_RECORD];
        slot[HEADER..HEADER + 5].copy_from_slice(b"hello");
        let len = sealer.seal(&mut slot, 5, APPLICATION_DATA).unwrap();
        server.read_tls(&mut &slot[..len]).unwrap();
        server.process_new_packets().unwrap();
        let mut got = [0u8; 5];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // rustls to ours.
        server.writer().write_all(b"world").unwrap();
        let mut wire = Vec::new();
        server.write_tls(&mut wire).unwrap();
        let mut opener = Opener::new(secrets.rx.0, &secrets.rx.1).unwrap();
        let opened = opener.open(&mut wire).unwrap().unwrap();
        assert_eq!(&wire[opened.plain], b"world");
    }
}
