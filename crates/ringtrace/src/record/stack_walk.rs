//! The signal-safe stack walk behind stack traces on events (ftrace's
//! `userstacktrace` option): return addresses only, by frame pointers.
//!
//! # Terms
//!
//! - **Frame record**: what a function built with frame pointers pushes on
//!   entry: the caller's frame pointer at `fp`, the return address at
//!   `fp + 8` (x86-64 `push rbp; mov rbp, rsp`; AArch64 `stp x29, x30`).
//! - **Stack bounds**: the ranges of this thread's memory a frame record
//!   may lie in: the thread's stack and its alternate signal stack. Taken
//!   once per thread by [`init_thread`], in ordinary code (glibc's
//!   `pthread_getattr_np` allocates and, for the main thread, reads
//!   `/proc/self/maps`), kept in a destructor-free `const` thread-local a
//!   signal handler may read.
//!
//! # Contract
//!
//! [`walk`] takes no lock, allocates nothing, makes no system call and
//! never faults: before a frame record is read, its 16 bytes are checked to
//! lie inside one of the thread's stack ranges, and every one of those
//! bytes is mapped:
//!
//! ```text
//! other threads  [lo, hi) from pthread_attr_getstack: one mapping, all of it
//! main thread    [sp at init_thread, hi): the kernel grows the [stack] mapping
//!                down and never shrinks it; while the walk runs on that stack,
//!                down to the walk's own stack pointer (mapped: in use)
//! alt stack      [ss_sp, ss_sp + ss_size) from sigaltstack at init_thread
//! ```
//!
//! Within one range frames must move strictly up (callers' frames are above
//! their callees'), so a corrupt chain ends the walk instead of looping;
//! the depth is bounded by the output slice. A walk from a signal handler
//! runs from the handler's frames into the interrupted code's (the kernel
//! enters the handler with the interrupted frame pointer, which the
//! handler's prologue saves), crossing from the alternate stack to the
//! thread's. A thread with no bounds yet (a handler on a thread that never
//! recorded in ordinary code), or code without frame pointers, gives a
//! short or empty walk, never a fault: callers count an empty walk.
//!
//! Without `-C force-frame-pointers=yes` the chain stops at the first
//! function that uses the frame-pointer register for something else (its
//! "frame pointer" then fails the checks above).

use std::cell::Cell;

/// Size of a frame record: saved frame pointer, return address.
const RECORD: usize = 2 * std::mem::size_of::<usize>();

/// The stack ranges of one thread (empty ranges: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub struct StackBounds {
    /// Lowest address of the thread's stack known to be mapped for good.
    pub lo: usize,
    /// Lowest address of the thread's stack as pthread reports it (the main
    /// thread's may not be mapped yet below `lo`).
    pub lo_full: usize,
    /// One past the highest address of the thread's stack.
    pub hi: usize,
    /// The alternate signal stack, `[alt_lo, alt_hi)`; empty if none.
    pub alt_lo: usize,
    /// One past its end.
    pub alt_hi: usize,
}

impl StackBounds {
    /// No ranges: every walk is empty.
    pub const EMPTY: StackBounds = StackBounds {
        lo: 0,
        lo_full: 0,
        hi: 0,
        alt_lo: 0,
        alt_hi: 0,
    };

    /// Which range holds the whole frame record at `fp` (1 the thread's
    /// stack, whose floor is `thread_lo`; 2 the alternate stack), if any.
    #[inline(always)]
    fn range_of(&self, fp: usize, thread_lo: usize) -> Option<u8> {
        let end = fp.checked_add(RECORD)?;
        if fp >= thread_lo && end <= self.hi {
            Some(1)
        } else if fp >= self.alt_lo && end <= self.alt_hi {
            Some(2)
        } else {
            None
        }
    }
}

thread_local! {
    /// This thread's stack ranges. `const`, no destructor: a signal
    /// handler may read it (module docs). Written by `init_thread` only,
    /// in ordinary code.
    static BOUNDS: Cell<StackBounds> = const { Cell::new(StackBounds::EMPTY) };
}

/// Whether this thread's stack bounds are taken (a plain TLS read).
#[inline]
pub fn thread_ready() -> bool {
    BOUNDS.with(|b| b.get().hi != 0)
}

/// Takes this thread's stack bounds, once. Ordinary code only: it may
/// allocate (glibc reads `/proc/self/maps` for the main thread). Returns
/// whether bounds are known.
pub fn init_thread() -> bool {
    if thread_ready() {
        return true;
    }
    let Some((lo_full, hi)) = pthread_stack() else {
        return false;
    };
    // SAFETY: getpid and gettid take no arguments and cannot fail.
    let main = unsafe { libc::getpid() == libc::gettid() };
    let here = current_sp();
    let lo = if main {
        // Mapped for good from the page of the current stack pointer up.
        (here & !(page_size() - 1)).max(lo_full)
    } else {
        lo_full
    };
    let (alt_lo, alt_hi) = alt_stack().unwrap_or((0, 0));
    BOUNDS.with(|b| {
        b.set(StackBounds {
            lo,
            lo_full,
            hi,
            alt_lo,
            alt_hi,
        })
    });
    true
}

/// The thread's stack `[lo, hi)` from `pthread_getattr_np`.
fn pthread_stack() -> Option<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is written by pthread_getattr_np before it is read,
    // and destroyed once after a successful init.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr = std::ptr::null_mut();
        let mut size = 0usize;
        let r = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        let lo = addr as usize;
        match lo.checked_add(size) {
            Some(hi) if r == 0 && size > 0 => Some((lo, hi)),
            _ => None,
        }
    }
}

/// The alternate signal stack installed now, if any (Rust's runtime
/// installs one per thread for its stack-overflow handler).
fn alt_stack() -> Option<(usize, usize)> {
    let mut ss = std::mem::MaybeUninit::<libc::stack_t>::zeroed();
    // SAFETY: a null new stack only queries; `ss` is valid for writing.
    let r = unsafe { libc::sigaltstack(std::ptr::null(), ss.as_mut_ptr()) };
    // SAFETY: zero-initialised and, on success, written by the kernel.
    let ss = unsafe { ss.assume_init() };
    let lo = ss.ss_sp as usize;
    match lo.checked_add(ss.ss_size) {
        Some(hi) if r == 0 && ss.ss_flags & libc::SS_DISABLE == 0 && ss.ss_size > 0 => {
            Some((lo, hi))
        }
        _ => None,
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// An address in the current frame: at or above the stack pointer.
#[inline(always)]
fn current_sp() -> usize {
    let marker = 0u8;
    std::ptr::addr_of!(marker) as usize
}

/// The frame pointer register now.
#[inline(always)]
fn frame_pointer() -> usize {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register; touches no memory, no stack, no flags.
    unsafe {
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above (x29 is AArch64's frame pointer).
    unsafe {
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    fp
}

/// This thread's stack bounds, as [`walk`] checks frames against them
/// (empty before [`init_thread`]). For the bench crate.
#[doc(hidden)]
pub fn thread_bounds() -> StackBounds {
    BOUNDS.with(Cell::get)
}

/// Walks this thread's stack into `out`: the return addresses of the
/// callers of `walk`'s caller and up, after dropping the first `skip`
/// (0 keeps the return address into `walk`'s caller). Returns how many
/// were written (0: no bounds yet, or no frame chain). Async-signal-safe.
#[inline(never)]
pub fn walk(skip: usize, out: &mut [u64]) -> usize {
    let bounds = BOUNDS.with(Cell::get);
    walk_from(frame_pointer(), current_sp(), &bounds, skip, out)
}

/// [`walk`] from the frame record at `fp`, with the stack pointer at `sp`
/// (the floor of the thread's stack while the walk runs on it). Public for
/// the bench crate, which walks a chain it lays out itself.
#[doc(hidden)]
#[inline]
pub fn walk_from(
    mut fp: usize,
    sp: usize,
    bounds: &StackBounds,
    mut skip: usize,
    out: &mut [u64],
) -> usize {
    let thread_lo = if sp >= bounds.lo_full && sp < bounds.hi {
        sp.min(bounds.lo)
    } else {
        bounds.lo
    };
    let mut n = 0;
    let mut last: Option<(u8, usize)> = None;
    // Bounded: each step writes `out` or uses up `skip`, and `skip` is
    // at most a handful of frames; the cap stops a chain with no end.
    let mut steps = out.len().saturating_add(skip).min(out.len() + 64);
    while n < out.len() && steps > 0 {
        steps -= 1;
        if fp % std::mem::align_of::<usize>() != 0 {
            break;
        }
        let Some(range) = bounds.range_of(fp, thread_lo) else {
            break;
        };
        if matches!(last, Some((r, prev)) if r == range && fp <= prev) {
            break;
        }
        // SAFETY: `[fp, fp + RECORD)` lies inside one of this thread's
        // stack ranges, all mapped for as long as the thread lives (module
        // docs), and `fp` is aligned. Volatile: the bytes belong to other
        // frames, read as plain integers.
        let (next, ret) = unsafe {
            let p = fp as *const usize;
            (p.read_volatile(), p.add(1).read_volatile())
        };
        if ret == 0 {
            break;
        }
        if skip > 0 {
            skip -= 1;
        } else {
            out[n] = ret as u64;
            n += 1;
        }
        last = Some((range, fp));
        fp = next;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `depth` frame records laid out in `buf` (which lives on
    /// this thread's stack), returning the first record's address.
    fn chain(buf: &mut [usize], depth: usize) -> usize {
        let base = buf.as_ptr() as usize;
        for i in 0..depth {
            buf[2 * i] = base + 2 * (i + 1) * 8;
            buf[2 * i + 1] = 0x1000 + i;
        }
        buf[2 * depth] = 0;
        buf[2 * depth + 1] = 0;
        base
    }

    #[test]
    fn walks_a_chain_within_bounds_and_stops_at_its_end() {
        assert!(init_thread());
        let mut buf = [0usize; 40];
        let fp = chain(&mut buf, 16);
        let b = BOUNDS.with(Cell::get);
        let mut out = [0u64; 32];
        let n = walk_from(fp, current_sp(), &b, 0, &mut out);
        assert_eq!(n, 16);
        assert_eq!(out[..3], [0x1000, 0x1001, 0x1002]);
        assert_eq!(walk_from(fp, current_sp(), &b, 2, &mut out), 14);
        assert_eq!(out[0], 0x1002);
    }

    #[test]
    fn never_reads_outside_the_stack_loops_or_goes_down() {
        assert!(init_thread());
        let b = BOUNDS.with(Cell::get);
        let mut out = [0u64; 8];
        // Heap, null, unmapped and misaligned frame pointers: no read.
        let heap = Box::new([0usize; 4]);
        for fp in [heap.as_ptr() as usize, 0, 8, usize::MAX - 7, b.hi - 8] {
            assert_eq!(walk_from(fp, current_sp(), &b, 0, &mut out), 0, "{fp:#x}");
        }
        let mut buf = [0usize; 8];
        let base = buf.as_ptr() as usize;
        assert_eq!(walk_from(base + 1, current_sp(), &b, 0, &mut out), 0);
        // A record pointing at itself (a loop) gives one frame.
        buf[0] = base;
        buf[1] = 0x42;
        assert_eq!(walk_from(base, current_sp(), &b, 0, &mut out), 1);
        // A record pointing down (to a deeper frame) ends the walk.
        buf[2] = base;
        buf[3] = 0x43;
        assert_eq!(walk_from(base + 16, current_sp(), &b, 0, &mut out), 1);
        // The walks read `buf` through its address only: keep its stores.
        std::hint::black_box(&buf);
        // A thread with no bounds walks nothing.
        let n = walk_from(base, current_sp(), &StackBounds::EMPTY, 0, &mut out);
        assert_eq!(n, 0);
    }

    #[test]
    fn a_new_thread_has_no_bounds_until_it_takes_them() {
        std::thread::spawn(|| {
            assert!(!thread_ready());
            let mut out = [0u64; 4];
            assert_eq!(walk(0, &mut out), 0);
            assert!(init_thread());
            let b = BOUNDS.with(Cell::get);
            let sp = current_sp();
            assert!(b.lo <= sp && sp < b.hi, "{b:?} {sp:#x}");
        })
        .join()
        .unwrap();
    }
}
