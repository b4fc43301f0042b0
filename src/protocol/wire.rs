//! Big-endian primitives for frame payloads: an `Encoder` that appends to a buffer and a `Decoder`
//! that reads from a received payload and fails (never panics) on truncation.

use super::ProtocolError;

/// Appends big-endian integers and length-prefixed byte strings to a payload buffer. One small
/// method per field type of the spec (hence more than ten): the messages read as field lists.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty payload.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder whose buffer starts with `header` zero bytes, to be filled in later: a frame
    /// is built in place, its payload never copied behind its header.
    pub fn after_header(header: usize) -> Self {
        Encoder { buf: vec![0; header] }
    }

    /// Makes room for `more` bytes at once: a list of a million items grows in one step.
    pub fn reserve(&mut self, more: usize) -> &mut Self {
        self.buf.reserve(more);
        self
    }

    /// The payload built so far.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `i32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A byte string of at most `u16::MAX` bytes behind its `u16` length; longer input is cut
    /// at a UTF-8 boundary by the callers that pass text (see `text`).
    pub fn bytes16(&mut self, v: &[u8]) -> &mut Self {
        let len = v.len().min(u16::MAX as usize);
        self.u16(len as u16).raw(&v[..len])
    }

    /// UTF-8 text behind its `u16` length, cut to `max` bytes at a character boundary.
    pub fn text(&mut self, v: &str, max: usize) -> &mut Self {
        let mut end = v.len().min(max).min(u16::MAX as usize);
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes16(&v.as_bytes()[..end])
    }
}

/// Reads big-endian fields from a payload; every getter fails with `Malformed` when the payload
/// is shorter than the field. Like `Encoder`, one method per field type of the spec.
pub struct Decoder<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Decoder<'a> {
    /// Reads `buf`, the payload of a `what` frame (named in errors).
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Malformed(format!("{} frame ends early", self.what)));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    /// The next big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// The next big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// The next big-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// The next big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, ProtocolError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// The next big-endian `i64`.
    pub fn i64(&mut self) -> Result<i64, ProtocolError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// The next big-endian `u128`.
    pub fn u128(&mut self) -> Result<u128, ProtocolError> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    /// The next `u16`-length-prefixed byte string.
    pub fn bytes16(&mut self) -> Result<&'a [u8], ProtocolError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// Text from the peer; invalid UTF-8 is replaced rather than refused, since it is only shown.
    pub fn text(&mut self) -> Result<String, ProtocolError> {
        Ok(String::from_utf8_lossy(self.bytes16()?).into_owned())
    }

    /// Fails when bytes are left over: a frame must be exactly as long as its fields.
    pub fn finish(self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed(format!(
                "{} frame has {} trailing bytes",
                self.what,
                self.buf.len()
            )))
        }
    }
}
