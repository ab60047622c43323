//! Shared test helpers: the payload pattern and the checks every test runs.
#![allow(dead_code)]

use ringtrace_ring::{Config, Mode, RingBuffer, RingStats};

/// Payload of `len >= 24` bytes: kind, length, seq, reference, pattern.
pub fn fill(buf: &mut [u8], kind: u8, seq: u64, reference: u64) {
    let len = buf.len();
    assert!(len >= 24);
    buf[0] = kind;
    buf[1..4].fill(0);
    buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..24].copy_from_slice(&reference.to_le_bytes());
    for (i, b) in buf.iter_mut().enumerate().skip(24) {
        *b = pattern(kind, seq, i);
    }
}

fn pattern(kind: u8, seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(131)
        .wrapping_add(i as u64 * 7)
        .wrapping_add(u64::from(kind) * 17)) as u8
}

/// A decoded, verified payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Who wrote it (test-defined).
    pub kind: u8,
    /// Sequence number.
    pub seq: u64,
    /// Test-defined reference (a ring, or the event a nested write interrupted).
    pub reference: u64,
}

/// Verifies every byte of a payload read back (rounded up to 4 bytes).
pub fn check(read: &[u8]) -> Result<Decoded, String> {
    if read.len() < 24 {
        return Err(format!("payload of {} bytes is too short", read.len()));
    }
    let kind = read[0];
    let len = u32::from_le_bytes(read[4..8].try_into().unwrap()) as usize;
    let seq = u64::from_le_bytes(read[8..16].try_into().unwrap());
    let reference = u64::from_le_bytes(read[16..24].try_into().unwrap());
    if read.len() != (len + 3) & !3 {
        return Err(format!(
            "seq {seq}: read {} bytes for a {len}-byte payload",
            read.len()
        ));
    }
    for (i, &b) in read.iter().enumerate().take(len).skip(24) {
        if b != pattern(kind, seq, i) {
            return Err(format!("seq {seq} kind {kind}: byte {i} is {b}"));
        }
    }
    if read[len..].iter().any(|&b| b != 0) {
        return Err(format!("seq {seq}: alignment tail not zero"));
    }
    Ok(Decoded {
        kind,
        seq,
        reference,
    })
}

/// The accounting identity, from independent counts: `committed` comes from
/// the writer's pages, `read` from the reader, `overrun`, `dropped` and
/// `commit_overrun` from the slow paths, and `buffered` is what the test
/// itself drained after taking `s` (0 when `s` was taken after a full drain).
/// (`RingStats::entries` is derived from the others, so an identity written
/// with it could not fail.)
pub fn assert_identity(s: &RingStats, buffered: u64) {
    assert_eq!(s.committed, s.read + s.overrun + buffered, "{s:?}");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + buffered,
        "{s:?}"
    );
    assert_eq!(s.entries, buffered, "{s:?}");
    assert_eq!(s.corruptions, 0, "{s:?}");
}

/// Drains ring `ring`, returning (decoded, timestamp, lost) per event.
pub fn drain(buf: &RingBuffer, ring: usize) -> Vec<(Decoded, u64, u64)> {
    let mut c = buf.consumer(ring).unwrap();
    let mut out = vec![];
    while let Some(ev) = c.consume().unwrap() {
        out.push((check(ev.payload).unwrap(), ev.timestamp, ev.lost_events));
    }
    out
}

/// Consumes ring 0 of `buf` in passes of at most `per_pass` events until
/// `done` is set and a pass finds the ring empty: each event goes to
/// `on_event` with its payload checked; `between` runs after each pass with
/// whether it read anything, the reader lock released. Returns the losses
/// still pending at the end.
pub fn consume_until_done(
    buf: &RingBuffer,
    done: &std::sync::atomic::AtomicBool,
    per_pass: usize,
    mut on_event: impl FnMut(&ringtrace_ring::Event<'_>, Decoded),
    mut between: impl FnMut(bool),
) -> u64 {
    loop {
        // Acquire: pairs with the Release store of `done` by the test's
        // writer side, so a pass begun after it sees every event written.
        let finished = done.load(std::sync::atomic::Ordering::Acquire);
        let mut c = buf.consumer(0).unwrap();
        let mut any = false;
        for _ in 0..per_pass {
            let Some(ev) = c.consume().unwrap() else {
                break;
            };
            any = true;
            let d = check(ev.payload).unwrap();
            on_event(&ev, d);
        }
        if finished && !any {
            return c.pending_losses();
        }
        drop(c);
        between(any);
    }
}

/// The result of one write of a loop that writes until told to stop: a
/// write refused as `Full` counts in `refused` and yields, to let the reader
/// catch up (not `sleep`: with frequent signals and a slow handler, a
/// nanosleep restarted after each signal may never end); any other error
/// fails the test, naming the write `what()`. Returns what a landed write
/// gave.
pub fn refused_if_full<T>(
    result: Result<T, ringtrace_ring::WriteError>,
    refused: &mut u64,
    what: impl FnOnce() -> String,
) -> Option<T> {
    match result {
        Ok(landed) => Some(landed),
        Err(ringtrace_ring::WriteError::Full) => {
            *refused += 1;
            std::thread::yield_now();
            None
        }
        Err(e) => panic!("{} failed: {e}", what()),
    }
}

pub mod cases;
pub mod load;
pub mod mixed;
pub mod sigwriter;

/// How long a test waits for a state it needs before it calls itself hung.
/// A hang guard only, never a performance bound: a test loops until its
/// condition (a count of events, passes, signals) is reached, however slow
/// the machine, and this is minutes beyond any plausible load.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(300);

/// Fails a test that has waited [`HANG_GUARD`] for `what`, with the
/// diagnostics `state` gives; the tests' loops call `check` once a turn.
pub struct Hang {
    start: std::time::Instant,
    what: &'static str,
}

impl Hang {
    /// Starts guarding a wait for `what`.
    pub fn guard(what: &'static str) -> Hang {
        Hang {
            start: std::time::Instant::now(),
            what,
        }
    }

    /// Panics with `state()` once the guard has expired.
    pub fn check(&self, state: impl FnOnce() -> String) {
        if self.start.elapsed() > HANG_GUARD {
            panic!(
                "hung: waited {HANG_GUARD:?} for {} (a hang guard, not a time budget): {}",
                self.what,
                state()
            );
        }
    }
}

/// A buffer with a `'static` address for writer threads and signal
/// handlers, freed when dropped (after the test has joined its threads).
pub struct Static(&'static RingBuffer);

impl Static {
    /// Allocates the buffer.
    pub fn new(config: ringtrace_ring::Config) -> Static {
        Static(Box::leak(Box::new(RingBuffer::new(config).unwrap())))
    }

    /// The buffer.
    pub fn get(&self) -> &'static RingBuffer {
        self.0
    }
}

impl Drop for Static {
    fn drop(&mut self) {
        // SAFETY: the reference came from `Box::leak` in `new`; the threads
        // and handlers that used it have stopped (the tests join them and
        // stop their signallers first).
        drop(unsafe { Box::from_raw(self.0 as *const RingBuffer as *mut RingBuffer) });
    }
}

/// One ring of `pages` pages in producer/consumer mode (nothing is
/// overwritten: a full ring refuses writes).
pub fn one_ring_producer_consumer(pages: usize) -> RingBuffer {
    RingBuffer::new(
        Config::new(1)
            .pages_per_ring(pages)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap()
}

/// Installs `handler` for `signal` with `SA_RESTART` and an empty mask
/// (other signals nest in it; the same one does not), asserting it took.
///
/// # Safety
///
/// `handler` must be async-signal-safe: touch only atomics, `const`
/// thread-locals without destructors and the ring's write path, and save
/// and restore `errno`.
pub unsafe fn install_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed `sigaction` is a valid value; the caller vouches for
    // the handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(signal, &sa, std::ptr::null_mut()), 0);
    }
}

/// Blocks (`how` = `SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) `signals` for
/// the calling thread only.
pub fn mask_signals(how: libc::c_int, signals: impl IntoIterator<Item = libc::c_int>) {
    // SAFETY: plain system calls on a local signal set; changes this
    // thread's signal mask only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}
