//! The two halves of a connection's frames: [`FrameReader`] and [`FrameWriter`], sealed when
//! the handshake made the session sealed (see `sealed.rs`), plain otherwise.
//!
//! A reader may wait for a frame to begin as long as the connection stays open, but a frame
//! that has begun must arrive whole by a deadline (`frame_timeout`, or the deadline given for
//! that frame): a peer that sends one byte now and then cannot hold a connection thread by
//! keeping a frame open. The deadline costs nothing on the fast path: the socket's timeout is
//! changed only when a frame is not already whole in the read buffer (on a shared-memory
//! channel, in its ring).
//!
//! The bytes of a call (a `Vec<u8>` argument echoed back, on a plain session) are copied twice
//! in user space: out of the server's frame into the `Vec` the method takes, and out of the
//! client's frame into the `Vec` the caller gets. A blocking call's last argument of bytes is
//! written into the frame from the caller's own buffer (the arguments before it are encoded
//! into `ArgsBuf`), and a method's `Vec<u8>` result of 256 bytes or more from the vector the
//! method returned (its length encoded before it; `CallCx::encode_bytes`): the parts of a frame
//! go out from where they lie ([`FrameWriter::send_with_tails`]). Other arguments and results
//! are encoded first (one copy more; an async call encodes its arguments whole), and a result
//! is decoded in the reply's frame. A sealed session copies each part into the frame buffer as
//! well, to seal the frame whole.
//!
//! On the same-host fast path the frame itself is copied twice more, into the ring and out of
//! it: a stream in memory (see [`Medium`]) is read straight into the frame's body, with no
//! read-ahead buffer between, and written from where the frame's parts lie whatever their
//! size. The body keeps the bytes of earlier frames, so a frame no larger than one before it
//! costs no zeroing.

use super::sealed::{NotOpened, Opener, Sealer, TAG};
use super::{FrameTooLarge, frame};
use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// A byte source whose blocking reads can be bounded: a socket, or bytes in memory.
pub(crate) trait Timed: Read + Medium {
    /// Bounds each later blocking read by `timeout` (`None`: no bound).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// What a read or a write of a stream costs: a system call (a socket: the default), or a copy
/// (a shared-memory channel). It decides whether buffering pays: a [`FrameReader`] on a
/// stream in memory reads each frame straight into its body, with no read-ahead buffer to copy
/// it through, and a [`FrameWriter`] sends every tail from where it lies.
pub(crate) trait Medium {
    /// True when reads and writes are copies in memory, with no system call.
    fn in_memory(&self) -> bool {
        false
    }

    /// Whether a read can take `n` bytes without waiting, for a stream in memory (false when
    /// unknown).
    fn has_available(&self, _n: usize) -> bool {
        false
    }
}

impl Timed for &[u8] {
    fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

impl Medium for &[u8] {}

impl Medium for Vec<u8> {}

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection broke, or closed inside a frame.
    Io(io::Error),
    /// The frame announced more bytes than the limit; nothing was allocated for it.
    TooLarge(FrameTooLarge),
    /// A frame that had begun was not whole by its deadline.
    Deadline,
    /// A sealed frame did not open.
    NotOpened(NotOpened),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::TooLarge(t) => t.fmt(f),
            ReadError::Deadline => f.write_str("a frame that had begun did not arrive whole by its deadline"),
            ReadError::NotOpened(n) => n.fmt(f),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReadError::Deadline,
            _ => ReadError::Io(e),
        }
    }
}

/// Reads the frames of one connection.
#[derive(Debug)]
pub(crate) struct FrameReader<S> {
    inner: BufReader<S>,
    open: Option<Opener>,
    limit: usize,
    frame_timeout: Option<Duration>,
    /// The socket's timeout between frames, restored after a frame read under a deadline.
    idle_timeout: Option<Duration>,
    /// The body of the frame read last is `body[..len]`; the bytes after it were read (or
    /// zeroed) for larger frames before, so a frame zeroes only what no frame used before.
    body: Vec<u8>,
    len: usize,
    /// Frames are read straight from the stream, not through the buffer (see [`Medium`]).
    direct: bool,
}

impl<S: Timed> FrameReader<S> {
    /// A reader of frames of at most `limit` bytes, opened with `open` when the session is sealed.
    pub(crate) fn new(inner: S, open: Option<Opener>, limit: usize) -> Self {
        let direct = inner.in_memory();
        FrameReader {
            inner: BufReader::with_capacity(if direct { 0 } else { 64 * 1024 }, inner),
            open,
            limit,
            frame_timeout: None,
            idle_timeout: None,
            body: Vec::with_capacity(256),
            len: 0,
            direct,
        }
    }

    /// Every frame must arrive whole within `timeout` of its first byte.
    pub(crate) fn with_frame_timeout(mut self, timeout: Duration) -> Self {
        self.frame_timeout = Some(timeout);
        self
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Bounds the wait for a frame to begin (`None`: wait as long as the connection is open).
    pub(crate) fn set_idle_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.idle_timeout = timeout;
        self.inner.get_ref().set_read_timeout(timeout)
    }

    pub(crate) fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// Bytes read from the stream and not yet part of a frame.
    pub(crate) fn buffered(&self) -> usize {
        self.inner.buffer().len()
    }

    /// The body of the frame read last.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body[..self.len]
    }

    /// Takes the buffer that holds the body of the frame read last (its first `len` bytes,
    /// returned beside it), to keep the frame past the next read without copying it;
    /// [`give_back`](Self::give_back) returns it for the next frames.
    pub(crate) fn take_body(&mut self) -> (Vec<u8>, usize) {
        let len = std::mem::replace(&mut self.len, 0);
        (std::mem::take(&mut self.body), len)
    }

    /// Returns a buffer that [`take_body`](Self::take_body) took, when it is larger than the
    /// one the reader holds now.
    pub(crate) fn give_back(&mut self, body: Vec<u8>) {
        if body.capacity() > self.body.capacity() {
            self.body = body;
        }
    }

    /// Reads the next frame; its body is then [`body`](Self::body). `Ok(false)` is a clean end
    /// of the stream before a frame. With `by`, the whole frame, its first byte included, must
    /// arrive by then; without it, the frame timeout runs from its first byte.
    pub(crate) fn read(&mut self, by: Option<Instant>) -> std::result::Result<bool, ReadError> {
        let mut deadline = Deadline { at: by, armed: false, pending: None };
        let r = self.read_frame(&mut deadline);
        if deadline.armed {
            let restored = self.inner.get_ref().set_read_timeout(self.idle_timeout);
            if r.is_ok() {
                restored?;
            }
        }
        r
    }

    fn read_frame(&mut self, deadline: &mut Deadline) -> std::result::Result<bool, ReadError> {
        self.len = 0;
        if deadline.at.is_some() {
            deadline.arm(self.inner.get_ref())?;
        }
        let mut header = [0u8; 4];
        // The first byte: the wait for it is the wait between frames.
        let first = if self.direct {
            loop {
                match self.inner.get_mut().read(&mut header) {
                    Ok(0) => return Ok(false),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        } else if self.inner.fill_buf()?.is_empty() {
            return Ok(false);
        } else {
            0
        };
        // The frame timeout runs from its first byte; it is set when a read must wait, so a
        // frame already here costs no look at the clock.
        deadline.pending = if deadline.at.is_none() { self.frame_timeout } else { None };
        self.read_exact_by(&mut header[first..], deadline)?;
        let len = u32::from_le_bytes(header) as usize;
        if len > self.limit {
            return Err(ReadError::TooLarge(FrameTooLarge { size: len as u64, limit: self.limit as u64 }));
        }
        let sealed = len + if self.open.is_some() { TAG } else { 0 };
        let mut body = std::mem::take(&mut self.body);
        if body.len() < sealed {
            body.resize(sealed, 0);
        }
        let r = self.read_exact_by(&mut body[..sealed], deadline);
        self.body = body;
        r?;
        self.len = sealed;
        if let Some(open) = &mut self.open {
            self.body.truncate(sealed);
            self.len = 0;
            open.open(&header, &mut self.body).map_err(ReadError::NotOpened)?;
            self.len = self.body.len();
        }
        Ok(true)
    }

    /// `read_exact`, where every read that must wait for the socket waits only until the
    /// deadline.
    fn read_exact_by(&mut self, mut buf: &mut [u8], deadline: &mut Deadline) -> std::result::Result<(), ReadError> {
        while !buf.is_empty() {
            let must_wait = if self.direct {
                !self.inner.get_ref().has_available(buf.len())
            } else {
                self.inner.buffer().is_empty()
            };
            if must_wait {
                if let Some(t) = deadline.pending.take() {
                    deadline.at = Some(Instant::now() + t);
                }
                if deadline.at.is_some() {
                    deadline.arm(self.inner.get_ref())?;
                }
            }
            let read = if self.direct { self.inner.get_mut().read(buf) } else { self.inner.read(buf) };
            match read {
                Ok(0) => {
                    return Err(ReadError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame",
                    )));
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The deadline of one frame, and whether the socket's timeout was changed for it.
struct Deadline {
    at: Option<Instant>,
    armed: bool,
    /// The frame timeout, not yet started.
    pending: Option<Duration>,
}

impl Deadline {
    /// Bounds the next blocking read by the time left, or fails when none is.
    fn arm(&mut self, s: &impl Timed) -> std::result::Result<(), ReadError> {
        let Some(at) = self.at else { return Ok(()) };
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Deadline);
        }
        self.armed = true;
        s.set_read_timeout(Some(left))?;
        Ok(())
    }
}

/// Writes the frames of one connection.
#[derive(Debug)]
pub(crate) struct FrameWriter<S> {
    inner: S,
    seal: Option<Sealer>,
    buf: Vec<u8>,
}

impl<S: Write + Medium> FrameWriter<S> {
    /// A writer of frames, sealed with `seal` when the session is sealed.
    pub(crate) fn new(inner: S, seal: Option<Sealer>) -> Self {
        FrameWriter { inner, seal, buf: Vec::with_capacity(256) }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Encodes `msg` as the next frame, not sent yet; returns the size of its body, for a
    /// limit the caller checks before [`send`](Self::send).
    pub(crate) fn encode<T: ?Sized + Serialize>(&mut self, msg: &T) -> Result<usize> {
        frame(msg, &mut self.buf)?;
        Ok(self.buf.len() - 4)
    }

    /// Encodes a frame whose message is `head` followed by `tail_len` bytes that
    /// [`send_with_tails`](Self::send_with_tails) sends: `head` is the message's encoding up to a
    /// byte string that ends it, its length included. Returns the size of the frame's body.
    pub(crate) fn encode_with_tail<T: ?Sized + Serialize>(&mut self, head: &T, tail_len: usize) -> Result<usize> {
        frame_with_tail(head, tail_len, &mut self.buf)?;
        Ok(self.buf.len() - 4 + tail_len)
    }

    /// Sends the frame [`encode_with_tail`](Self::encode_with_tail) made, ending with its tail
    /// in two parts, `a` then `b`. A large tail on a plain session is written from where its
    /// parts lie (vectored writes), not copied into the frame buffer; a sealed frame is sealed
    /// whole, so its tail is copied.
    pub(crate) fn send_with_tails(&mut self, a: &[u8], b: &[u8]) -> io::Result<()> {
        if self.seal.is_some() || (a.len() + b.len() < VECTORED_TAIL && !self.inner.in_memory()) {
            self.buf.extend_from_slice(a);
            self.buf.extend_from_slice(b);
            return self.send();
        }
        write_all_parts(&mut self.inner, [&self.buf, a, b])
    }

    /// Seals (if the session is sealed) and sends the frame [`encode`](Self::encode) made.
    pub(crate) fn send(&mut self) -> io::Result<()> {
        if let Some(seal) = &mut self.seal {
            seal.seal(&mut self.buf).map_err(io::Error::other)?;
        }
        self.inner.write_all(&self.buf)
    }

    /// Encodes and sends `msg`.
    #[cfg(test)]
    pub(crate) fn write<T: ?Sized + Serialize>(&mut self, msg: &T) -> Result<()> {
        self.encode(msg)?;
        self.send().map_err(|e| crate::error::Error::io("sending a frame", e))
    }

    /// Sends bytes that should be frames, for fault-injection tests: unsealed, as they are; on
    /// a sealed session, each whole frame in them is sealed, and a partial frame at their end
    /// (a header alone, or a header and part of its body) is sent as it is.
    pub(crate) fn send_raw(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.seal.is_none() {
            return self.inner.write_all(bytes);
        }
        while bytes.len() >= 4 {
            let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
            if bytes.len() - 4 < len {
                break;
            }
            self.buf.clear();
            self.buf.extend_from_slice(&bytes[..4 + len]);
            self.send()?;
            bytes = &bytes[4 + len..];
        }
        self.inner.write_all(bytes)
    }
}

/// The smallest tail [`FrameWriter::send_with_tails`] sends without copying it: below it, a
/// copy costs less than a vectored write.
const VECTORED_TAIL: usize = 64 * 1024;

/// Like [`frame`], for a message that is `head` and then `tail_len` more bytes.
fn frame_with_tail<T: ?Sized + Serialize>(head: &T, tail_len: usize, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    super::encode_into(head, buf, "a message")?;
    let size = (buf.len() - 4) as u64 + tail_len as u64;
    let len = u32::try_from(size).map_err(|_| Error::FrameTooLarge { size, limit: u32::MAX as u64 })?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Writes `parts` one after the other, with vectored writes (std's `write_all_vectored`, which
/// is not stable yet).
fn write_all_parts<const N: usize>(w: &mut impl Write, parts: [&[u8]; N]) -> io::Result<()> {
    let mut slices = parts.map(io::IoSlice::new);
    let mut left = &mut slices[..];
    // Past the empty parts first: a write of nothing but them would return 0.
    io::IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match w.write_vectored(left) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write a whole frame")),
            Ok(n) => io::IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The fuzz target `sealed_frames`: `data` read as a sealed stream (each frame that opens is
/// decoded as a request, as a server would), then sent as frames through a sealed writer and
/// read back, where every whole frame must open as it was.
pub(crate) fn fuzz_sealed_frames(data: &[u8]) {
    use super::message::Request;
    use super::sealed::SessionKeys;
    let keys = || SessionKeys { client_to_server: [7; 32], server_to_client: [9; 32] };
    let limit = 64 * 1024;

    let mut r = FrameReader::new(data, Some(keys().server().0), limit);
    while let Ok(true) = r.read(None) {
        let _ = super::take::<Request<'_>>(r.body());
    }

    let mut w = FrameWriter::new(Vec::new(), Some(keys().client().1));
    w.send_raw(data).expect("writing to memory");
    // No whole frame is longer than the input: the limit keeps the readers from allocating
    // what a header merely announces.
    let mut plain = FrameReader::new(data, None, data.len());
    let mut sealed = FrameReader::new(&w.inner[..], Some(keys().server().0), data.len());
    while let Ok(true) = plain.read(None) {
        assert!(matches!(sealed.read(None), Ok(true)), "a frame sealed here opens");
        assert_eq!(plain.body(), sealed.body());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sealed::tests::keys;

    fn sealed_stream(messages: &[&str]) -> Vec<u8> {
        let (_, seal) = keys().client();
        let mut w = FrameWriter::new(Vec::new(), Some(seal));
        for m in messages {
            w.write(m).unwrap();
        }
        w.inner
    }

    /// The messages read from `bytes`, and the error that ended them (`None`: a clean end).
    fn read_all(bytes: &[u8], limit: usize) -> (Vec<String>, Option<ReadError>) {
        let (open, _) = keys().server();
        let mut r = FrameReader::new(bytes, Some(open), limit);
        let mut got = Vec::new();
        loop {
            match r.read(None) {
                Ok(true) => got.push(postcard::from_bytes::<String>(r.body()).unwrap()),
                Ok(false) => return (got, None),
                Err(e) => return (got, Some(e)),
            }
        }
    }

    #[test]
    fn sealed_frames_round_trip() {
        let stream = sealed_stream(&["one", "two", "three"]);
        let (got, end) = read_all(&stream, 1024);
        assert_eq!(got, ["one", "two", "three"]);
        assert!(end.is_none(), "{end:?}");
    }

    #[test]
    fn a_replayed_reordered_or_cut_frame_ends_the_stream_with_an_error() {
        let stream = sealed_stream(&["one", "two"]);
        let first = stream[..4 + 4 + TAG].to_vec();
        let second = stream[first.len()..].to_vec();

        let replayed = [first.clone(), first.clone()].concat();
        assert!(matches!(read_all(&replayed, 1024), (v, Some(ReadError::NotOpened(_))) if v == ["one"]));
        let reordered = [second.clone(), first.clone()].concat();
        assert!(matches!(read_all(&reordered, 1024), (v, Some(ReadError::NotOpened(_))) if v.is_empty()));
        let cut = &stream[..stream.len() - 1];
        assert!(matches!(read_all(cut, 1024), (v, Some(ReadError::Io(_))) if v == ["one"]));
        // An unsealed frame injected into a sealed stream (and followed by more) does not open.
        let mut plain = Vec::new();
        frame("one", &mut plain).unwrap();
        plain.extend_from_slice(&second);
        assert!(matches!(read_all(&plain, 1024), (_, Some(ReadError::NotOpened(_)))));
    }

    #[test]
    fn the_limit_is_checked_on_the_announced_length_before_allocating() {
        let stream = sealed_stream(&["a string of 26 characters."]);
        assert!(matches!(read_all(&stream, 8), (_, Some(ReadError::TooLarge(FrameTooLarge { size: 27, limit: 8 })))));
        let (open, _) = keys().server();
        let huge = u32::MAX.to_le_bytes();
        let mut r = FrameReader::new(&huge[..], Some(open), 1 << 20);
        assert!(matches!(r.read(None), Err(ReadError::TooLarge(_))));
        assert!(r.body.capacity() < 1 << 20, "nothing allocated for a refused frame");
    }

    #[test]
    fn raw_bytes_are_sealed_frame_by_frame_with_a_partial_tail_as_it_is() {
        let (_, seal) = keys().client();
        let mut w = FrameWriter::new(Vec::new(), Some(seal));
        let mut raw = Vec::new();
        frame("one", &mut raw).unwrap();
        raw.extend_from_slice(&[9, 0, 0, 0, 1]);
        w.send_raw(&raw).unwrap();
        let sent = w.inner;
        assert_eq!(sent.len(), 4 + 4 + TAG + 5);
        let (got, end) = read_all(&sent, 1024);
        assert_eq!(got, ["one"]);
        assert!(matches!(end, Some(ReadError::Io(_))), "the partial frame is cut");
    }

    #[test]
    fn the_fuzz_entry_takes_its_seeds() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sealed_frames");
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0xff; 4], vec![3, 0, 0, 0, 1, 2]];
        if let Ok(dir) = std::fs::read_dir(seeds) {
            inputs.extend(dir.filter_map(|e| std::fs::read(e.ok()?.path()).ok()));
        }
        for input in inputs {
            fuzz_sealed_frames(&input);
        }
    }

    /// A writer that takes at most `max` bytes a call, as a socket may.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
    }

    impl Medium for Trickle {}

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.max);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            let mut left = self.max;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            Ok(self.max - left)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_frame_with_a_tail_is_the_frame_of_the_whole_message() {
        use crate::wire::Bytes;
        for (len, max) in [(0, 7), (10, 3), (VECTORED_TAIL, 1000), (VECTORED_TAIL + 5, 3), (3 << 20, 1 << 20)] {
            let tail: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut whole = Vec::new();
            frame(&("head", Bytes(&tail)), &mut whole).unwrap();
            for sealed in [false, true] {
                let seal = sealed.then(|| keys().client().1);
                let mut w = FrameWriter::new(Trickle { out: Vec::new(), max }, seal);
                let size = w.encode_with_tail(&("head", tail.len()), tail.len()).unwrap();
                assert_eq!(size, whole.len() - 4);
                w.send_with_tails(&tail, &[]).unwrap();
                let open = sealed.then(|| keys().server().0);
                let mut r = FrameReader::new(&w.inner.out[..], open, 4 << 20);
                assert!(r.read(None).unwrap(), "{len} bytes, sealed: {sealed}");
                assert_eq!(r.body(), &whole[4..], "{len} bytes, sealed: {sealed}");
            }
        }
    }

    #[test]
    fn a_smaller_frame_after_a_larger_one_is_its_own_bytes_only() {
        let messages = ["a message of some length, longer than those after it", "", "short", "mid length"];
        for sealed in [false, true] {
            let mut w = FrameWriter::new(Vec::new(), sealed.then(|| keys().client().1));
            for m in messages {
                w.write(m).unwrap();
            }
            let mut r = FrameReader::new(&w.inner[..], sealed.then(|| keys().server().0), 1024);
            for m in messages {
                assert!(r.read(None).unwrap());
                assert_eq!(r.body(), postcard::to_stdvec(m).unwrap(), "sealed: {sealed}");
            }
            assert!(!r.read(None).unwrap());
        }
    }

    #[test]
    fn plain_frames_read_as_before() {
        let mut w = FrameWriter::new(Vec::new(), None);
        w.write("plain").unwrap();
        let bytes = w.inner;
        let mut r = FrameReader::new(&bytes[..], None, 1024);
        assert!(r.read(Some(Instant::now() + Duration::from_secs(1))).unwrap());
        assert_eq!(postcard::from_bytes::<&str>(r.body()).unwrap(), "plain");
        assert!(!r.read(None).unwrap());
    }
}
