//! Linux system calls used by the arena and the process-shared primitives.
//!
//! Every `unsafe` block that talks to the kernel lives here, behind safe functions whose
//! arguments cannot make the call unsound: futexes take `&AtomicU32` (so the address is valid and
//! aligned for the whole call), file descriptors are owned by `std::fs::File`.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// `FUTEX_WAIT` without `FUTEX_PRIVATE_FLAG`: the word lives in a `MAP_SHARED` mapping and other
/// processes wake us through their own mapping of the same page.
const FUTEX_WAIT: libc::c_int = 0;
/// `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`, for the same reason.
const FUTEX_WAKE: libc::c_int = 1;

/// Why [`futex_wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken by `FUTEX_WAKE` (or spuriously).
    Woken,
    /// The word did not hold `expected` when the kernel checked it.
    Changed,
    /// The timeout expired.
    TimedOut,
    /// Interrupted by a signal.
    Interrupted,
}

/// Sleeps while `*word == expected`, for at most `timeout` (forever if `None`).
///
/// Callers re-check their condition whatever the result; the result only refines it (was this
/// a timeout?).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, 4-byte aligned `AtomicU32` for the duration of the call (it is
    // borrowed), `ts_ptr` is null or points to a `timespec` on this stack frame, and FUTEX_WAIT
    // only reads both. The kernel compares the word atomically; no Rust memory is written.
    let r = unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), FUTEX_WAIT, expected, ts_ptr, std::ptr::null::<u32>(), 0u32)
    };
    if r == 0 {
        return Wake::Woken;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Wake::Changed,
        Some(libc::ETIMEDOUT) => Wake::TimedOut,
        _ => Wake::Interrupted,
    }
}

/// Wakes at most `n` waiters sleeping on `word` in any process. Returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: `word` is a live, aligned `AtomicU32`; FUTEX_WAKE only uses its address as a key
    // and touches no user memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    r.max(0) as usize
}

/// Creates an anonymous, close-on-exec memory file of `len` bytes with `memfd_create`.
///
/// Nothing appears in `/dev/shm`; the kernel frees the memory when the last descriptor is closed
/// and the last mapping is gone, whatever way the processes end.
pub(crate) fn memfd_create(name: &str, len: u64) -> io::Result<File> {
    let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; the flags are
    // plain integers.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create, is open, and nothing else owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len)?;
    Ok(file)
}

/// 16 random bytes from the kernel (`getrandom`), for arena ids.
pub(crate) fn random_u128() -> io::Result<u128> {
    let mut buf = [0u8; 16];
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes for the whole call.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += r as usize;
    }
    Ok(u128::from_ne_bytes(buf))
}

/// Bumped in the child after `fork`, so cached thread identities are re-read there.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Async-signal-safe: a single atomic increment.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread as a lock owner: its kernel thread id and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadIdentity {
    /// Process id.
    pub(crate) pid: u32,
    /// Kernel thread id (unique system-wide among live threads; the main thread's equals the pid).
    pub(crate) tid: u32,
    /// Start time of the thread (clock ticks since boot, low 32 bits), to tell a reused tid apart.
    pub(crate) start: u32,
}

thread_local! {
    static IDENTITY: Cell<Option<(u64, ThreadIdentity)>> = const { Cell::new(None) };
}

/// The identity of the calling thread, cached per thread (re-read after `fork`).
#[inline]
pub(crate) fn current_thread() -> ThreadIdentity {
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    if let Some((g, id)) = IDENTITY.with(Cell::get)
        && g == generation
    {
        return id;
    }
    current_thread_slow(generation)
}

#[cold]
fn current_thread_slow(generation: u64) -> ThreadIdentity {
    ATFORK.call_once(|| {
        // SAFETY: registering a child handler that only performs an atomic increment; the
        // handler is a plain `extern "C" fn` with 'static lifetime.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    let start = match thread_state(tid) {
        ThreadState::Alive { start } => start,
        ThreadState::Dead => 0,
    };
    let id = ThreadIdentity { pid: std::process::id(), tid, start };
    IDENTITY.with(|c| c.set(Some((generation, id))));
    id
}

/// Whether a kernel thread exists and can still run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ThreadState {
    /// Running or sleeping; `start` is the low 32 bits of its start time.
    Alive {
        /// Start time in clock ticks since boot, low 32 bits.
        start: u32,
    },
    /// Gone, or a zombie that will never run again.
    Dead,
}

/// Reads `/proc/<tid>/stat` to tell whether thread `tid` still runs, and since when.
///
/// A missing entry, a zombie (`Z`) or a dead (`X`/`x`) task count as dead: a SIGKILLed process
/// that its parent has not reaped yet is a zombie, and `kill(pid, 0)` would still succeed on it.
pub(crate) fn thread_state(tid: u32) -> ThreadState {
    if tid == 0 {
        return ThreadState::Dead;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else {
        // ENOENT (gone) or ESRCH (exited while we opened it). Permission problems cannot happen
        // for /proc/<pid>/stat, which is world-readable.
        return ThreadState::Dead;
    };
    // The command name (field 2) is in parentheses and may contain spaces; parse after the last ')'.
    let Some(close) = stat.rfind(')') else {
        return ThreadState::Dead;
    };
    let mut fields = stat[close + 1..].split_ascii_whitespace();
    let state = fields.next().unwrap_or("X");
    if matches!(state, "Z" | "X" | "x") {
        return ThreadState::Dead;
    }
    // Field 3 is the state; starttime is field 22, i.e. the 19th after the state.
    let start = fields.nth(18).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    ThreadState::Alive { start: start as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_thread_is_alive_with_matching_start() {
        let me = current_thread();
        assert_eq!(thread_state(me.tid), ThreadState::Alive { start: me.start });
        let other = std::thread::spawn(current_thread).join().unwrap();
        assert_ne!(other.tid, me.tid);
        // The thread has exited: its tid no longer names a running thread of ours. `join`
        // returns when the thread clears its tid, a moment before the kernel reaps it, so the
        // entry may linger briefly.
        let gone_by = std::time::Instant::now() + Duration::from_secs(2);
        while thread_state(other.tid) == (ThreadState::Alive { start: other.start })
            && std::time::Instant::now() < gone_by
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_ne!(thread_state(other.tid), ThreadState::Alive { start: other.start });
    }

    #[test]
    fn futex_wait_times_out_and_returns_on_mismatch() {
        let w = AtomicU32::new(5);
        let t = std::time::Instant::now();
        assert_eq!(futex_wait(&w, 5, Some(Duration::from_millis(20))), Wake::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(15));
        assert_eq!(futex_wait(&w, 4, None), Wake::Changed);
        assert_eq!(futex_wake(&w, 1), 0);
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_u128().unwrap(), random_u128().unwrap());
    }
}
