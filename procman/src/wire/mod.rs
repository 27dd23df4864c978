//! Framing, messages, sealing and the limits of what a peer may send.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes of postcard. The length
//! is checked against the connection's limit before anything is allocated, so a peer cannot make
//! the other side reserve memory by announcing a huge frame. Every decode of bytes from a peer
//! is bounded in depth, so a deeply nested value cannot overflow the decoding thread's stack.
//!
//! | file | what |
//! | --- | --- |
//! | `message.rs` | the requests and replies of the manager protocol |
//! | `frames.rs` | [`FrameReader`](frames::FrameReader), [`FrameWriter`](frames::FrameWriter): a connection's frames, sealed or plain, with a deadline for a frame that has begun |
//! | `sealed.rs` | AES-256-GCM sealing of frames with per-direction keys and counters |
//! | `depth.rs` | the decoding depth limit, a wrapper around postcard's deserializer |

pub(crate) mod depth;
pub(crate) mod frames;
pub(crate) mod message;
pub(crate) mod sealed;

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use std::io::{self, Read};

pub use depth::DEFAULT_MAX_DECODE_DEPTH;
pub(crate) use depth::take;
pub(crate) use frames::fuzz_sealed_frames;

/// The default largest frame a connection accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;

pub(crate) fn encode<T: ?Sized + Serialize>(value: &T, what: impl Display) -> Result<Vec<u8>> {
    // Room for most results at once, rather than growing from nothing.
    let mut out = Vec::with_capacity(SMALL);
    encode_into(value, &mut out, what)?;
    Ok(out)
}

/// What an encoding buffer starts with: most results and argument lists fit.
pub(crate) const SMALL: usize = 32;

/// Appends the encoding of `value` to `out`. On an error, `out` holds what was encoded before
/// it and possibly part of `value`.
pub(crate) fn encode_into<T: ?Sized + Serialize>(value: &T, out: &mut Vec<u8>, what: impl Display) -> Result<()> {
    postcard::serialize_with_flavor(value, Append(out)).map_err(|e| Error::encode(what, e))
}

/// postcard's output into a vector that may hold bytes already: a byte pushed, a slice copied
/// in one go (postcard's own `Extend` flavor goes through iterators).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes a `T` from the front of `bytes`, no deeper than this thread's depth limit.
/// Decodes a whole `T`: bytes left over are an error (another type was encoded), as for requests.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: impl Display) -> Result<T> {
    match take(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => {
            Err(Error::decode(what, format_args!("{} bytes left over (another type was encoded)", rest.len())))
        }
        Err(e) => Err(Error::decode(what, e)),
    }
}

/// Encodes `msg` as a whole frame (length prefix included) into `buf`, replacing its contents.
pub(crate) fn frame<T: ?Sized + Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    encode_into(msg, buf, "a message")?;
    let len = u32::try_from(buf.len() - 4)
        .map_err(|_| Error::FrameTooLarge { size: buf.len() as u64, limit: u32::MAX as u64 })?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Reads one frame's body into `buf`. `Ok(false)` is a clean end of stream before a frame.
pub(crate) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a frame header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge { size: len as u64, limit: limit as u64 },
        ));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf)?;
    Ok(true)
}

/// The payload of the `InvalidData` error that [`read_frame`] returns for an oversized frame.
#[derive(Debug)]
pub(crate) struct FrameTooLarge {
    pub(crate) size: u64,
    pub(crate) limit: u64,
}

impl Display for FrameTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "frame of {} bytes exceeds the limit of {} bytes", self.size, self.limit)
    }
}

impl std::error::Error for FrameTooLarge {}

/// Bytes that serialize as one byte string (postcard: a length and the bytes), not a sequence
/// of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_frames_are_refused_before_allocation() {
        let mut buf = Vec::new();
        frame(&("hello", 7u32), &mut buf).unwrap();
        let mut body = Vec::new();
        assert!(read_frame(&mut &buf[..], &mut body, 1024).unwrap());
        let (s, n): (String, u32) = decode(&body, "test").unwrap();
        assert_eq!((s.as_str(), n), ("hello", 7));

        let huge = (u32::MAX).to_le_bytes();
        let err = read_frame(&mut &huge[..], &mut body, 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(body.capacity() < 1 << 20, "no allocation for a refused frame");
        assert!(err.to_string().contains("exceeds the limit of 1024 bytes"));
    }

    #[test]
    fn truncated_frames_are_errors_and_empty_streams_are_a_clean_end() {
        let mut body = Vec::new();
        assert!(!read_frame(&mut &[][..], &mut body, 1024).unwrap());
        assert!(read_frame(&mut &[5, 0][..], &mut body, 1024).is_err());
        assert!(read_frame(&mut &[5, 0, 0, 0, 1, 2][..], &mut body, 1024).is_err());
    }

    #[test]
    fn bytes_encode_as_a_byte_string() {
        let enc = encode(&Bytes(&[1, 2, 3]), "t").unwrap();
        assert_eq!(enc, vec![3, 1, 2, 3]);
        let back: Bytes<'_> = postcard::from_bytes(&enc).unwrap();
        assert_eq!(back.0, &[1, 2, 3]);
    }
}
