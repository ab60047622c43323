//! A signal-handler writer for integration tests: a signaller thread sends
//! SIGUSR1 to the writer thread at a steady rate, and the handler writes a
//! verified event into the writer's ring through `nested_writer`, nesting
//! into whatever the writer thread was doing.
#![allow(dead_code)]

use super::fill;
use ringtrace_ring::{RingBuffer, WriteError};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

/// Payload kind of events written by the handler.
pub const NESTED: u8 = 2;

static BUF: AtomicPtr<RingBuffer> = AtomicPtr::new(std::ptr::null_mut());
static RING: AtomicUsize = AtomicUsize::new(0);
/// Next sequence number of a handler event.
pub static SEQ: AtomicU64 = AtomicU64::new(0);
/// Handler writes that landed.
pub static OK: AtomicU64 = AtomicU64::new(0);
/// Handler writes refused because recording was off or the ring disabled.
pub static REFUSED: AtomicU64 = AtomicU64::new(0);
/// Handler writes dropped (full, commit overrun, nesting).
pub static LOST: AtomicU64 = AtomicU64::new(0);
/// Other errors (must stay 0).
pub static OTHER: AtomicU64 = AtomicU64::new(0);
/// The shared clock of every writer in the test.
pub static CLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    // const-initialised, no destructor: safe to touch in a handler.
    static IS_WRITER: Cell<bool> = const { Cell::new(false) };
}

static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that use the handler.
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

extern "C" fn on_usr1(_: libc::c_int) {
    // SAFETY: errno is thread-local; saved and restored around the handler.
    let errno = unsafe { *libc::__errno_location() };
    let buf = BUF.load(Acquire);
    if IS_WRITER.with(|w| w.get()) && !buf.is_null() {
        let seq = SEQ.fetch_add(1, Relaxed);
        let mut payload = [0u8; 64];
        let len = 24 + (seq % 37) as usize;
        fill(&mut payload[..len], NESTED, seq, 0);
        // SAFETY: BUF points to a buffer that outlives the signaller (see
        // `Signaller::drop`); this handler interrupts the thread holding the
        // ring's writer and completes before that thread resumes.
        let buf = unsafe { &*buf };
        // SAFETY: as above.
        match unsafe { buf.nested_writer(RING.load(Relaxed)) } {
            Ok(mut w) => match w.write(CLOCK.fetch_add(1, Relaxed), &payload[..len]) {
                Ok(()) => OK.fetch_add(1, Relaxed),
                Err(WriteError::Disabled) => REFUSED.fetch_add(1, Relaxed),
                Err(WriteError::Full | WriteError::CommitOverrun | WriteError::NestTooDeep) => {
                    LOST.fetch_add(1, Relaxed)
                }
                Err(_) => OTHER.fetch_add(1, Relaxed),
            },
            Err(_) => OTHER.fetch_add(1, Relaxed),
        };
    }
    // SAFETY: restore errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Marks the current thread as the ring's writer: signals it receives write.
pub fn become_writer() -> libc::pthread_t {
    IS_WRITER.with(|w| w.set(true));
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() }
}

/// Sends SIGUSR1 to a writer thread every `period` until dropped.
pub struct Signaller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Signaller {
    /// Starts signalling `target` (a thread that called `become_writer`,
    /// writing ring `ring` of `buf`). `buf` must outlive the signaller.
    pub fn start(buf: &RingBuffer, ring: usize, target: libc::pthread_t, period: Duration) -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // SAFETY: installs a handler that only does async-signal-safe work.
            unsafe { super::install_handler(libc::SIGUSR1, on_usr1) };
        });
        for c in [&SEQ, &OK, &REFUSED, &LOST, &OTHER] {
            c.store(0, Relaxed);
        }
        RING.store(ring, Relaxed);
        BUF.store(buf as *const RingBuffer as *mut RingBuffer, Release);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let target = target as usize;
        let thread = std::thread::spawn(move || {
            let mut sent = 0;
            while !s.load(Relaxed) {
                // SAFETY: the target thread is alive until the signaller is
                // stopped (the test joins it after dropping us).
                unsafe { libc::pthread_kill(target as libc::pthread_t, libc::SIGUSR1) };
                sent += 1;
                std::thread::sleep(period);
            }
            sent
        });
        Signaller {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops signalling; returns how many signals were sent.
    pub fn stop(mut self) -> u64 {
        self.finish()
    }

    fn finish(&mut self) -> u64 {
        self.stop.store(true, Relaxed);
        let sent = self.thread.take().map_or(0, |t| t.join().unwrap());
        BUF.store(std::ptr::null_mut(), Release);
        sent
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        self.finish();
    }
}
