//! Kernel TLS (Linux's `tls` TCP upper-layer protocol): what `setsockopt(SOL_TLS, TLS_TX /
//! TLS_RX)` takes for a TLS 1.3 connection whose handshake rustls finished, and installing it,
//! so that `sendfile` and `splice` keep working on the encrypted socket (the kernel seals each
//! record while it copies). Where the kernel has no kTLS, `attach` fails with its errno and the
//! caller falls back to user-space TLS. No TLS logic lives here: the handshake is `tls`'s.

use std::net::TcpStream;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use rustls::ConnectionTrafficSecrets;

/// `SOL_TLS` (linux/socket.h).
const SOL_TLS: libc::c_int = 282;
/// `TCP_ULP` (linux/tcp.h): attaches an upper-layer protocol by name.
const TCP_ULP: libc::c_int = 31;
/// `TLS_TX` / `TLS_RX` (linux/tls.h): the direction a `tls12_crypto_info_*` is for.
const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;
/// `TLS_1_3_VERSION` (linux/tls.h): `TLS_VERSION_NUMBER(TLS_1_3)`, major 3 minor 4.
const TLS_1_3_VERSION: u16 = 0x0304;

/// The AEADs of TLS 1.3 that both rustls and the kernel offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// TLS_AES_128_GCM_SHA256.
    Aes128Gcm,
    /// TLS_AES_256_GCM_SHA384.
    Aes256Gcm,
    /// TLS_CHACHA20_POLY1305_SHA256.
    Chacha20Poly1305,
}

impl Cipher {
    /// Every cipher, for `zcp doctor`.
    pub const ALL: [Cipher; 3] = [Cipher::Aes128Gcm, Cipher::Aes256Gcm, Cipher::Chacha20Poly1305];

    /// `TLS_CIPHER_*` (linux/tls.h).
    fn kernel_id(self) -> u16 {
        match self {
            Cipher::Aes128Gcm => 51,
            Cipher::Aes256Gcm => 52,
            Cipher::Chacha20Poly1305 => 54,
        }
    }

    /// Key length, and how the 12-byte TLS 1.3 IV is split: the kernel's AES-GCM structs take
    /// a 4-byte `salt` and an 8-byte `iv`; ChaCha20-Poly1305's takes all 12 bytes as `iv`.
    fn layout(self) -> (usize, usize) {
        match self {
            Cipher::Aes128Gcm => (16, 4),
            Cipher::Aes256Gcm => (32, 4),
            Cipher::Chacha20Poly1305 => (32, 0),
        }
    }

    /// The name `zcp doctor` prints.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }
}

/// One direction's keys as the kernel takes them: the bytes of a `tls12_crypto_info_aes_gcm_128`,
/// `_aes_gcm_256` or `_chacha20_poly1305` (the names say TLS 1.2; `version` says 1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoInfo(Vec<u8>);

impl CryptoInfo {
    /// The struct for `cipher` with `key`, the 12-byte TLS 1.3 `iv` and the sequence number of
    /// the next record (`seq`). Layout, in order: `u16 version`, `u16 cipher_type` (host byte
    /// order), `iv` (8 bytes, or 12 for ChaCha), `key`, `salt` (the IV's first 4 bytes for
    /// AES-GCM, none for ChaCha), `rec_seq` (8 bytes, big-endian, as on the wire).
    pub fn new(cipher: Cipher, key: &[u8], iv: &[u8], seq: u64) -> Result<CryptoInfo, String> {
        let (key_len, salt_len) = cipher.layout();
        if key.len() != key_len || iv.len() != 12 {
            return Err(format!(
                "{} takes a {key_len}-byte key and a 12-byte IV, got {} and {}",
                cipher.name(),
                key.len(),
                iv.len()
            ));
        }
        let (salt, iv) = iv.split_at(salt_len);
        let mut bytes = Vec::with_capacity(4 + iv.len() + key.len() + salt.len() + 8);
        bytes.extend(TLS_1_3_VERSION.to_ne_bytes());
        bytes.extend(cipher.kernel_id().to_ne_bytes());
        bytes.extend(iv);
        bytes.extend(key);
        bytes.extend(salt);
        bytes.extend(seq.to_be_bytes());
        Ok(CryptoInfo(bytes))
    }

    /// The struct for one direction of a finished rustls connection.
    pub fn from_secrets(seq: u64, secrets: &ConnectionTrafficSecrets) -> Result<Self, String> {
        match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                CryptoInfo::new(Cipher::Aes128Gcm, key.as_ref(), iv.as_ref(), seq)
            }
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                CryptoInfo::new(Cipher::Aes256Gcm, key.as_ref(), iv.as_ref(), seq)
            }
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                CryptoInfo::new(Cipher::Chacha20Poly1305, key.as_ref(), iv.as_ref(), seq)
            }
            _ => Err("a cipher the kernel does not take".into()),
        }
    }

    /// The bytes handed to `setsockopt`.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Attaches the `tls` upper-layer protocol to `socket` (`setsockopt(TCP_ULP, "tls")`). Until
/// keys are installed the socket still carries plain bytes, so a failure here, or later in
/// `install`, leaves it usable for user-space TLS. `ENOENT`: the kernel has no kTLS module.
pub fn attach(socket: &TcpStream) -> Result<(), Errno> {
    setsockopt(socket, libc::IPPROTO_TCP, TCP_ULP, b"tls")
}

/// Hands the receive keys to the kernel: from here on it opens what is read from `socket`.
/// The one to install first: kernels before 4.17 have no `TLS_RX`, and a cipher the kernel
/// lacks fails here too, and either leaves nothing installed.
pub fn install_rx(socket: &TcpStream, rx: &CryptoInfo) -> Result<(), Errno> {
    setsockopt(socket, SOL_TLS, TLS_RX, rx.bytes())
}

/// Hands the transmit keys to the kernel: from here on it seals what is written to `socket`.
pub fn install_tx(socket: &TcpStream, tx: &CryptoInfo) -> Result<(), Errno> {
    setsockopt(socket, SOL_TLS, TLS_TX, tx.bytes())
}

fn setsockopt(
    socket: &TcpStream,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> Result<(), Errno> {
    let len = libc::socklen_t::try_from(value.len()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the pointer and length describe `value`, which outlives the call; the kernel
    // only reads it.
    let rc =
        unsafe { libc::setsockopt(socket.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// What `zcp doctor` says about kTLS: attached on a loopback socket, then each cipher's
/// transmit keys (throwaway ones) offered to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// The kernel took the `tls` protocol; these ciphers' keys it accepted.
    Available(Vec<Cipher>),
    /// `TCP_ULP "tls"` failed with this errno.
    Missing(Errno),
}

/// Probes kTLS on `socket`, a connected TCP socket used for nothing else.
pub fn probe(socket: &TcpStream) -> Support {
    if let Err(e) = attach(socket) {
        return Support::Missing(e);
    }
    let ciphers = Cipher::ALL.into_iter().filter(|&c| {
        let key = vec![0x42; c.layout().0];
        CryptoInfo::new(c, &key, &[7; 12], 0)
            .is_ok_and(|info| setsockopt(socket, SOL_TLS, TLS_TX, info.bytes()).is_ok())
    });
    Support::Available(ciphers.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IV: [u8; 12] = [0xa0, 0xa1, 0xa2, 0xa3, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7];

    fn key(len: u8) -> Vec<u8> {
        (0..len).collect()
    }

    /// The header: version 0x0304 and the cipher id, each a host-order u16.
    fn header(cipher: u16) -> Vec<u8> {
        [0x0304u16.to_ne_bytes(), cipher.to_ne_bytes()].concat()
    }

    #[test]
    fn aes_128_gcm_splits_the_iv_into_salt_and_iv() {
        let info = CryptoInfo::new(Cipher::Aes128Gcm, &key(16), &IV, 1).unwrap();
        // sizeof(struct tls12_crypto_info_aes_gcm_128) is 40.
        assert_eq!(info.bytes().len(), 40);
        let mut want = header(51);
        want.extend([0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7]); // iv: IV[4..12]
        want.extend(key(16));
        want.extend([0xa0, 0xa1, 0xa2, 0xa3]); // salt: IV[0..4]
        want.extend([0, 0, 0, 0, 0, 0, 0, 1]); // rec_seq, big-endian
        assert_eq!(info.bytes(), &want[..]);
    }

    #[test]
    fn aes_256_gcm_has_a_32_byte_key() {
        let seq = 0x0102_0304_0506_0708;
        let info = CryptoInfo::new(Cipher::Aes256Gcm, &key(32), &IV, seq).unwrap();
        // sizeof(struct tls12_crypto_info_aes_gcm_256) is 56.
        assert_eq!(info.bytes().len(), 56);
        assert_eq!(&info.bytes()[..4], &header(52)[..]);
        assert_eq!(&info.bytes()[4..12], &IV[4..]);
        assert_eq!(&info.bytes()[12..44], &key(32)[..]);
        assert_eq!(&info.bytes()[44..48], &IV[..4]);
        assert_eq!(&info.bytes()[48..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn chacha20_poly1305_takes_the_whole_iv_and_no_salt() {
        let info = CryptoInfo::new(Cipher::Chacha20Poly1305, &key(32), &IV, 0).unwrap();
        // sizeof(struct tls12_crypto_info_chacha20_poly1305) is 56.
        assert_eq!(info.bytes().len(), 56);
        assert_eq!(&info.bytes()[..4], &header(54)[..]);
        assert_eq!(&info.bytes()[4..16], &IV[..]);
        assert_eq!(&info.bytes()[16..48], &key(32)[..]);
        assert_eq!(&info.bytes()[48..], &[0; 8]);
    }

    #[test]
    fn secrets_from_rustls_map_to_the_same_structs() {
        let mut k = [0u8; 32];
        k.copy_from_slice(&key(32));
        let secrets = ConnectionTrafficSecrets::Aes256Gcm {
            key: rustls::crypto::cipher::AeadKey::from(k),
            iv: rustls::crypto::cipher::Iv::from(IV),
        };
        let ours = CryptoInfo::new(Cipher::Aes256Gcm, &key(32), &IV, 9).unwrap();
        assert_eq!(CryptoInfo::from_secrets(9, &secrets).unwrap(), ours);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(CryptoInfo::new(Cipher::Aes128Gcm, &key(32), &IV, 0).is_err());
        assert!(CryptoInfo::new(Cipher::Chacha20Poly1305, &key(32), &IV[..8], 0).is_err());
    }
}
