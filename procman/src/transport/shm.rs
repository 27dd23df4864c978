//! The same-host fast path: a connection's frames through shared memory, with its Unix socket
//! kept as the doorbell and the liveness signal.
//!
//! After the handshake and the hello, a client on the same host asks for a channel; the server
//! creates a memfd, seals its size (so neither side can shrink it under the other's mapping and
//! raise `SIGBUS` there), maps it, and passes it with `SCM_RIGHTS` beside its reply. From then on
//! both sides read and write the channel exactly as they read and wrote the socket: the frames
//! are the same bytes, so everything above (the frame reader's limits and deadlines, the
//! decoders) is unchanged.
//!
//! # Layout
//!
//! One header page, then two rings of [`RING`] bytes: ring 0 carries the client's bytes to the
//! server, ring 1 the server's to the client. Each ring has, in the header and each on a cache
//! line of its own, `head` (bytes read, advanced by the consumer) and two flags, "the consumer
//! sleeps" and "the producer sleeps".
//!
//! A ring holds records, each starting on a cache line: a commit word, the body's length, then
//! the body (each `write` is one record, at most a quarter of the ring). The producer writes
//! the body and the length, then the commit word with release ordering; the consumer polls the
//! commit word where the next record starts. So a small frame costs one cache line each way,
//! the same line that tells it arrived, where a separate `tail` word would cost two (the
//! scheme of Aeron's log buffers). The commit word is the record's position mixed with a
//! random secret of the channel, so the bytes a lap earlier left there (a payload, which an
//! outsider may choose) never pass for a record. A frame larger than a record streams through
//! in quarters: the producer writes as much as is free, the consumer reads what is there and
//! releases each record as it finishes it, so the two sides copy at the same time and what
//! is in flight stays in the caches.
//!
//! A record of a few lines costs what moving its lines between two cores costs, and a core's
//! stores take the lines they write one after the other. So before it copies a record of up
//! to 4 KiB, the producer asks for all its lines at once (`PREFETCHW`), and after it copied one
//! of up to 1 KiB it pushes the lines past the first out to the shared cache (`CLDEMOTE`),
//! where the consumer finds them sooner than in the producer's core: a 512 B echo took
//! 1.30x, a 1 KiB echo 1.22x, a 2 KiB one 1.06x as long without them, measured side by side.
//! Larger records stream, and both hints slowed them (a 64 KiB echo by 1.08x and 1.47x). Both
//! are hints: they never change what a line holds, and processors without them ignore them. The producer remembers the consumer's `head` as it last
//! read it and reads it again only when the space it knows of does not suffice.
//!
//! # Waiting: spin, then sleep
//!
//! A side that finds nothing to read (or no space to write) spins for a short, bounded time,
//! re-reading the ring; most proxy calls are answered within it, without a system call on either
//! side. Then it raises its sleeping flag, checks the ring once more, and sleeps in `FUTEX_WAIT`
//! on the flag. A side that publishes bytes (or frees space) checks the peer's flag after a
//! full fence and, if it is raised, lowers it and wakes every sleeper on it (`FUTEX_WAKE`): the
//! doorbell. The flag, the fence and the re-check make a lost wake-up impossible. A futex, not
//! a byte on the socket: a futex wake is one system call on each side where a socket's is
//! three, it wakes every thread of the side that sleeps on the flag (an async connection's
//! reader thread and a caller may both), and it does not tell the scheduler to run the woken
//! thread on the waker's core, which a socket write does: with the waker spinning there
//! afterwards, both ended up sharing one core and each call cost a slice.
//!
//! The spin budget adapts (see [`Spin`]): it is set from how long the recent waits took, so a
//! peer that answers fast is waited for by spinning and a slow one (a thread among many more
//! runnable threads than cores, a blocked `get`) by sleeping at once; no more threads of a
//! process spin at a time than it has cores, a spin gives its core away every few microseconds
//! (`sched_yield`, for a peer queued behind it), and a machine with one core never spins. A
//! wait that goes to sleep costs what a socket round trip costs; a thread blocked in a call
//! for an hour uses next to no CPU after its spin (a look at the socket ten times a second).
//!
//! With more client threads than cores, which connections run hot is decided by the manager's
//! serving slots (`gate.rs`): the server's thread shows in the header (`hot`, line 0) whether
//! it holds one; a client spins for its reply only while it does and otherwise sleeps at once,
//! and a thread that holds one spins whatever earlier spins that ran out said (the backoff
//! below is for waits among more threads than cores, which the slots prevent). The client
//! says in line 4 which core it waits on, and the server's thread moves off that core when it
//! finds itself there (at most every 50 µs): the scheduler puts a woken thread beside its
//! waker, and two threads spinning for each other on one core take turns at it, while the
//! other core idles. Both ends of a hot connection give their core away once every
//! [`HOT_YIELD_EVERY`] waits: a thread woken onto one of the pair's cores (a `get` that a
//! `put` let through, the client its reply wakes) runs then, not at the scheduler's next tick.
//!
//! A wait inside a frame is another matter: a reader whose last read left it short of the bytes
//! it asked for (the frame reader asks for exactly the rest of its frame), or a writer that
//! finds the ring full, waits for a peer that is copying, not computing. Those waits have a
//! budget of their own, adapted the same way from their own durations, up to 1 ms (see
//! [`Spin::streaming`]). The budget between frames cannot serve them: an 8 MiB echo's peer
//! takes milliseconds to answer, which brings that budget to zero, and a sleep and a doorbell
//! on every quarter of the ring would follow. A peer that stops inside a frame is spun for a
//! few times, less each time, then slept for.
//!
//! # Liveness
//!
//! The socket stays open beside the channel and tells whether the peer is there. A side that
//! drops its channel shuts the socket down and wakes the peer's sleepers, which find the end
//! at once; a peer that dies without a word cannot ring, so every sleep lasts at most 100 ms
//! before it looks at the socket (`poll` with no wait), and a spinning side looks as it
//! goes. The bytes the peer wrote before it ended (a stopping server's goodbye) are still read
//! first.
//!
//! # Trust
//!
//! The peer can write the mapping at any time. Each side keeps its own copy of the positions it
//! owns and only reads the peer's: a record longer than the ring, or a read position that claims
//! more free space than was written, is an error that closes the connection. Bytes are copied
//! out of the ring
//! before anything decodes them, so a peer that changes them meanwhile produces at worst a frame
//! that fails to decode, which closes its connection as any bad frame does. The memfd is created
//! by the server and its size is sealed; the client checks the seals, the size and the header
//! before it maps the rest.
//!
//! Why by hand: the crates of this field (iceoryx2, ipc-channel, shared_memory) bring their own
//! process model and service discovery, and none offers a byte channel that keeps a socket as
//! its liveness signal beside a futex doorbell, which is what lets everything above this file
//! stay as it is.

use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::time::{Duration, Instant};

/// The bytes of each ring.
pub(crate) const RING: usize = 128 * 1024;
const _: () = assert!(RING.is_power_of_two());

/// The header: the rings' positions and flags, and the mapping's identity.
const HEADER: usize = 4096;
/// Each position and flag is alone on its cache line (two lines, for adjacent-line prefetch).
const LINE: usize = 128;
const MAGIC: u64 = u64::from_le_bytes(*b"procmsh2");
const MAGIC_AT: usize = 8 * LINE;
const RING_AT: usize = MAGIC_AT + 8;
const SECRET_AT: usize = RING_AT + 8;
/// Raised by the server while its thread for this connection holds a serving slot (see
/// `gate.rs`): the client spins for a reply only then. Line 0, which no ring uses.
const HOT_AT: usize = 0;
/// The core the client last waited for a reply on, written by the client (line 4, which no
/// ring uses): the server's thread moves off a core it shares with its client.
const CLIENT_CPU_AT: usize = 4 * LINE;

/// Each record starts on its own cache line, so that a small frame, its length and its commit
/// word arrive in one line.
const RECORD_ALIGN: usize = 64;
/// A record's header: its commit word, then its body's length.
const RECORD_HEADER: usize = 16;
/// `rx_len` before the header of the record being read was read.
const UNSEEN: u64 = u64::MAX;

/// The bytes a record of `len` body bytes takes in its ring.
fn record_size(len: u64) -> u64 {
    (RECORD_HEADER as u64 + len).next_multiple_of(RECORD_ALIGN as u64)
}

/// The smallest and largest ring a client accepts from a server.
const MIN_RING: usize = 4096;
const MAX_RING: usize = 64 << 20;

/// Ring 0 carries the client's bytes, ring 1 the server's.
const CLIENT_TO_SERVER: usize = 0;
const SERVER_TO_CLIENT: usize = 1;

/// Which end of a channel this process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// One connection's shared-memory channel, as one side holds it.
#[derive(Debug)]
pub(crate) struct Channel {
    map: MmapRaw,
    ring: usize,
    socket: UnixStream,
    rx: usize,
    tx: usize,
    /// This side's own positions: the start of the record being read (the shared `head` is
    /// only written), and where the next record goes.
    rx_head: AtomicU64,
    tx_tail: AtomicU64,
    /// Bytes of the record at `rx_head` already read, and its body length once its header
    /// was read (`UNSEEN` before).
    rx_off: AtomicU64,
    rx_len: AtomicU64,
    /// What the commit words of this channel's records are made with (see
    /// [`commit`](Self::commit)).
    secret: u64,
    /// The peer's read position in the sending ring as last loaded: space up to it is known
    /// free without touching the peer's cache line again (reloaded only when it does not
    /// suffice).
    tx_head_seen: AtomicU64,
    /// The socket reached end-of-stream: the peer closed it, or this process shut it down.
    gone: AtomicBool,
    /// In nanoseconds; `u64::MAX` for none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// The spin budget of the waits between frames (for an answer, for the next request).
    spin: Spin,
    /// The spin budget of the waits inside a frame (see [`Channel::wait`]).
    stream_spin: Spin,
    /// The last read gave its caller fewer bytes than it asked for: the caller is inside a
    /// frame, so the peer is writing the rest of it, and the next wait is part of a stream.
    rx_partial: AtomicBool,
    /// The last write rang the doorbell: the peer was asleep, so the wait for its answer
    /// includes its waking up, which says nothing of how soon an awake peer answers.
    woke_peer: AtomicBool,
    /// When the server's thread last moved off its client's core, in nanoseconds since
    /// `opened` (see [`note_cpus`](Self::note_cpus)).
    moved_at: AtomicU64,
    opened: Instant,
    /// The hot waits this side made (see [`HOT_YIELD_EVERY`]).
    hot_waits: AtomicU64,
}

/// Why a wait ended.
enum Waited {
    Ready,
    Gone,
    TimedOut,
}

impl Channel {
    /// The server's side: creates, seals and maps a channel for the connection on `socket`.
    /// Returns it with the memfd to pass to the client.
    pub(crate) fn create(socket: UnixStream) -> io::Result<(Channel, OwnedFd)> {
        let len = HEADER + 2 * RING;
        let file = memfd(len)?;
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        let mut secret = [0u8; 8];
        getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
        let channel = Channel::new(map, RING, socket, Side::Server, u64::from_le_bytes(secret));
        channel.word(MAGIC_AT).store(MAGIC, Ordering::Relaxed);
        channel.word(RING_AT).store(RING as u64, Ordering::Relaxed);
        channel.word(SECRET_AT).store(channel.secret, Ordering::Relaxed);
        Ok((channel, file.into()))
    }

    /// The client's side: maps the channel the server passed as `fd`, after checking that its
    /// size is sealed and that it is the channel it says (`ring` bytes a ring).
    pub(crate) fn open(socket: UnixStream, fd: OwnedFd, ring: u64) -> io::Result<Channel> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("the manager's channel {what}"));
        let ring = usize::try_from(ring).map_err(|_| bad("is too large"))?;
        if !(MIN_RING..=MAX_RING).contains(&ring) || !ring.is_power_of_two() {
            return Err(bad("has an impossible ring size"));
        }
        let file = File::from(fd);
        // SAFETY: fcntl(F_GET_SEALS) on a descriptor this function owns; it reads no memory.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        let needed = libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        if seals < 0 || seals & needed != needed {
            return Err(bad("is not sealed against shrinking"));
        }
        let len = HEADER + 2 * ring;
        if file.metadata()?.len() != len as u64 {
            return Err(bad("has the wrong size"));
        }
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        // SAFETY: the header page is inside the mapping just made and page-aligned; the word is
        // read atomically (the server wrote it before it passed the descriptor).
        let secret = unsafe { &*map.as_mut_ptr().add(SECRET_AT).cast::<AtomicU64>() }.load(Ordering::Relaxed);
        let channel = Channel::new(map, ring, socket, Side::Client, secret);
        if channel.word(MAGIC_AT).load(Ordering::Relaxed) != MAGIC
            || channel.word(RING_AT).load(Ordering::Relaxed) != ring as u64
        {
            return Err(bad("has a foreign header"));
        }
        Ok(channel)
    }

    fn new(map: MmapRaw, ring: usize, socket: UnixStream, side: Side, secret: u64) -> Channel {
        let (rx, tx) = match side {
            Side::Client => (SERVER_TO_CLIENT, CLIENT_TO_SERVER),
            Side::Server => (CLIENT_TO_SERVER, SERVER_TO_CLIENT),
        };
        Channel {
            map,
            ring,
            socket,
            rx,
            tx,
            rx_head: AtomicU64::new(0),
            tx_tail: AtomicU64::new(0),
            rx_off: AtomicU64::new(0),
            rx_len: AtomicU64::new(UNSEEN),
            secret,
            tx_head_seen: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            read_timeout: AtomicU64::new(u64::MAX),
            write_timeout: AtomicU64::new(u64::MAX),
            spin: Spin::new(),
            stream_spin: Spin::streaming(),
            rx_partial: AtomicBool::new(false),
            woke_peer: AtomicBool::new(false),
            moved_at: AtomicU64::new(0),
            opened: Instant::now(),
            hot_waits: AtomicU64::new(0),
        }
    }

    /// The socket: the doorbell, and what tells that the peer is gone.
    pub(crate) fn socket(&self) -> &UnixStream {
        &self.socket
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) {
        self.read_timeout.store(nanos(t), Ordering::Relaxed);
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) {
        self.write_timeout.store(nanos(t), Ordering::Relaxed);
    }

    /// The shared word at `off` in the header.
    fn word(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= HEADER && off.is_multiple_of(8));
        // SAFETY: `off` is inside the header page of the mapping and 8-byte aligned (the mapping
        // is page-aligned); the mapping lives as long as `self`, and its size is sealed, so the
        // page stays. Another process may write the word at any time: it is only ever accessed
        // atomically here, which makes that well defined.
        unsafe { &*self.map.as_mut_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Shows the client whether the server's thread for this connection holds a serving slot
    /// (the server's side only writes it, the client's only reads it).
    pub(crate) fn set_hot(&self, hot: bool) {
        let flag = self.flag(HOT_AT);
        if (flag.load(Ordering::Relaxed) != 0) != hot {
            flag.store(hot as u32, Ordering::Release);
        }
    }

    /// True while the server's thread for this connection holds a serving slot, as the server
    /// says: a client that believes a server lying here only spins or sleeps when it should not.
    pub(crate) fn is_hot(&self) -> bool {
        self.flag(HOT_AT).load(Ordering::Relaxed) != 0
    }

    /// Before a hot wait: the client says which core it waits on; the server's thread, when it
    /// finds itself on the same one, moves to another. Two threads that spin for each other
    /// on one core take turns at it, a scheduler's slice or a yield at a time, while another
    /// core may idle: the scheduler puts a thread it wakes beside its waker, and a hot pair
    /// begins with wake-ups. At most once every [`MOVE_EVERY`] per connection, and only while
    /// its thread holds a serving slot: a client that names the server's core on purpose costs
    /// its own connection's thread moves, in its own turns.
    fn note_cpus(&self, client: bool) {
        // SAFETY: sched_getcpu reads the calling thread's current core; it takes no pointers.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return;
        }
        let word = self.flag(CLIENT_CPU_AT);
        if client {
            if word.load(Ordering::Relaxed) != cpu as u32 {
                word.store(cpu as u32, Ordering::Relaxed);
            }
            return;
        }
        if word.load(Ordering::Relaxed) != cpu as u32 {
            return;
        }
        let now = self.opened.elapsed().as_nanos() as u64;
        let last = self.moved_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < MOVE_EVERY.as_nanos() as u64 {
            return;
        }
        self.moved_at.store(now.max(1), Ordering::Relaxed);
        move_off(cpu as usize);
    }

    fn head(&self, ring: usize) -> &AtomicU64 {
        self.word(ring * 4 * LINE + LINE)
    }
    /// Raised while the consumer of `ring` sleeps waiting for bytes; the futex it sleeps on.
    fn reader_asleep(&self, ring: usize) -> &AtomicU32 {
        self.flag(ring * 4 * LINE + 2 * LINE)
    }
    /// Raised while the producer of `ring` sleeps waiting for space; the futex it sleeps on.
    fn writer_asleep(&self, ring: usize) -> &AtomicU32 {
        self.flag(ring * 4 * LINE + 3 * LINE)
    }

    /// The shared 32-bit flag at `off` in the header.
    fn flag(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= HEADER && off.is_multiple_of(8));
        // SAFETY: as for `word`: inside the header page, aligned, and only accessed atomically
        // (by this process, by the peer, and by the kernel's futex calls, which read it
        // atomically).
        unsafe { &*self.map.as_mut_ptr().add(off).cast::<AtomicU32>() }
    }

    fn ring_base(&self, ring: usize) -> *mut u8 {
        // SAFETY: the offset is the start of ring `ring` (0 or 1), inside the mapping.
        unsafe { self.map.as_mut_ptr().add(HEADER + ring * self.ring) }
    }

    /// Where the absolute position `pos` lies in a ring. The ring's size is a power of two
    /// (the client checks the server's), so this is a mask, not a division: a 64-bit division
    /// costs 10 to 40 cycles, depending on the processor, and every look at the ring makes one.
    fn offset(&self, pos: u64) -> usize {
        debug_assert!(self.ring.is_power_of_two());
        (pos & (self.ring as u64 - 1)) as usize
    }

    /// The shared word at `pos` (an absolute position, a multiple of 8) of ring `ring`.
    fn ring_word(&self, ring: usize, pos: u64) -> &AtomicU64 {
        let at = self.offset(pos);
        debug_assert!(at.is_multiple_of(8));
        // SAFETY: `at + 8 <= ring` (the ring's size is a multiple of 8 and `at` is one too), so
        // the word lies inside ring `ring` of the mapping, which lives as long as `self` and whose
        // size is sealed; it is 8-byte aligned (the mapping is page-aligned). The peer may write
        // it at any time: here it is only accessed atomically, and the bytes a plain copy moved
        // there earlier (the body of a record a lap ago) are just as good a `u64`.
        unsafe { &*self.ring_base(ring).add(at).cast::<AtomicU64>() }
    }

    /// The commit word of a record at `pos`: what no stale byte of an earlier lap holds unless
    /// it guessed the channel's secret.
    fn commit(&self, pos: u64) -> u64 {
        self.secret ^ pos
    }

    /// The body length of the record at `pos` of the receiving ring, if the peer has committed
    /// one there; an error when its length is impossible.
    fn record_at(&self, pos: u64) -> io::Result<Option<u64>> {
        if self.ring_word(self.rx, pos).load(Ordering::Acquire) != self.commit(pos) {
            return Ok(None);
        }
        let len = self.ring_word(self.rx, pos + 8).load(Ordering::Relaxed);
        if len == 0 || len > (self.ring - RECORD_HEADER) as u64 {
            return Err(broken("claims a record longer than the ring"));
        }
        Ok(Some(len))
    }

    /// The body length of the record being read (`UNSEEN` when its header has not been
    /// read yet), found now if it was not.
    fn current(&self) -> io::Result<Option<u64>> {
        let len = self.rx_len.load(Ordering::Relaxed);
        if len != UNSEEN {
            return Ok(Some(len));
        }
        let Some(len) = self.record_at(self.rx_head.load(Ordering::Relaxed))? else { return Ok(None) };
        self.rx_len.store(len, Ordering::Relaxed);
        Ok(Some(len))
    }

    /// Bytes ready in the receiving ring, up to `enough`: the rest of the record being read,
    /// and then those of the records committed after it. An error when the peer's records
    /// are impossible.
    fn readable(&self, enough: usize) -> io::Result<usize> {
        let Some(len) = self.current()? else { return Ok(0) };
        let mut n = (len - self.rx_off.load(Ordering::Relaxed)) as usize;
        let mut pos = self.rx_head.load(Ordering::Relaxed) + record_size(len);
        // Bounded: at most a ring's worth of records.
        for _ in 0..self.ring / RECORD_ALIGN {
            if n >= enough {
                break;
            }
            match self.record_at(pos)? {
                Some(len) => {
                    n += len as usize;
                    pos += record_size(len);
                }
                None => break,
            }
        }
        Ok(n)
    }

    /// Bytes a read takes without waiting, counted up to `enough` (0 when the peer's records
    /// are impossible: the read finds it).
    pub(crate) fn available(&self, enough: usize) -> usize {
        self.readable(enough).unwrap_or(0)
    }

    /// Free bytes in the sending ring (at least `want` if there are, else all there are), a
    /// multiple of [`RECORD_ALIGN`]; an error when the peer's position is impossible.
    fn writable(&self, want: usize) -> io::Result<usize> {
        let tail = self.tx_tail.load(Ordering::Relaxed);
        let seen = self.tx_head_seen.load(Ordering::Relaxed);
        // Free space by the position last seen: enough for a small frame, most of the time.
        let free = self.ring - tail.wrapping_sub(seen) as usize;
        if free >= want {
            return Ok(free);
        }
        let head = self.head(self.tx).load(Ordering::Acquire);
        if head.wrapping_sub(seen) > tail.wrapping_sub(seen) || !head.is_multiple_of(RECORD_ALIGN as u64) {
            return Err(broken("claims to have read bytes never written"));
        }
        self.tx_head_seen.store(head, Ordering::Relaxed);
        Ok(self.ring - tail.wrapping_sub(head) as usize)
    }

    /// Reads what is there (at least one byte), waiting for it as the module docs say. `Ok(0)`:
    /// the peer is gone and everything it wrote was read.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current()?.is_none() {
            let timeout = duration(self.read_timeout.load(Ordering::Relaxed));
            let streaming = self.rx_partial.load(Ordering::Relaxed);
            match self.wait(|c| Ok(c.current()?.is_some()), self.reader_asleep(self.rx), timeout, streaming)? {
                Waited::Ready => {}
                Waited::Gone => return Ok(0),
                Waited::TimedOut => return Err(io::Error::new(io::ErrorKind::WouldBlock, "no bytes in time")),
            }
        }
        let n = self.take(buf)?;
        self.rx_partial.store(n < buf.len(), Ordering::Relaxed);
        Ok(n)
    }

    /// Copies what the committed records hold into `buf`, up to a quarter of the ring, and
    /// releases the records it read to the end.
    fn take(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut head = self.rx_head.load(Ordering::Relaxed);
        let mut off = self.rx_off.load(Ordering::Relaxed);
        let limit = buf.len().min(self.chunk());
        let base = self.ring_base(self.rx);
        let mut n = 0;
        let mut released = false;
        while n < limit {
            let Some(len) = self.current()? else { break };
            let k = ((len - off) as usize).min(limit - n);
            let at = self.offset(head + RECORD_HEADER as u64 + off);
            let first = k.min(self.ring - at);
            // SAFETY: `at + first <= ring` and `k - first <= ring`, so both source ranges lie
            // inside ring `rx`; `buf[n..n + k]` is private memory, so the ranges do not overlap.
            // The peer may write these bytes meanwhile (a well-behaved one never writes a
            // record it has committed and we have not released): they are copied as plain
            // bytes, no reference to the shared memory is made, and what they say is checked
            // after the copy by the decoders.
            unsafe {
                std::ptr::copy_nonoverlapping(base.add(at), buf.as_mut_ptr().add(n), first);
                std::ptr::copy_nonoverlapping(base, buf.as_mut_ptr().add(n + first), k - first);
            }
            n += k;
            off += k as u64;
            if off == len {
                head = head.wrapping_add(record_size(len));
                off = 0;
                released = true;
                self.rx_head.store(head, Ordering::Relaxed);
                self.rx_len.store(UNSEEN, Ordering::Relaxed);
            }
        }
        self.rx_off.store(off, Ordering::Relaxed);
        if released {
            self.head(self.rx).store(head, Ordering::Release);
            self.doorbell(self.writer_asleep(self.rx));
        }
        Ok(n)
    }

    /// Writes as much of `parts` (in order) as there is space for, at least one byte, as one
    /// record, waiting for space as the module docs say.
    pub(crate) fn write(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let want = (record_size(total as u64) as usize).min(self.chunk());
        let mut space = self.writable(want)?;
        if space == 0 {
            // A full ring: the consumer is reading (or will read) what fills it, so this wait
            // is part of a stream.
            let timeout = duration(self.write_timeout.load(Ordering::Relaxed));
            match self.wait(|c| Ok(c.writable(want)? > 0), self.writer_asleep(self.tx), timeout, true)? {
                Waited::Ready => space = self.writable(want)?,
                Waited::Gone => return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the peer closed the channel")),
                Waited::TimedOut => return Err(io::Error::new(io::ErrorKind::WouldBlock, "no space in time")),
            }
        }
        // `space` is a multiple of the alignment, at least one: room for a header and a byte.
        let room = space.min(self.chunk()) - RECORD_HEADER;
        let written = total.min(room);
        let tail = self.tx_tail.load(Ordering::Relaxed);
        // The body's bytes past the record's first line go first, then those in it, then the
        // length and the commit word: the consumer spins on that line, and its stores, back
        // to back, take it from the consumer once rather than again at the end.
        let first = written.min(RECORD_ALIGN - RECORD_HEADER);
        let body_lines = self.lines_past_first(tail, written);
        if body_lines.len() <= OWN_FIRST_LINES {
            // Asked for all at once, the lines of a small record are the writer's when the
            // copy reaches them (its stores would take them one after the other).
            body_lines.clone().for_each(|at| hint::own(self.ring_base(self.tx).wrapping_add(at)));
        }
        self.copy_in(parts, tail, first..written);
        if body_lines.len() <= HAND_OVER_LINES {
            // Pushed out to the shared cache, they reach the reader from there, not from this
            // core's.
            body_lines.for_each(|at| hint::demote(self.ring_base(self.tx).wrapping_add(at)));
        }
        self.copy_in(parts, tail, 0..first);
        self.ring_word(self.tx, tail + 8).store(written as u64, Ordering::Relaxed);
        // The commit, last: the body and the length are visible to whoever sees it.
        self.ring_word(self.tx, tail).store(self.commit(tail), Ordering::Release);
        self.tx_tail.store(tail.wrapping_add(record_size(written as u64)), Ordering::Relaxed);
        let rang = self.doorbell(self.reader_asleep(self.tx));
        if rang != self.woke_peer.load(Ordering::Relaxed) {
            self.woke_peer.store(rang, Ordering::Relaxed);
        }
        Ok(written)
    }

    /// The offsets in the sending ring of the cache lines of a record of `len` body bytes at
    /// `tail` past its first line (which the reader polls), up to the end of the ring.
    fn lines_past_first(&self, tail: u64, len: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        let at = self.offset(tail);
        let end = (at + RECORD_HEADER + len).min(self.ring);
        (at + RECORD_ALIGN..end.max(at + RECORD_ALIGN)).step_by(RECORD_ALIGN)
    }

    /// Copies bytes `range` of the concatenation of `parts` into the body of the record at
    /// `tail` of the sending ring; the record fits the free space.
    fn copy_in(&self, parts: &[IoSlice<'_>], tail: u64, range: std::ops::Range<usize>) {
        let base = self.ring_base(self.tx);
        let mut at = self.offset(tail + (RECORD_HEADER + range.start) as u64);
        let mut skip = range.start;
        let mut left = range.len();
        for part in parts {
            if left == 0 {
                break;
            }
            let mut part: &[u8] = part;
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            part = &part[skip..];
            skip = 0;
            while !part.is_empty() && left > 0 {
                let n = part.len().min(left).min(self.ring - at);
                // SAFETY: `at + n <= ring`, so the destination lies inside ring `tx`, in bytes
                // the consumer has released (the caller's record fits the free space); `part`
                // is private memory.
                unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), base.add(at), n) };
                left -= n;
                part = &part[n..];
                at = (at + n) & (self.ring - 1);
            }
        }
    }

    /// Writes all of `parts`.
    #[cfg(test)]
    pub(crate) fn write_all(&self, parts: &[&[u8]]) -> io::Result<()> {
        let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        while !parts.is_empty() {
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let mut n = self.write(&slices)?;
            while n > 0 {
                let take = n.min(parts[0].len());
                parts[0] = &parts[0][take..];
                n -= take;
                if parts[0].is_empty() {
                    parts.remove(0);
                }
            }
        }
        Ok(())
    }

    /// Wakes the peer if `flag` says it sleeps: one byte on the socket. The fence orders the
    /// position just published before the read of the flag (the sleeper orders its flag before
    /// its last look at the position), so either the sleeper sees the position or this sees
    /// the flag. True when it rang.
    fn doorbell(&self, flag: &AtomicU32) -> bool {
        fence(Ordering::SeqCst);
        let asleep = flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0;
        if asleep {
            futex_wake(flag);
        }
        asleep
    }

    /// The most bytes one read or write moves before it publishes its position: a quarter of
    /// the ring, so that while a frame larger than that streams through, the peer copies one
    /// part while this side copies the next.
    fn chunk(&self) -> usize {
        self.ring / 4
    }

    /// Waits until `ready`: spins within the budget, then sleeps on the socket. A `streaming`
    /// wait (inside a frame, for the rest of its bytes or for space to write them) waits for a
    /// peer that is copying, not computing an answer: it has a budget of its own (see
    /// [`Spin::streaming`]), which the waits between frames do not change, nor it theirs.
    fn wait(
        &self,
        ready: impl Fn(&Channel) -> io::Result<bool>,
        asleep: &AtomicU32,
        timeout: Option<Duration>,
        streaming: bool,
    ) -> io::Result<Waited> {
        let spin = if streaming { &self.stream_spin } else { &self.spin };
        // A client waiting for its reply spins only while the server's thread for its
        // connection runs hot (see `gate.rs`); one that waits its turn is slept for at once,
        // and such a wait says nothing of how fast the server answers when it runs.
        let for_reply = !streaming && self.rx == SERVER_TO_CLIENT;
        let cold = std::cell::Cell::new(for_reply && !self.is_hot());
        // Either end of a connection served hot spins within its budget, whatever spins that
        // ran out before said (they held up their peer among too many threads; the gate now
        // keeps the threads that run within the cores).
        let hot = !streaming && if for_reply { !cold.get() } else { super::gate::holds() };
        let budget = if cold.get() {
            Duration::ZERO
        } else if hot {
            spin.budget_unskipped()
        } else {
            spin.budget()
        };
        if hot {
            self.note_cpus(for_reply);
            // A hot pair's waits are too short to reach the spin's own yields, so without
            // this, a thread woken on either core (a `get` a `put` let through, the client of
            // a reply) would wait for the scheduler's tick, milliseconds, for its turn.
            let n = self.hot_waits.load(Ordering::Relaxed).wrapping_add(1);
            self.hot_waits.store(n, Ordering::Relaxed);
            if n.is_multiple_of(HOT_YIELD_EVERY) {
                std::thread::yield_now();
            }
        }
        let waited = |w: Duration| {
            if !cold.get() {
                spin.waited(w)
            }
        };
        if !budget.is_zero() {
            // A peer that answers within a batch costs no look at the clock.
            for _ in 0..SPIN_BATCH {
                if ready(self)? {
                    return Ok(Waited::Ready);
                }
                std::hint::spin_loop();
            }
        }
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        let mut spun_out = false;
        if !budget.is_zero()
            && let Some(_spinning) = Spinning::enter()
        {
            let mut rounds = 0u32;
            let mut yielded = start;
            loop {
                for _ in 0..SPIN_BATCH {
                    if ready(self)? {
                        waited(start.elapsed());
                        if !streaming {
                            spin.paid();
                        }
                        return Ok(Waited::Ready);
                    }
                    std::hint::spin_loop();
                }
                let now = Instant::now();
                if now - start >= budget {
                    spun_out = !streaming;
                    break;
                }
                if for_reply && !self.is_hot() {
                    // The server's thread gave up its slot: the reply waits its turn.
                    cold.set(true);
                    break;
                }
                if now - yielded >= YIELD_EVERY {
                    std::thread::yield_now();
                    yielded = Instant::now();
                }
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                rounds += 1;
                // A long budget (raised for tests) still notices a peer that died.
                if rounds.is_multiple_of(1024) && super::hung_up(self.socket.as_fd()) {
                    break;
                }
            }
        }
        loop {
            asleep.store(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if ready(self)? {
                asleep.store(0, Ordering::Relaxed);
                let w = start.elapsed();
                waited(w);
                // The peer answered just after the spin ran out, though it was awake: what a
                // spin that holds up its peer looks like (see `Spin`). A peer that had to wake
                // up first, or that answered long after, is no sign of that.
                if spun_out && !self.woke_peer.load(Ordering::Relaxed) && w < budget * CONTENTION_FACTOR {
                    spin.missed();
                }
                return Ok(Waited::Ready);
            }
            if self.gone.load(Ordering::Relaxed) {
                asleep.store(0, Ordering::Relaxed);
                return Ok(Waited::Gone);
            }
            let mut sleep = match deadline {
                None => LIVENESS_LOOK,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        asleep.store(0, Ordering::Relaxed);
                        return Ok(Waited::TimedOut);
                    }
                    left.min(LIVENESS_LOOK)
                }
            };
            if self.rx == CLIENT_TO_SERVER {
                // A connection thread that sleeps keeps its serving slot for what is left of
                // its quantum (its client may be waking up to call again, or to read on),
                // then gives it to the next (see `gate.rs`).
                let left = super::gate::left();
                if left.is_zero() {
                    super::gate::pause();
                } else {
                    sleep = sleep.min(left);
                }
            }
            futex_wait(asleep, 1, sleep);
            // Woken by the doorbell, by the end of either side, or by the clock: with nothing
            // to do, the socket tells whether the peer is still there.
            if !ready(self)? {
                self.look_at_socket();
            }
        }
    }

    /// Notes end-of-stream when the socket has reached it (the peer closed its end or died,
    /// or this process shut it down): a look with no wait.
    fn look_at_socket(&self) {
        if super::hung_up(self.socket.as_fd()) {
            self.gone.store(true, Ordering::Relaxed);
        }
    }

    /// Shuts the socket down (`how`) and wakes whoever sleeps on the channel on this side
    /// (and, when both halves end, on the peer's), so that their waits find the end now
    /// rather than at their next look at the socket.
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) {
        let _ = self.socket.shutdown(how);
        self.gone.store(true, Ordering::Relaxed);
        for flag in [self.reader_asleep(self.rx), self.writer_asleep(self.tx)] {
            futex_wake(flag);
        }
        if how == std::net::Shutdown::Both {
            self.wake_peer();
        }
    }

    /// Wakes the peer's sleepers: this side's end is coming.
    fn wake_peer(&self) {
        for flag in [self.reader_asleep(self.tx), self.writer_asleep(self.rx)] {
            futex_wake(flag);
        }
    }

    /// True when bytes wait in the receiving ring (or the peer's position there is impossible,
    /// which the next read reports).
    ///
    /// It changes nothing (another thread may be reading meanwhile), so it may be asked
    /// from any thread.
    pub(crate) fn has_bytes(&self) -> bool {
        if self.rx_len.load(Ordering::Relaxed) != UNSEEN {
            return true;
        }
        self.record_at(self.rx_head.load(Ordering::Relaxed)).map_or(true, |r| r.is_some())
    }

    /// True once the socket reached end-of-stream.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Waits a short, bounded time for bytes in the receiving ring, in place: spins within the
    /// spin budget, then sleeps on the doorbell for at most [`Spin::in_place`]. For a reader
    /// that has another way to wait for longer (an async call, which returns to its executor
    /// and lets the connection's reader thread wait). True when bytes came.
    pub(crate) fn wait_for_bytes(&self) -> bool {
        let budget = self.spin.budget();
        if !budget.is_zero() {
            // A peer that answers within a batch costs no look at the clock.
            for _ in 0..SPIN_BATCH {
                if self.has_bytes() {
                    return true;
                }
                std::hint::spin_loop();
            }
        } else if self.has_bytes() {
            return true;
        }
        let start = Instant::now();
        let mut spun_out = false;
        if !budget.is_zero()
            && let Some(_spinning) = Spinning::enter()
        {
            let mut yielded = start;
            loop {
                for _ in 0..SPIN_BATCH {
                    if self.has_bytes() {
                        self.spin.waited(start.elapsed());
                        self.spin.paid();
                        return true;
                    }
                    std::hint::spin_loop();
                }
                let now = Instant::now();
                if now - start >= budget {
                    spun_out = true;
                    break;
                }
                // As in `wait`: a peer queued behind this spin on its core gets it.
                if now - yielded >= YIELD_EVERY {
                    std::thread::yield_now();
                    yielded = Instant::now();
                }
            }
        }
        let bound = self.spin.in_place();
        if bound.is_zero() {
            if spun_out {
                self.spin.missed();
            }
            return false;
        }
        // The flag is raised and left raised: the connection's reader thread may sleep on the
        // same flag (`sleep_for_bytes`), and the doorbell wakes every sleeper on it. A flag
        // left raised costs at most one doorbell nobody needs.
        let asleep = self.reader_asleep(self.rx);
        asleep.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.has_bytes() && !self.is_gone() {
            futex_wait(asleep, 1, bound);
        }
        let came = self.has_bytes() || self.is_gone();
        // A wait that ran out is a long one: the bound shrinks.
        let w = if came { start.elapsed() } else { Duration::MAX };
        self.spin.waited(w);
        // The same rule as `wait`'s: an answer just after the spin ran out, from a peer that
        // this side did not have to wake, is what a spin that holds up its peer looks like.
        if spun_out && !self.woke_peer.load(Ordering::Relaxed) && w < budget * CONTENTION_FACTOR {
            self.spin.missed();
        }
        came
    }

    /// Counts a wait for bytes that ended after `w` some other way than
    /// [`wait_for_bytes`](Self::wait_for_bytes) (a reply an async call got from the thread
    /// that reads while it sleeps), so that a peer that became fast is spun for again.
    pub(crate) fn waited(&self, w: Duration) {
        self.spin.waited(w);
    }

    /// Sleeps until bytes wait in the receiving ring, the peer is gone, or `bound` passed,
    /// without reading them: for the thread that reads an async connection's replies under a
    /// lock it does not hold while it sleeps. Its flag is raised, so the peer rings the
    /// doorbell. The holder of the lock may wait on the same flag meanwhile (a reply that
    /// streams through the ring) and lower it first: the bound makes such a lost wake-up a
    /// short delay, not a hang.
    pub(crate) fn sleep_for_bytes(&self, bound: Duration) {
        let asleep = self.reader_asleep(self.rx);
        asleep.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.has_bytes() || self.is_gone() {
            asleep.store(0, Ordering::Relaxed);
            return;
        }
        futex_wait(asleep, 1, bound);
        if !self.has_bytes() {
            self.look_at_socket();
        }
    }
}

impl Drop for Channel {
    /// The connection ends: the peer's sleepers are woken to find it (a peer that dies
    /// instead is found at their next look at the socket).
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.wake_peer();
    }
}

/// The most lines past its first that a record has for the writer to ask for all of them
/// before it copies (4 KiB): beyond, the copy streams and the requests only add traffic.
const OWN_FIRST_LINES: usize = 64;
/// The most lines past its first that a record has for the writer to push them out to the
/// shared cache after it copies (1 KiB): beyond, the reader finds them slower there than in
/// the writer's cache, whose prefetchers stream them.
const HAND_OVER_LINES: usize = 16;

/// Cache hints for the lines of a record: they change where a line is, never what it holds,
/// and cannot fault.
mod hint {
    /// Asks for the cache line at `p` in a state this core may write (`PREFETCHW`; a no-op on
    /// processors without it and off x86-64).
    #[inline]
    pub(super) fn own(p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHW is a hint: it reads and writes no memory and does not fault, on
        // any address; its encoding is a NOP on processors that lack it.
        unsafe {
            std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// Moves the cache line at `p` from this core's caches to the shared one (`CLDEMOTE`; a
    /// no-op on processors without it and off x86-64).
    #[inline]
    pub(super) fn demote(p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: CLDEMOTE is a hint: it changes no memory and does not fault; its encoding is
        // a NOP on processors that lack it. `p` lies in the caller's mapping regardless.
        unsafe {
            std::arch::asm!("cldemote [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }
}

/// A side of a hot connection gives its core away (`sched_yield`) once in this many waits.
/// Its waits last well under a microsecond each, so the spin's own yields (every
/// [`YIELD_EVERY`] of one wait) never come, and a thread the scheduler woke onto its core
/// waited for the next tick: a consumer blocked in `get` got the item a `put` gave it 1-5 ms
/// late in 1-2% of the cases while the producer called hot (p99 1.0-2.5 ms, against 49-66 µs
/// with this; 36 µs yielding every 32 waits, which cost 1.9% of a call, against 0.5% here).
const HOT_YIELD_EVERY: u64 = 64;

/// The shortest time between two moves of a connection's server thread off its client's core.
const MOVE_EVERY: Duration = Duration::from_micros(50);

/// Moves the calling thread off core `cpu`, keeping the cores it may run on: it is allowed
/// every core but that one, which migrates it now, then every core again.
fn move_off(cpu: usize) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a zeroed `cpu_set_t` is an empty set (plain bits).
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most `size` bytes into `allowed`, which has them.
    if unsafe { libc::sched_getaffinity(0, size, &mut allowed) } != 0 || cpu >= libc::CPU_SETSIZE as usize {
        return;
    }
    let mut others = allowed;
    // SAFETY: `cpu` is below CPU_SETSIZE, the set's size in bits (checked above).
    unsafe { libc::CPU_CLR(cpu, &mut others) };
    // SAFETY: CPU_COUNT only reads the set.
    if unsafe { libc::CPU_COUNT(&others) } == 0 {
        return;
    }
    // SAFETY: both calls read `size` bytes from sets that have them; they change only the
    // calling thread's affinity, and the second restores what the first narrowed.
    unsafe {
        libc::sched_setaffinity(0, size, &others);
        libc::sched_setaffinity(0, size, &allowed);
    }
}

/// The longest one sleep of [`Channel::wait`] lasts before it looks at the socket: a peer that
/// died without a word (killed) cannot ring the doorbell, so a sleeper learns of it within this
/// long. A thread that sleeps for an hour (a blocked `get`) wakes 10 times a second to look, a
/// few microseconds of CPU each.
const LIVENESS_LOOK: Duration = Duration::from_millis(100);

/// Sleeps in `FUTEX_WAIT` on `word` while it holds `seen`, at most `timeout`. Spurious returns
/// (the word changed first, a signal, the timeout) are the caller's to check.
fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the call's duration (a shared mapping this
    // process holds); `ts` lives across the call; the other arguments are ignored by
    // FUTEX_WAIT. Not FUTEX_PRIVATE_FLAG: the waker is another process.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            0usize,
            0u32,
        );
    }
}

/// Wakes every thread asleep in `FUTEX_WAIT` on `word`, in any process.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only uses its address. Not private:
    // the sleepers may be in another process.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0usize, 0usize, 0u32);
    }
}

/// A spin that ran out counts against spinning (see [`Spin::missed`]) when the answer came
/// within this many times its budget.
const CONTENTION_FACTOR: u32 = 4;

/// How often a spin gives its core to another thread that waits for it (see [`Channel::wait`]).
const YIELD_EVERY: Duration = Duration::from_micros(4);

/// Checks of the ring between two looks at the clock while spinning.
const SPIN_BATCH: u32 = 64;

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the peer broke the shared channel: its position {what}"))
}

fn nanos(t: Option<Duration>) -> u64 {
    t.map_or(u64::MAX, |t| t.as_nanos().min(u64::MAX as u128 - 1) as u64)
}

fn duration(n: u64) -> Option<Duration> {
    (n != u64::MAX).then(|| Duration::from_nanos(n))
}

/// A sealed memfd of `len` bytes: its size can no longer change.
fn memfd(len: usize) -> io::Result<File> {
    // SAFETY: a NUL-terminated name from a literal; the flags are plain integers.
    let fd = unsafe { libc::memfd_create(c"procman-channel".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create, is open, and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len as u64)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl(F_ADD_SEALS) on a descriptor `file` owns; it reads no memory.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Whether this process lets same-host connections use shared memory: not when
/// `PROCMAN_TRANSPORT=socket`.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| !std::env::var("PROCMAN_TRANSPORT").is_ok_and(|v| v.eq_ignore_ascii_case("socket")))
}

/// The adaptive spin budget of one side of a channel.
///
/// Each wait ends after some time `w`. When `w` was short (within the longest spin), the peer
/// answers fast: the budget becomes at least `4w`, enough for the next answer to land while
/// spinning. When `w` was long, spinning did not pay: the budget halves, towards zero, where
/// the side sleeps at once. A wait that slept still measures `w`, so a peer that becomes fast
/// again is spun for again at the next wait. A sleep's `w` also counts the time the kernel took
/// to wake this side, which on a loaded machine can exceed the longest spin by itself: so one
/// wait in [`PROBE_EVERY`] at a zero budget spins for [`PROBE_NS`] all the same, and a peer
/// that answers within it gets its budget back.
///
/// A spin that ran out of budget and had to sleep after all also backs off: the next
/// `backoff` waits sleep at once, and `backoff` doubles (up to [`MAX_BACKOFF`]) until a spin
/// pays again. On a machine whose other cores are busy (other processes, more runnable
/// threads than cores) a spinning side can hold up the very peer it waits for, which then
/// answers just after the spin ends, so `w` alone would keep the budget up; the backoff makes
/// such spins rare, and a spin that pays brings them back at once. Only such spins back off:
/// one whose answer came long after (more than [`CONTENTION_FACTOR`] times the budget: the
/// peer was idle, a burst of calls ended) or after a write that had to wake the peer (whose
/// waking up is no sign of how soon an awake peer answers) does not. Counted, those made a
/// bursty client, or one whose manager slept between its calls, fall into sleeping at every
/// wait, where the two sides wake each other at a wake-up's cost per call.
#[derive(Debug)]
pub(crate) struct Spin {
    budget_ns: AtomicU32,
    /// Waits left that sleep at once.
    skip: AtomicU32,
    /// How many waits the next spin that does not pay skips.
    backoff: AtomicU32,
    /// Waits begun at a zero budget, for the probes of [`budget`](Self::budget).
    idle_waits: AtomicU32,
    /// Waits that asked for [`in_place`](Self::in_place) while the budget was zero.
    probes: AtomicU32,
    /// The longest spin of this budget.
    max_ns: u32,
}

/// How many times the longest spin between frames a wait inside a frame may spin.
const STREAM_SPIN_FACTOR: u32 = 20;

/// One wait in this many at a zero budget spins for [`PROBE_NS`] (and one in this many waits in
/// place, see [`Spin::in_place`]).
const PROBE_EVERY: u32 = 16;
/// The probe's spin, in nanoseconds (capped by the longest spin).
const PROBE_NS: u32 = 2_000;

/// The shortest budget that is not zero.
const MIN_BUDGET_NS: u32 = 1000;

/// The most waits one spin that did not pay makes sleep at once.
const MAX_BACKOFF: u32 = 1024;

impl Spin {
    /// The budget of the waits between frames: up to the longest spin.
    pub(crate) fn new() -> Spin {
        Spin::with_max(max_spin_ns())
    }

    fn with_max(max_ns: u32) -> Spin {
        Spin {
            budget_ns: AtomicU32::new(max_spin_ns()),
            skip: AtomicU32::new(0),
            backoff: AtomicU32::new(1),
            idle_waits: AtomicU32::new(0),
            probes: AtomicU32::new(0),
            max_ns,
        }
    }

    /// The budget of the waits inside a frame: it starts at the longest spin and may grow to
    /// [`STREAM_SPIN_FACTOR`] times it (1 ms by default). When one side sleeps, the other's
    /// next wait lasts as long as the kernel takes to wake it, which on a virtual machine can
    /// exceed the longest spin: with that bound, the two sides would fall into taking turns,
    /// each asleep while the other copies a ring, two sleeps and two doorbells a ring. Measured
    /// waits of that length raise this budget past them, so the stream runs with both awake.
    /// Its spins do not back off (see the type's docs): a peer inside a frame is copying.
    fn streaming() -> Spin {
        Spin::with_max(max_spin_ns().saturating_mul(STREAM_SPIN_FACTOR))
    }

    /// How long the next wait may spin.
    pub(crate) fn budget(&self) -> Duration {
        if cores() < 2 {
            return Duration::ZERO;
        }
        if self.skip.load(Ordering::Relaxed) > 0 {
            self.skip.fetch_sub(1, Ordering::Relaxed);
            return Duration::ZERO;
        }
        self.budget_unskipped()
    }

    /// How long the next wait may spin, for a wait that no backoff applies to.
    pub(crate) fn budget_unskipped(&self) -> Duration {
        if cores() < 2 {
            return Duration::ZERO;
        }
        let mut ns = self.budget_ns.load(Ordering::Relaxed);
        if ns == 0 && self.idle_waits.fetch_add(1, Ordering::Relaxed).is_multiple_of(PROBE_EVERY) {
            ns = PROBE_NS.min(self.max_ns);
        }
        Duration::from_nanos(ns as u64)
    }

    /// A wait ended after `w` (see the type's docs).
    pub(crate) fn waited(&self, w: Duration) {
        let max = self.max_ns;
        let w = w.as_nanos().min(u32::MAX as u128) as u32;
        let cur = self.budget_ns.load(Ordering::Relaxed);
        let next = if w <= max { cur.max(w.saturating_mul(4).min(max)) } else { cur / 2 };
        // A budget shorter than a microsecond catches nothing that a look does not, and a
        // sleep that short costs a timer's whole slack: it is none.
        let next = if next < MIN_BUDGET_NS { 0 } else { next };
        if next != cur {
            self.budget_ns.store(next, Ordering::Relaxed);
        }
    }

    /// How long a side that has another way to wait may sleep in place (see
    /// [`Channel::wait_for_bytes`]): the budget, which the backoff of spins does not zero;
    /// zero once waits have been long.
    pub(crate) fn in_place(&self) -> Duration {
        let budget = self.budget_ns.load(Ordering::Relaxed);
        if budget > 0 {
            return Duration::from_nanos(budget as u64);
        }
        // While it is zero, one wait in `PROBE_EVERY` waits the longest bound all the same: the
        // waits measured elsewhere include the wake-ups of the thread that waits instead, and
        // on a busy machine those alone can keep them long after the peer became fast again.
        if self.probes.fetch_add(1, Ordering::Relaxed).is_multiple_of(PROBE_EVERY) {
            Duration::from_nanos(self.max_ns.min(max_spin_ns()) as u64)
        } else {
            Duration::ZERO
        }
    }

    /// A spin saw what it waited for: spins that ran out are forgiven.
    pub(crate) fn paid(&self) {
        if self.backoff.load(Ordering::Relaxed) != 1 {
            self.backoff.store(1, Ordering::Relaxed);
        }
    }

    /// A spin ran out of budget: the next waits sleep at once (see the type's docs).
    pub(crate) fn missed(&self) {
        let backoff = self.backoff.load(Ordering::Relaxed);
        self.skip.store(backoff, Ordering::Relaxed);
        self.backoff.store((backoff * 2).min(MAX_BACKOFF), Ordering::Relaxed);
    }
}

/// The longest spin: 50 µs, or `PROCMAN_SPIN_US` microseconds (0 never spins).
fn max_spin_ns() -> u32 {
    static MAX: OnceLock<u32> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("PROCMAN_SPIN_US")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(50_000, |us| us.saturating_mul(1000).min(u32::MAX as u64) as u32)
    })
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A place among the threads of this process that spin: no more than it has cores.
pub(crate) struct Spinning;

static SPINNING: AtomicUsize = AtomicUsize::new(0);

impl Spinning {
    pub(crate) fn enter() -> Option<Spinning> {
        if SPINNING.fetch_add(1, Ordering::Relaxed) < cores() {
            Some(Spinning)
        } else {
            SPINNING.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl Drop for Spinning {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The fuzz target `channel`: `data` is what a hostile peer leaves in a channel (the server's
/// receiving ring and its read position in the other ring); the server's reader must return
/// errors or bytes from the ring, never read outside it, and the frames it yields decode or
/// fail like any others.
///
/// The first 8 bytes are the peer's read position; then records, each a 4-byte length (any
/// value: the reader must check it) and what follows, written with valid commit words (a
/// peer holds the channel's secret), until the ring is full. A length whose high bit is set
/// gets a wrong commit word instead: the reader must take it for a record not yet written.
pub(crate) fn fuzz_channel(data: &[u8]) {
    use crate::wire::frames::FrameReader;
    use crate::wire::message::Request;
    let (a, b) = UnixStream::pair().expect("a socket pair");
    let Ok((server, fd)) = Channel::create(a) else { return };
    let client = Channel::open(b, fd, RING as u64).expect("the server's own channel opens");
    let (pos, mut rest) = data.split_at(data.len().min(8));
    let mut word = [0u8; 8];
    word[..pos.len()].copy_from_slice(pos);
    client.head(SERVER_TO_CLIENT).store(u64::from_le_bytes(word), Ordering::Relaxed);
    let base = client.ring_base(CLIENT_TO_SERVER);
    let mut at = 0u64;
    while rest.len() >= 4 && (at as usize) + RECORD_ALIGN <= RING {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        rest = &rest[4..];
        let room = RING - at as usize - RECORD_HEADER;
        let body = &rest[..rest.len().min(len as usize & 0x7fff_ffff).min(room)];
        rest = &rest[body.len()..];
        // SAFETY: `body.len() <= room` bytes into ring 0 of the client's mapping, after the
        // record's header, inside the ring.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), base.add(at as usize + RECORD_HEADER), body.len()) };
        client.ring_word(CLIENT_TO_SERVER, at + 8).store(u64::from(len & 0x7fff_ffff), Ordering::Relaxed);
        let commit = if len & 0x8000_0000 != 0 { !client.commit(at) } else { client.commit(at) };
        client.ring_word(CLIENT_TO_SERVER, at).store(commit, Ordering::Release);
        at += record_size(body.len() as u64);
    }
    drop(client); // the socket's end-of-stream ends the server's reads
    server.set_read_timeout(Some(Duration::from_millis(1)));
    let server = std::sync::Arc::new(server);
    let mut r = FrameReader::new(super::Stream::from_channel(server.clone()), None, 64 * 1024);
    for _ in 0..64 {
        match r.read(None) {
            Ok(true) => {
                let _ = crate::wire::take::<Request<'_>>(r.body());
            }
            _ => break,
        }
    }
    let _ = server.write(&[IoSlice::new(b"reply")]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The most bytes a ring holds: one record of a quarter of it in each quarter.
    const CAPACITY: usize = 4 * (RING / 4 - RECORD_HEADER);

    #[test]
    fn a_record_not_committed_is_not_read_and_stale_bytes_are_no_commit() {
        let (client, server) = pair();
        // Bytes where a record would go, and a length, but a commit word of another lap.
        client.ring_word(CLIENT_TO_SERVER, 8).store(4, Ordering::Relaxed);
        client.ring_word(CLIENT_TO_SERVER, 0).store(client.commit(RING as u64), Ordering::Release);
        assert!(!server.has_bytes());
        assert_eq!(server.available(usize::MAX), 0);
        server.set_read_timeout(Some(Duration::from_millis(20)));
        assert_eq!(server.read(&mut [0u8; 4]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // Many small records are read in one go, and across the ring's end.
        for round in 0..3 * RING / RECORD_ALIGN {
            let byte = [round as u8];
            for _ in 0..3 {
                client.write(&[IoSlice::new(&byte)]).unwrap();
            }
            assert_eq!(server.available(usize::MAX), 3);
            let mut got = [0u8; 8];
            assert_eq!(server.read(&mut got).unwrap(), 3, "three records in one read");
            assert_eq!(got[..3], [round as u8; 3]);
        }
    }

    fn pair() -> (Arc<Channel>, Arc<Channel>) {
        let (a, b) = UnixStream::pair().unwrap();
        let (server, fd) = Channel::create(a).unwrap();
        let client = Channel::open(b, fd, RING as u64).unwrap();
        (Arc::new(client), Arc::new(server))
    }

    fn read_exact(c: &Channel, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match c.read(buf)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    #[test]
    fn bytes_cross_both_ways_and_frames_larger_than_a_ring_stream_through() {
        let (client, server) = pair();
        client.write_all(&[b"ping"]).unwrap();
        let mut got = [0u8; 4];
        read_exact(&server, &mut got).unwrap();
        assert_eq!(&got, b"ping");
        // Three rings' worth each way, with the reader on another thread.
        let big: Vec<u8> = (0..3 * RING + 17).map(|i| (i % 251) as u8).collect();
        let echo = {
            let server = server.clone();
            let len = big.len();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; len];
                read_exact(&server, &mut buf).unwrap();
                server.write_all(&[&buf[..10], &buf[10..]]).unwrap();
            })
        };
        client.write_all(&[&big]).unwrap();
        let mut back = vec![0u8; big.len()];
        read_exact(&client, &mut back).unwrap();
        echo.join().unwrap();
        assert!(back == big, "the bytes came back as they went");
    }

    #[test]
    fn a_reader_asleep_is_woken_by_the_doorbell_and_by_the_peers_end() {
        let (client, server) = pair();
        let s = server.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            let n = s.read(&mut buf).unwrap();
            let end = s.read(&mut buf).unwrap();
            (buf[..n].to_vec(), end)
        });
        std::thread::sleep(Duration::from_millis(100)); // well past any spin: it sleeps
        client.write_all(&[b"late"]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(client); // the last holder: its socket closes
        let (got, end) = t.join().unwrap();
        assert_eq!(got, b"late");
        assert_eq!(end, 0, "end-of-stream once the peer is gone and its bytes are read");
    }

    #[test]
    fn the_bytes_written_before_the_end_are_read_before_it() {
        let (client, server) = pair();
        server.write_all(&[b"goodbye"]).unwrap();
        server.socket().shutdown(std::net::Shutdown::Both).unwrap();
        let mut buf = [0u8; 7];
        read_exact(&client, &mut buf).unwrap();
        assert_eq!(&buf, b"goodbye");
        assert_eq!(client.read(&mut buf).unwrap(), 0);
        let e = client.write_all(&[&vec![0u8; 2 * RING]]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "a full ring to a gone peer fails");
    }

    #[test]
    fn a_writer_whose_doorbell_another_thread_took_still_writes() {
        let (client, server) = pair();
        client.write_all(&[&vec![7u8; CAPACITY]]).unwrap(); // the ring is full
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let client = client.clone();
            std::thread::spawn(move || {
                client.write_all(&[b"more"]).unwrap();
                done.send(()).unwrap();
            })
        };
        // Once the writer sleeps, the server frees the ring, and its doorbell goes to another
        // thread of the client's side (its flag lowered, no byte left for the writer): what an
        // async connection's reader thread draining the shared socket does.
        let flag = client.writer_asleep(CLIENT_TO_SERVER);
        let start = Instant::now();
        while flag.load(Ordering::Relaxed) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "the writer never slept");
            std::thread::sleep(Duration::from_millis(1));
        }
        flag.store(0, Ordering::Relaxed);
        let mut buf = vec![0u8; CAPACITY];
        // Read without the doorbell: what the server's read publishes, with the flag lowered.
        read_exact(&server, &mut buf).unwrap();
        finished
            .recv_timeout(Duration::from_secs(5))
            .expect("a writer whose doorbell was taken wakes by itself and writes");
        writer.join().unwrap();
    }

    #[test]
    fn a_read_timeout_ends_a_wait_with_would_block() {
        let (client, _server) = pair();
        client.set_read_timeout(Some(Duration::from_millis(30)));
        let start = Instant::now();
        let e = client.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn impossible_positions_from_the_peer_are_errors_not_reads_outside_the_ring() {
        let (client, server) = pair();
        // A committed record longer than the ring.
        client.ring_word(CLIENT_TO_SERVER, 8).store(RING as u64, Ordering::Relaxed);
        client.ring_word(CLIENT_TO_SERVER, 0).store(client.commit(0), Ordering::Release);
        let e = server.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        client.head(SERVER_TO_CLIENT).store(1, Ordering::Relaxed); // read before written
        // The writer looks at the peer's position when the space it last saw does not suffice.
        let e = server.write_all(&[&vec![0u8; RING + 1]]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn a_client_refuses_a_channel_it_could_lose_pages_of() {
        let (_, b) = UnixStream::pair().unwrap();
        // SAFETY: a NUL-terminated literal name; plain flags.
        let fd = unsafe { libc::memfd_create(c"unsealed".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is open and owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len((HEADER + 2 * RING) as u64).unwrap();
        let e = Channel::open(b, file.into(), RING as u64).unwrap_err();
        assert!(e.to_string().contains("not sealed"), "{e}");
    }

    #[test]
    fn the_spin_budget_follows_the_peer() {
        let s = Spin::new();
        let max = max_spin_ns();
        for _ in 0..20 {
            s.waited(Duration::from_millis(5));
        }
        assert_eq!(s.budget_ns.load(Ordering::Relaxed), 0, "a slow peer is slept for");
        s.waited(Duration::from_nanos(800));
        assert_eq!(s.budget_ns.load(Ordering::Relaxed), 3200.min(max), "a fast one is spun for again");
    }

    #[test]
    fn spins_that_run_out_back_off_until_one_pays() {
        if cores() < 2 {
            return;
        }
        let s = Spin::new();
        let skipped = |s: &Spin| (0..4096).take_while(|_| s.budget().is_zero()).count();
        // Each spin that runs out makes twice as many of the next waits sleep at once.
        let mut runs = Vec::new();
        for _ in 0..4 {
            s.missed();
            runs.push(skipped(&s));
        }
        assert_eq!(runs, [1, 2, 4, 8]);
        for _ in 0..20 {
            s.missed();
            let _ = skipped(&s);
        }
        s.missed();
        assert_eq!(skipped(&s), MAX_BACKOFF as usize, "the backoff is bounded");
        // One spin that pays forgives them all.
        s.paid();
        s.missed();
        assert_eq!(skipped(&s), 1);
    }

    #[test]
    fn waits_inside_a_stream_leave_the_budget_between_frames_as_it_is() {
        let (client, server) = pair();
        let before = client.spin.budget_ns.load(Ordering::Relaxed);
        let reader = {
            let server = server.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100)); // the writer fills the ring and waits
                let mut buf = vec![0u8; 3 * RING];
                read_exact(&server, &mut buf).unwrap();
                buf
            })
        };
        let big: Vec<u8> = (0..3 * RING).map(|i| (i % 253) as u8).collect();
        client.write_all(&[&big]).unwrap();
        assert!(reader.join().unwrap() == big);
        assert_eq!(client.spin.budget_ns.load(Ordering::Relaxed), before, "a long wait for space is not a slow answer");
    }

    #[test]
    fn a_wait_inside_a_frame_as_long_as_a_wake_up_is_spun_for_next_time() {
        let max = max_spin_ns();
        let (between, inside) = (Spin::new(), Spin::streaming());
        for s in [&between, &inside] {
            s.waited(Duration::from_nanos(6 * u64::from(max))); // a peer that slept, then woke
        }
        assert_eq!(between.budget_ns.load(Ordering::Relaxed), max / 2, "between frames: a slow answer");
        assert_eq!(
            inside.budget_ns.load(Ordering::Relaxed),
            max.saturating_mul(24).min(max.saturating_mul(STREAM_SPIN_FACTOR)),
            "inside a frame: spun past next time"
        );
        for _ in 0..40 {
            inside.waited(Duration::from_secs(1)); // a peer that stopped inside a frame
        }
        assert_eq!(inside.budget_ns.load(Ordering::Relaxed), 0, "a stopped peer is slept for");
    }

    #[test]
    fn a_spin_budget_at_zero_probes_now_and_then() {
        let s = Spin::new();
        for _ in 0..20 {
            s.waited(Duration::from_millis(5));
        }
        let budgets: Vec<Duration> = (0..2 * PROBE_EVERY).map(|_| s.budget()).collect();
        let probes = budgets.iter().filter(|b| !b.is_zero()).count();
        if cores() >= 2 && max_spin_ns() > 0 {
            assert_eq!(probes, 2, "one wait in {PROBE_EVERY} spins: {budgets:?}");
        } else {
            assert_eq!(probes, 0, "no spin without a second core");
        }
        assert_eq!(s.budget_ns.load(Ordering::Relaxed), 0, "a probe alone restores nothing");
    }

    /// Frames through a channel, as the connections read and write them: straight into the
    /// body, and a frame that has begun must end by the frame timeout.
    #[test]
    fn the_hinted_lines_of_a_record_are_its_lines_past_the_first_inside_the_ring() {
        let (a, _b) = UnixStream::pair().unwrap();
        let (c, _fd) = Channel::create(a).unwrap();
        for tail in (0..RING as u64 * 2).step_by(RECORD_ALIGN * 7) {
            for len in [0, 1, 47, 48, 49, 111, 112, 113, 1024, 4096, 4097] {
                let at = c.offset(tail);
                let lines: Vec<usize> = c.lines_past_first(tail, len).collect();
                // Every line the record occupies past its first, up to the end of the ring.
                let end = (at + RECORD_HEADER + len).min(RING);
                let expected: Vec<usize> = (at + RECORD_ALIGN..end).step_by(RECORD_ALIGN).collect();
                assert_eq!(lines, expected, "a record of {len} bytes at {tail}");
                assert!(lines.iter().all(|&l| l < RING && l % RECORD_ALIGN == 0));
            }
        }
    }

    #[test]
    fn small_records_of_every_length_cross_many_laps_intact() {
        // Lengths from 1 to 1,100 bytes, some records straddling the end of the ring: the
        // sizes the writer's cache hints are for.
        let (a, b) = UnixStream::pair().unwrap();
        let (server, fd) = Channel::create(a).unwrap();
        let client = Channel::open(b, fd, RING as u64).unwrap();
        let lengths: Vec<usize> = (0..3000).map(|i| 1 + (i * 37) % 1100).collect();
        let expected: usize = lengths.iter().sum();
        let sent = lengths.clone();
        let writer = std::thread::spawn(move || {
            for (i, n) in sent.into_iter().enumerate() {
                let bytes: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
                client.write_all(&[&bytes]).unwrap();
            }
        });
        let mut got = Vec::with_capacity(expected);
        let mut buf = vec![0u8; 4096];
        while got.len() < expected {
            let n = server.read(&mut buf).unwrap();
            assert!(n > 0, "the channel ended early");
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        let mut at = 0;
        for (i, n) in lengths.into_iter().enumerate() {
            let want: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
            assert!(got[at..at + n] == want[..], "record {i} of {n} bytes");
            at += n;
        }
    }

    #[test]
    fn frames_of_every_size_read_through_a_channel_as_through_a_socket() {
        use crate::wire::Bytes;
        use crate::wire::frames::{FrameReader, FrameWriter, ReadError};
        let sizes = [0, 8, 1024, RING / 4 - 3, RING / 4 + 1, 64 << 10, 3 * RING + 17, 5, 1 << 20, 1];
        let payload = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 7 % 251) as u8).collect() };
        let expected: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| {
                let mut f = Vec::new();
                crate::wire::frame(&("head", Bytes(&payload(n))), &mut f).unwrap();
                f[4..].to_vec()
            })
            .collect();
        let mut by_channel = Vec::new();
        let mut by_socket = Vec::new();
        for shm in [true, false] {
            let (a, b) = UnixStream::pair().unwrap();
            let (tx, rx) = if shm {
                let (server, fd) = Channel::create(a).unwrap();
                let client = Channel::open(b, fd, RING as u64).unwrap();
                (
                    super::super::Stream::from_channel(Arc::new(client)),
                    super::super::Stream::from_channel(Arc::new(server)),
                )
            } else {
                (
                    super::super::Stream(super::super::Backend::Unix(a)),
                    super::super::Stream(super::super::Backend::Unix(b)),
                )
            };
            let writer = std::thread::spawn(move || {
                let mut w = FrameWriter::new(tx, None);
                for n in sizes {
                    let tail = payload(n);
                    w.encode_with_tail(&("head", tail.len()), tail.len()).unwrap();
                    w.send_with_tails(&tail, &[]).unwrap();
                }
                // Half a frame, then nothing: the reader gives up at the frame timeout.
                w.send_raw(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            });
            let mut r = FrameReader::new(rx, None, 2 << 20).with_frame_timeout(Duration::from_millis(100));
            let got = if shm { &mut by_channel } else { &mut by_socket };
            for _ in sizes {
                assert!(r.read(None).unwrap());
                got.push(r.body().to_vec());
            }
            assert!(matches!(r.read(None), Err(ReadError::Deadline)), "a frame cut short is not waited for");
            writer.join().unwrap();
        }
        assert!(by_channel == expected, "the channel's frames are the frames written");
        assert!(by_socket == expected, "the socket's frames are the frames written");
    }

    #[test]
    fn the_fuzz_entry_takes_its_seeds() {
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff; 16],
            [&[0u8; 8][..], &[9, 0, 0, 0], &[5, 0, 0, 0, 13, 0, 0, 0, 0]].concat(),
            [&[0u8; 8][..], &[4, 0, 0, 0], &[5, 0, 0, 0], &[2, 0, 0, 0], &[13, 0]].concat(),
            [&[0u8; 8][..], &[4, 0, 0, 128], &[5, 0, 0, 0], &[0xff, 0xff, 0xff, 0x7f]].concat(),
        ];
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/channel");
        if let Ok(dir) = std::fs::read_dir(seeds) {
            inputs.extend(dir.filter_map(|e| std::fs::read(e.ok()?.path()).ok()));
        }
        for input in inputs {
            fuzz_channel(&input);
        }
    }
}
