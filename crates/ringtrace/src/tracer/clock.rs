//! The clocks a trace can be recorded with, and the conversion of their raw
//! values to nanoseconds that is kept with the trace.
//!
//! | clock | kernel name | unit | read | relative cost |
//! | --- | --- | --- | --- | --- |
//! | [`Clock::tsc`] | `x86-tsc` | TSC cycles | `rdtsc` | the cheapest real clock |
//! | [`Clock::tsc_ordered`] | `x86-tsc` | TSC cycles | `lfence; rdtsc` | about twice `tsc` (waits for earlier loads) |
//! | [`Clock::mono`] | `mono` | ns | `clock_gettime(CLOCK_MONOTONIC)` (vDSO) | a vDSO call: more than `tsc_ordered` |
//! | [`Clock::counter`] | `counter` | events | one atomic `fetch_add` on a global | an atomic add (contended across threads) |
//!
//! The measured costs are in the bench crate's output (`docs/benchmarks.md`,
//! "Tracers, each reading a clock per event") and `examples/trace_cost.rs`;
//! `rdtscp` was measured no cheaper than `lfence; rdtsc`.
//!
//! # Contract
//!
//! [`Clock::now`] is one read: no allocation, no lock, no lazily initialised
//! state (everything it needs is in the `Copy` [`Clock`] value, computed when
//! the clock was created). It is async-signal-safe: `rdtsc` and atomics
//! trivially, and `clock_gettime` is on POSIX's async-signal-safe list.
//!
//! # TSC
//!
//! [`Clock::tsc`] reads with a plain `rdtsc`, as the kernel's default trace
//! clock does (`local`, i.e. `sched_clock()`, which is `rdtsc()` without a
//! fence on x86). A plain `rdtsc` is not ordered with earlier loads: it may
//! execute before a load that precedes it in program order, so when thread B
//! stamps an event right after observing thread A's through shared memory,
//! B's stamp can come out below A's. Measured here with two threads on the
//! two CPUs handing a turn back and forth millions of times: the plain read
//! went backwards thousands of times, by tens of nanoseconds. Within one ring
//! this never shows: the ring raises a stamp below its predecessor's to it,
//! so each context's time never goes backwards. Across contexts, two events
//! less than a few tens of nanoseconds apart may merge in either order.
//!
//! [`Clock::tsc_ordered`] reads with `lfence; rdtsc`, like the kernel's
//! `x86-tsc` clock (`rdtsc_ordered()`): with the fence the same measurement
//! gave 0 inversions, at about twice the cost (it waits for every earlier
//! load). Choose it when events on different threads that are causally
//! ordered must merge in that order even nanoseconds apart.
//!
//! Raw TSC values are what is recorded (as the kernel's `x86-tsc` clock
//! does). The conversion to ns is trace-cmd's `TSC2NSEC` triple
//! ([`Tsc2Nsec`]): `ns = (tsc * mult) >> shift` (+ `offset`, which trace-cmd
//! 3.1.6 reads but does not apply, so ringtrace always stores 0). `mult` is
//! kept at most `i32::MAX` because trace-cmd holds it in an `int`.
//!
//! Calibration ([`tsc_info`]) runs once per process, on the first request,
//! and waits for it: it pairs TSC and CLOCK_MONOTONIC reads 10 ms apart
//! (each pair bracketed by two monotonic reads; the tightest of several
//! attempts is kept) and derives the rate; the bracket widths bound the error,
//! reported as [`TscInfo::uncertainty_ppm`].
//!
//! The TSC is the default clock ([`Clock::preferred`]) only when CPUID reports
//! an invariant TSC (leaf `0x8000_0007`, EDX bit 8) **and** a start-up check
//! finds it monotonic across threads: two threads, pinned to different CPUs
//! when possible, pass a turn back and forth through an atomic 2000 times,
//! each checking that its TSC read (fenced, so that the check sees the
//! counters themselves and not the CPU's reordering) is not below the other's
//! previous read. Otherwise the default is `mono`.
//!
//! On other architectures there is no TSC clock ([`Clock::tsc`] fails) and
//! [`Clock::preferred`] is `mono`.

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The global counter behind [`ClockKind::Counter`]. Every read takes the next
/// value, so values are unique and their order is the order of the reads
/// (`fetch_add` on one location is totally ordered even when Relaxed: a read
/// that happens after another sees a later value by coherence).
static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Which clock.
///
/// ```
/// assert_eq!(ringtrace::clock::Clock::mono().kind(), ringtrace::clock::ClockKind::Mono);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockKind {
    /// The x86 time-stamp counter (raw cycles).
    Tsc,
    /// CLOCK_MONOTONIC in nanoseconds.
    Mono,
    /// A global atomic counter: strict order, not time.
    Counter,
}

/// trace-cmd's TSC-to-nanoseconds conversion (`TSC2NSEC` option: `u32 mult`,
/// `u32 shift`, `u64 offset`): `ns = ((raw * mult) >> shift) + offset`.
///
/// ```
/// use ringtrace::clock::Tsc2Nsec;
/// // A 2 GHz counter: half a nanosecond per tick.
/// let c = Tsc2Nsec { mult: 1 << 31, shift: 32, offset: 0 };
/// assert_eq!(c.to_ns(2_000_000_000), 1_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tsc2Nsec {
    /// Multiplier (at most `i32::MAX`, trace-cmd keeps it in an `int`).
    pub mult: u32,
    /// Right shift (at most 32, as trace-cmd's `mul_u64_u32_shr` needs).
    pub shift: u32,
    /// Added after scaling. Always 0 from ringtrace (trace-cmd 3.1.6 ignores it).
    pub offset: u64,
}

impl Tsc2Nsec {
    /// Converts a raw value the way trace-cmd does (exact 128-bit product,
    /// equal to trace-cmd's split 32-bit computation).
    ///
    /// ```
    /// let c = ringtrace::clock::Tsc2Nsec { mult: 3, shift: 1, offset: 10 };
    /// assert_eq!(c.to_ns(4), 16);
    /// ```
    #[inline]
    #[must_use]
    pub fn to_ns(&self, raw: u64) -> u64 {
        self.scale(raw).wrapping_add(self.offset)
    }

    /// `(raw * mult) >> shift` without the offset: what trace-cmd 3.1.6
    /// prints for a trace.dat's stamps. A `shift` of 128 or more (only a
    /// corrupt file carries one) would overflow the shift: callers reading
    /// untrusted triples check it first.
    #[inline]
    pub(crate) fn scale(&self, raw: u64) -> u64 {
        ((u128::from(raw) * u128::from(self.mult)) >> self.shift) as u64
    }

    /// The conversion for a counter that ticks `dticks` times in `dns`
    /// nanoseconds: the largest `shift <= 32` whose `mult` fits `i32::MAX`.
    /// `None` if `dticks` is 0 or the counter is slower than 1 tick per
    /// `i32::MAX` ns.
    ///
    /// ```
    /// let c = ringtrace::clock::Tsc2Nsec::from_rate(1_000, 3_000).unwrap();
    /// assert_eq!((c.mult, c.shift), (1_431_655_765, 32));
    /// assert_eq!(c.to_ns(3_000_000_000), 999_999_999);
    /// ```
    #[must_use]
    pub fn from_rate(dns: u64, dticks: u64) -> Option<Tsc2Nsec> {
        if dticks == 0 {
            return None;
        }
        let mut shift = 32u32;
        loop {
            let num = u128::from(dns) << shift;
            let mult = (num + u128::from(dticks) / 2) / u128::from(dticks);
            if mult <= i32::MAX as u128 {
                return (mult > 0).then_some(Tsc2Nsec {
                    mult: mult as u32,
                    shift,
                    offset: 0,
                });
            }
            if shift == 0 {
                return None;
            }
            shift -= 1;
        }
    }
}

/// The result of the TSC start-up checks and calibration.
///
/// ```
/// if let Ok(info) = ringtrace::clock::tsc_info() {
///     assert!(info.hz > 0);
/// }
/// ```
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TscInfo {
    /// CPUID reports an invariant TSC (leaf 0x8000_0007, EDX bit 8).
    pub invariant: bool,
    /// The TSC is taken as synchronised across CPUs: the cross-thread
    /// ping-pong (fenced reads) saw no read below the other thread's last
    /// one, and either it completed at least 100 turns or the kernel itself
    /// uses the TSC as its clocksource (which it does only after its own
    /// cross-CPU synchronisation checks passed). A busy machine can starve
    /// the ping-pong of turns; the kernel's verdict then decides, so that
    /// the default clock does not flip to `mono` under load.
    pub monotonic_across_threads: bool,
    /// Number of ping-pong turns completed (2000 unless time ran out).
    pub turns_checked: u32,
    /// The kernel's current clocksource is `tsc`
    /// (`/sys/devices/system/clocksource/clocksource0/current_clocksource`).
    pub kernel_clocksource_tsc: bool,
    /// The calibrated conversion.
    pub conversion: Tsc2Nsec,
    /// Calibrated ticks per second.
    pub hz: u64,
    /// Bound on the calibration error, in parts per million.
    pub uncertainty_ppm: u32,
}

/// Why a TSC clock could not be made.
///
/// ```
/// let e = ringtrace::clock::ClockError::Unsupported;
/// assert!(e.to_string().contains("x86_64"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Not an x86_64 machine.
    #[error("the tsc clock needs x86_64")]
    Unsupported,
    /// The TSC did not advance or the rate is out of range.
    #[error("tsc calibration failed: {0}")]
    Calibration(&'static str),
    /// [`Clock::by_name`] was given a name it does not know.
    #[error("unknown clock name: use tsc, tsc-ordered, mono or counter")]
    UnknownName,
}

/// How a clock is read; the plain TSC first, so that its test is against 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Tsc,
    TscOrdered,
    Mono,
    Counter,
}

impl Read {
    /// The clock's kind.
    fn kind(self) -> ClockKind {
        match self {
            Read::Tsc | Read::TscOrdered => ClockKind::Tsc,
            Read::Mono => ClockKind::Mono,
            Read::Counter => ClockKind::Counter,
        }
    }

    fn of(kind: ClockKind, ordered: bool) -> Read {
        if kind == ClockKind::Mono {
            find_vdso_clock_gettime();
        }
        match kind {
            ClockKind::Tsc if ordered => Read::TscOrdered,
            ClockKind::Tsc => Read::Tsc,
            ClockKind::Mono => Read::Mono,
            ClockKind::Counter => Read::Counter,
        }
    }
}

/// A trace clock: small, `Copy`, everything [`now`](Clock::now) needs inside.
///
/// ```
/// use ringtrace::clock::Clock;
/// let c = Clock::mono();
/// let a = c.now();
/// let b = c.now();
/// assert!(b >= a);
/// assert_eq!(c.name(), "mono");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// How [`Clock::now`] reads it: the kind and, for `Tsc`, whether with
    /// `lfence; rdtsc`, in one byte, so that the read is one test away.
    /// The kind is derived from it ([`Clock::kind`]).
    read: Read,
    /// Only meaningful for `Tsc`; identity-like placeholder otherwise.
    conv: Tsc2Nsec,
}

impl Clock {
    /// CLOCK_MONOTONIC in nanoseconds.
    ///
    /// ```
    /// assert!(ringtrace::clock::Clock::mono().is_nanoseconds());
    /// ```
    #[must_use]
    pub fn mono() -> Clock {
        find_vdso_clock_gettime();
        Clock {
            read: Read::Mono,
            conv: Tsc2Nsec {
                mult: 1,
                shift: 0,
                offset: 0,
            },
        }
    }

    /// The global atomic counter.
    ///
    /// ```
    /// let c = ringtrace::clock::Clock::counter();
    /// assert!(c.now() < c.now());
    /// ```
    #[must_use]
    pub fn counter() -> Clock {
        Clock {
            read: Read::Counter,
            conv: Tsc2Nsec {
                mult: 1,
                shift: 0,
                offset: 0,
            },
        }
    }

    /// The TSC, read with a plain `rdtsc`, with its calibrated conversion,
    /// whatever the start-up checks said (see [`Clock::preferred`] for the
    /// checked choice). The first call in a process calibrates (a 10 ms wait);
    /// later calls reuse the result. A stamp may come out a few tens of
    /// nanoseconds below one taken just before on another thread (see the
    /// module docs); [`Clock::tsc_ordered`] rules that out at about twice
    /// the cost.
    ///
    /// ```
    /// match ringtrace::clock::Clock::tsc() {
    ///     Ok(c) => assert_eq!((c.name(), c.is_ordered()), ("x86-tsc", false)),
    ///     Err(e) => println!("no tsc: {e}"),
    /// }
    /// ```
    pub fn tsc() -> Result<Clock, ClockError> {
        let info = tsc_info()?;
        Ok(Clock {
            read: Read::Tsc,
            conv: info.conversion,
        })
    }

    /// The TSC read with `lfence; rdtsc` (the kernel's `rdtsc_ordered()`):
    /// ordered after every earlier load, so an event stamped after seeing
    /// another thread's event is never stamped below it. Dearer than
    /// [`Clock::tsc`]: it waits for every earlier load. Same name, unit and
    /// conversion.
    ///
    /// ```
    /// if let (Ok(a), Ok(b)) = (ringtrace::clock::Clock::tsc(), ringtrace::clock::Clock::tsc_ordered()) {
    ///     assert_eq!(a.tsc2nsec(), b.tsc2nsec());
    ///     assert!(!a.is_ordered() && b.is_ordered());
    /// }
    /// ```
    pub fn tsc_ordered() -> Result<Clock, ClockError> {
        let info = tsc_info()?;
        Ok(Clock {
            read: Read::TscOrdered,
            conv: info.conversion,
        })
    }

    /// The clock called `name`: `tsc`, `tsc-ordered`, `mono` or `counter`
    /// (for command lines and configuration files).
    ///
    /// ```
    /// use ringtrace::clock::{Clock, ClockError, ClockKind};
    /// assert_eq!(Clock::by_name("mono").unwrap().kind(), ClockKind::Mono);
    /// assert_eq!(Clock::by_name("sundial"), Err(ClockError::UnknownName));
    /// ```
    pub fn by_name(name: &str) -> Result<Clock, ClockError> {
        match name {
            "tsc" => Clock::tsc(),
            "tsc-ordered" => Clock::tsc_ordered(),
            "mono" => Ok(Clock::mono()),
            "counter" => Ok(Clock::counter()),
            _ => Err(ClockError::UnknownName),
        }
    }

    /// A clock of `kind` with a given TSC conversion, as a session header
    /// describes it (another process calibrated it; the TSC is one counter
    /// machine-wide, so its raw values and conversion hold here too).
    ///
    /// ```
    /// use ringtrace::clock::{Clock, ClockKind, Tsc2Nsec};
    /// let conv = Tsc2Nsec { mult: 1 << 31, shift: 32, offset: 0 };
    /// let c = Clock::from_parts(ClockKind::Tsc, true, conv);
    /// assert_eq!((c.name(), c.tsc2nsec()), ("x86-tsc", Some(conv)));
    /// ```
    pub fn from_parts(kind: ClockKind, ordered: bool, conv: Tsc2Nsec) -> Clock {
        let conv = match kind {
            ClockKind::Tsc => conv,
            _ => Tsc2Nsec {
                mult: 1,
                shift: 0,
                offset: 0,
            },
        };
        Clock {
            read: Read::of(kind, ordered),
            conv,
        }
    }

    /// Whether this is the fenced TSC read ([`Clock::tsc_ordered`]).
    ///
    /// ```
    /// assert!(!ringtrace::clock::Clock::mono().is_ordered());
    /// ```
    #[must_use]
    pub fn is_ordered(&self) -> bool {
        self.read == Read::TscOrdered
    }

    /// The default clock: `tsc` where the TSC is invariant and was found
    /// monotonic across threads, `mono` otherwise.
    ///
    /// ```
    /// let c = ringtrace::clock::Clock::preferred();
    /// assert!(matches!(c.name(), "x86-tsc" | "mono"));
    /// ```
    #[must_use]
    pub fn preferred() -> Clock {
        match tsc_info() {
            Ok(i) if i.invariant && i.monotonic_across_threads => Clock {
                read: Read::Tsc,
                conv: i.conversion,
            },
            _ => Clock::mono(),
        }
    }

    /// A clock of the given kind (`Tsc` may fail).
    ///
    /// ```
    /// use ringtrace::clock::{Clock, ClockKind};
    /// assert_eq!(Clock::of(ClockKind::Counter).unwrap().kind(), ClockKind::Counter);
    /// ```
    pub fn of(kind: ClockKind) -> Result<Clock, ClockError> {
        match kind {
            ClockKind::Tsc => Clock::tsc(),
            ClockKind::Mono => Ok(Clock::mono()),
            ClockKind::Counter => Ok(Clock::counter()),
        }
    }

    /// Reads the clock: one TSC read, one `clock_gettime`, or one atomic
    /// increment. Async-signal-safe, allocation-free, lock-free.
    ///
    /// ```
    /// let c = ringtrace::clock::Clock::counter();
    /// let a = c.now();
    /// assert_eq!(c.now(), a + 1); // (no other thread uses the counter here)
    /// ```
    #[inline(always)]
    pub fn now(&self) -> u64 {
        // Two tests, not a `match`: a four-way match became a jump table
        // (an indirect jump and its landing jumps), more instructions on
        // every record with the default clock.
        if self.read == Read::Tsc {
            read_tsc()
        } else if self.read == Read::Mono {
            read_mono()
        } else {
            self.now_other()
        }
    }

    /// The clocks with no speed target: the fenced TSC and the counter.
    #[inline(never)]
    fn now_other(&self) -> u64 {
        match self.read {
            Read::Tsc => read_tsc(),
            Read::TscOrdered => read_tsc_ordered(),
            Read::Mono => read_mono(),
            Read::Counter => COUNTER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The kind.
    ///
    /// ```
    /// use ringtrace::clock::{Clock, ClockKind};
    /// assert_eq!(Clock::counter().kind(), ClockKind::Counter);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ClockKind {
        self.read.kind()
    }

    /// The kernel's name of this clock, as trace-cmd expects it in the
    /// `trace_clock` text: `x86-tsc`, `mono` or `counter`.
    ///
    /// ```
    /// assert_eq!(ringtrace::clock::Clock::counter().name(), "counter");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.kind() {
            ClockKind::Tsc => "x86-tsc",
            ClockKind::Mono => "mono",
            ClockKind::Counter => "counter",
        }
    }

    /// Whether raw values are nanoseconds (the kernel's `in_ns`): true only
    /// for `mono`. Text output prints `secs.usecs` for these and the raw
    /// count otherwise.
    ///
    /// ```
    /// assert!(!ringtrace::clock::Clock::counter().is_nanoseconds());
    /// ```
    #[must_use]
    pub fn is_nanoseconds(&self) -> bool {
        self.kind() == ClockKind::Mono
    }

    /// Converts a raw value to nanoseconds: the calibrated conversion for
    /// `tsc`, the value itself for `mono`, and for `counter` (not a time) the
    /// count unchanged.
    ///
    /// ```
    /// assert_eq!(ringtrace::clock::Clock::mono().to_ns(123), 123);
    /// ```
    #[inline]
    #[must_use]
    pub fn to_ns(&self, raw: u64) -> u64 {
        match self.kind() {
            ClockKind::Tsc => self.conv.to_ns(raw),
            ClockKind::Mono | ClockKind::Counter => raw,
        }
    }

    /// The TSC2NSEC triple to store in trace.dat, for the `tsc` clock.
    ///
    /// ```
    /// assert!(ringtrace::clock::Clock::mono().tsc2nsec().is_none());
    /// ```
    #[must_use]
    pub fn tsc2nsec(&self) -> Option<Tsc2Nsec> {
        (self.kind() == ClockKind::Tsc).then_some(self.conv)
    }

    /// The content of the kernel's `trace_clock` file with this clock
    /// selected (trace.dat's TRACECLOCK option), e.g.
    /// `local global counter uptime perf [mono] mono_raw boot tai x86-tsc\n`.
    ///
    /// ```
    /// assert!(ringtrace::clock::Clock::counter().trace_clock_text().contains(" [counter] "));
    /// ```
    #[must_use]
    pub fn trace_clock_text(&self) -> String {
        const ALL: [&str; 10] = [
            "local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot", "tai",
            "x86-tsc",
        ];
        let mut s = String::new();
        for (i, n) in ALL.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            if *n == self.name() {
                s.push('[');
                s.push_str(n);
                s.push(']');
            } else {
                s.push_str(n);
            }
        }
        s.push('\n');
        s
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
///
/// ```
/// assert!(ringtrace::clock::read_mono() > 0);
/// ```
#[doc(hidden)]
#[inline(always)]
#[must_use]
pub fn read_mono() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Relaxed: the value is a code address fixed for the life of the
    // process; either value seen is a valid way to read the clock.
    let vdso = VDSO_CLOCK_GETTIME.load(Ordering::Relaxed);
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call, and a non-zero `vdso` is the vDSO's `clock_gettime` (see
    // `find_vdso_clock_gettime`), which has glibc's signature. CLOCK_MONOTONIC
    // always exists on Linux, so the call cannot fail (if it did, `ts` stays
    // zeroed and we return 0 rather than garbage).
    unsafe {
        if vdso != 0 {
            let f: ClockGettime = std::mem::transmute::<usize, ClockGettime>(vdso);
            f(libc::CLOCK_MONOTONIC, &mut ts);
        } else {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        }
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The signature of `clock_gettime`.
type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// The vDSO's own `clock_gettime`, or 0 until found (and where there is none,
/// as under valgrind). Calling it directly skips glibc's wrapper (its
/// pointer check and errno handling) on every `trace!` with `mono`.
static VDSO_CLOCK_GETTIME: AtomicUsize = AtomicUsize::new(0);

/// Looks up the vDSO's `clock_gettime` once, through the dynamic loader
/// (which maps the vDSO as `linux-vdso.so.1`), so that nothing here parses
/// ELF. Ordinary code only (`dlopen` takes locks): [`Clock::mono`] and the
/// other constructors of a `mono` clock call it, before any record.
fn find_vdso_clock_gettime() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: plain C calls with NUL-terminated names; RTLD_NOLOAD
            // loads nothing, it only finds an object already mapped. The
            // handle is not closed: the vDSO stays mapped for the life of
            // the process.
            unsafe {
                let h = libc::dlopen(
                    c"linux-vdso.so.1".as_ptr(),
                    libc::RTLD_LAZY | libc::RTLD_NOLOAD,
                );
                if h.is_null() {
                    return;
                }
                let f = libc::dlsym(h, c"__vdso_clock_gettime".as_ptr());
                if !f.is_null() {
                    VDSO_CLOCK_GETTIME.store(f as usize, Ordering::Relaxed);
                }
            }
        });
    }
}

/// The TSC, read with a plain `rdtsc`. On other architectures,
/// CLOCK_MONOTONIC.
///
/// ```
/// let a = ringtrace::clock::read_tsc();
/// assert!(ringtrace::clock::read_tsc() >= a);
/// ```
#[doc(hidden)]
#[inline(always)]
#[must_use]
pub fn read_tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc exists on every x86_64 CPU and touches no memory. The
        // block is needed on toolchains where the intrinsic is unsafe.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        read_mono()
    }
}

/// The TSC, read with `lfence; rdtsc` (ordered after earlier loads). On
/// other architectures, CLOCK_MONOTONIC.
///
/// ```
/// let a = ringtrace::clock::read_tsc_ordered();
/// assert!(ringtrace::clock::read_tsc_ordered() >= a);
/// ```
#[doc(hidden)]
#[inline(always)]
#[must_use]
pub fn read_tsc_ordered() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: lfence and rdtsc exist on every x86_64 CPU (SSE2 and the
        // TSC are part of the x86_64 baseline); they touch no memory. The
        // block is needed on toolchains where these intrinsics are unsafe.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_mm_lfence();
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        read_mono()
    }
}

/// Whether CPUID reports an invariant TSC (leaf 0x8000_0007, EDX bit 8).
///
/// ```
/// let _ = ringtrace::clock::tsc_is_invariant();
/// ```
#[doc(hidden)]
#[must_use]
pub fn tsc_is_invariant() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: CPUID is available on every x86_64 CPU; leaf 0x8000_0000
        // reports the highest extended leaf, checked before reading 0x8000_0007.
        #[allow(unused_unsafe)]
        unsafe {
            let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
            max >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The TSC checks and calibration (the cross-thread check uses the fenced
/// read of [`Clock::tsc`]), done once per process (the calibration's 10 ms
/// wait on the first call, then free). Fails on non-x86_64 machines or if
/// the TSC does not advance.
///
/// ```
/// if let Ok(i) = ringtrace::clock::tsc_info() {
///     println!("tsc {} Hz, invariant {}, monotonic {}", i.hz, i.invariant, i.monotonic_across_threads);
/// }
/// ```
#[doc(hidden)]
pub fn tsc_info() -> Result<&'static TscInfo, ClockError> {
    static INFO: OnceLock<Result<TscInfo, ClockError>> = OnceLock::new();
    INFO.get_or_init(probe_tsc).as_ref().map_err(|e| *e)
}

fn probe_tsc() -> Result<TscInfo, ClockError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(ClockError::Unsupported);
    }
    let (conversion, hz, uncertainty_ppm) = calibrate(Duration::from_millis(10))?;
    let (inverted, turns_checked) = ping_pong(read_tsc_ordered, 2000, Duration::from_millis(5));
    let kernel_clocksource_tsc =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc");
    Ok(TscInfo {
        invariant: tsc_is_invariant(),
        monotonic_across_threads: !inverted && (turns_checked >= 100 || kernel_clocksource_tsc),
        turns_checked,
        kernel_clocksource_tsc,
        conversion,
        hz,
        uncertainty_ppm,
    })
}

/// A (monotonic ns, tsc) pair with the width of the monotonic bracket around
/// the TSC read; the tightest of a few attempts.
fn paired_read() -> (u64, u64, u64) {
    let mut best = (0, 0, u64::MAX);
    for _ in 0..16 {
        let a = read_mono();
        let t = read_tsc();
        let b = read_mono();
        let width = b.saturating_sub(a);
        if width < best.2 {
            best = (a + width / 2, t, width);
        }
    }
    best
}

/// Measures the TSC rate against CLOCK_MONOTONIC over `interval`.
fn calibrate(interval: Duration) -> Result<(Tsc2Nsec, u64, u32), ClockError> {
    let (m0, t0, w0) = paired_read();
    std::thread::sleep(interval);
    let (m1, t1, w1) = paired_read();
    let dns = m1.saturating_sub(m0);
    let dticks = t1.saturating_sub(t0);
    if dns == 0 || dticks == 0 {
        return Err(ClockError::Calibration(
            "the tsc or the monotonic clock did not advance",
        ));
    }
    let conv =
        Tsc2Nsec::from_rate(dns, dticks).ok_or(ClockError::Calibration("tsc rate out of range"))?;
    let hz = (u128::from(dticks) * 1_000_000_000 / u128::from(dns)) as u64;
    // Each midpoint is off by at most half its bracket.
    let err_ns = (w0 / 2).saturating_add(w1 / 2).saturating_add(1);
    let ppm = (u128::from(err_ns) * 1_000_000 / u128::from(dns)).min(u128::from(u32::MAX)) as u32;
    Ok((conv, hz, ppm))
}

/// Two threads (pinned to two different allowed CPUs when there are two)
/// take turns through an atomic; on its turn a thread reads `read` and checks
/// the value is not below the other thread's previous value. Returns whether
/// no violation was seen and how many turns completed before `budget` ran
/// out (the check is inconclusive, and reported as failed, below 100 turns).
///
/// `budget` bounds the time a start-up probe may spend; a check that must
/// see every turn whatever the machine's load passes [`Duration::MAX`]
/// (no time limit: it ends after `turns` turns).
///
/// ```
/// use ringtrace::clock::{monotonic_across_threads, read_mono};
/// let (ok, turns) = monotonic_across_threads(read_mono, 200, std::time::Duration::MAX);
/// assert_eq!(turns, 200);
/// assert!(ok, "CLOCK_MONOTONIC went backwards across threads");
/// ```
#[doc(hidden)]
pub fn monotonic_across_threads(read: fn() -> u64, turns: u32, budget: Duration) -> (bool, u32) {
    let (inverted, done) = ping_pong(read, turns, budget);
    (!inverted && done >= turns.min(100), done)
}

/// The ping-pong behind [`monotonic_across_threads`]: whether a read came
/// out below the other thread's previous one, and the turns completed.
fn ping_pong(read: fn() -> u64, turns: u32, budget: Duration) -> (bool, u32) {
    let turn = AtomicU32::new(0);
    let last = AtomicU64::new(0);
    let bad = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let cpus = allowed_cpus();
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for side in 0..2u32 {
            let (turn, last, bad, stop) = (&turn, &last, &bad, &stop);
            let pin = if cpus.len() >= 2 {
                cpus.get(side as usize).copied()
            } else {
                None
            };
            s.spawn(move || {
                if let Some(cpu) = pin {
                    pin_to_cpu(cpu);
                }
                let mut mine = side;
                while mine < turns {
                    let mut spins = 0u32;
                    // Acquire: pairs with the Release store of the other
                    // thread's turn, so its `last` store is visible.
                    while turn.load(Ordering::Acquire) != mine {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        spins = spins.wrapping_add(1);
                        if spins % 256 == 0 {
                            if start.elapsed() > budget {
                                stop.store(true, Ordering::Relaxed);
                                return;
                            }
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    let now = read();
                    if now < last.load(Ordering::Relaxed) {
                        bad.store(true, Ordering::Relaxed);
                    }
                    last.store(now, Ordering::Relaxed);
                    // Release: publishes `last` to the other thread's Acquire above.
                    turn.store(mine + 1, Ordering::Release);
                    mine += 2;
                }
            });
        }
    });
    (bad.load(Ordering::Relaxed), turn.load(Ordering::Acquire))
}

/// The CPUs this thread may run on (empty if unknown).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 = this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads `set`; the index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu` (best effort).
fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data, valid when zeroed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from `allowed_cpus`, below CPU_SETSIZE; `set` is valid.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 = this thread.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mono` reads through the vDSO's own `clock_gettime` once a mono clock
    /// exists, and agrees with glibc's.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn mono_reads_the_vdso_directly_and_agrees_with_glibc() {
        let _ = Clock::mono();
        assert_ne!(
            VDSO_CLOCK_GETTIME.load(Ordering::Relaxed),
            0,
            "vDSO not found"
        );
        for _ in 0..1000 {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let a = read_mono();
            // SAFETY: a valid timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
            let b = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            let c = read_mono();
            assert!(a <= b && b <= c, "{a} {b} {c}");
        }
    }

    #[test]
    fn conversion_matches_trace_cmd_arithmetic() {
        // trace-cmd: ((lo32 * mult) >> shift) + ((hi32 * mult) << (32 - shift))
        fn trace_cmd(ts: u64, mult: u32, shift: u32) -> u64 {
            let al = ts & 0xffff_ffff;
            let ah = ts >> 32;
            let mut r = (al * u64::from(mult)) >> shift;
            if ah != 0 {
                r += (ah * u64::from(mult)) << (32 - shift);
            }
            r
        }
        for (dns, dticks) in [
            (1_000u64, 3_000u64),
            (10, 27),
            (1, 1),
            (7, 2),
            (1_000_000, 2_450_123),
        ] {
            let c = Tsc2Nsec::from_rate(dns, dticks).unwrap();
            assert!(c.shift <= 32 && c.mult <= i32::MAX as u32, "{c:?}");
            for ts in [
                0u64,
                1,
                0xffff_ffff,
                0x1_0000_0000,
                123_456_789_012_345,
                1 << 50,
            ] {
                assert_eq!(c.to_ns(ts), trace_cmd(ts, c.mult, c.shift), "{c:?} {ts}");
            }
        }
        assert_eq!(Tsc2Nsec::from_rate(5, 0), None);
        // 1 GHz: exactly one ns per tick.
        let c = Tsc2Nsec::from_rate(1_000, 1_000).unwrap();
        assert_eq!((c.mult, c.shift), (1 << 30, 30));
        assert_eq!(c.to_ns(123_456_789), 123_456_789);
    }

    #[test]
    fn names_and_units() {
        assert_eq!(Clock::mono().name(), "mono");
        assert_eq!(Clock::counter().name(), "counter");
        assert!(Clock::mono().is_nanoseconds());
        assert!(!Clock::counter().is_nanoseconds());
        assert_eq!(
            Clock::mono().trace_clock_text(),
            "local global counter uptime perf [mono] mono_raw boot tai x86-tsc\n"
        );
        if let Ok(t) = Clock::tsc() {
            assert_eq!(t.name(), "x86-tsc");
            assert!(!t.is_nanoseconds());
            assert!(t.tsc2nsec().is_some());
            assert!(t.trace_clock_text().ends_with(" [x86-tsc]\n"));
        }
    }

    /// `read_mono` is CLOCK_MONOTONIC, as `Instant` is on Linux: an interval
    /// of one nested in an interval of the other is no longer than it,
    /// whatever the scheduler does between the reads (no time budget).
    #[test]
    fn mono_tracks_std_instant() {
        let outer = std::time::Instant::now();
        let a = read_mono();
        let inner = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        let inner_ns = inner.elapsed().as_nanos() as u64;
        let d = read_mono() - a;
        let outer_ns = outer.elapsed().as_nanos() as u64;
        assert!(
            inner_ns <= d && d <= outer_ns,
            "mono advanced {d} ns, Instant {inner_ns}..={outer_ns} ns around it"
        );
        assert!(inner_ns >= 2_000_000, "slept {inner_ns} ns");
    }
}

/// The wall-clock time of a trace's start: the real time (`CLOCK_REALTIME`,
/// ns since the Unix epoch) and the trace clock's stamp read at the same
/// moment, so that any stamp of the trace maps to a wall-clock time
/// (`ringtrace report --wall`, the JSON metadata). Stored in a session's
/// header and in the trace.dat (a ringtrace option trace-cmd skips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallStart {
    /// Real time at the start, ns since the Unix epoch.
    pub realtime_ns: u64,
    /// The trace clock's stamp at the same moment (its own units).
    pub clock_ts: u64,
}

impl WallStart {
    /// Now, on `clock`; `None` for the `counter` clock, which counts
    /// records, not time (reading it would also take a number).
    pub fn now(clock: &Clock) -> Option<WallStart> {
        if clock.kind() == ClockKind::Counter {
            return None;
        }
        let clock_ts = clock.now();
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(WallStart {
            realtime_ns: u64::try_from(real.as_nanos()).ok()?,
            clock_ts,
        })
    }

    /// The wall-clock time (ns since the epoch) of stamp `ts`, where
    /// `to_ns` converts the clock's stamps to ns (identity for `mono`).
    ///
    /// ```
    /// let w = ringtrace::clock::WallStart { realtime_ns: 1_000_000, clock_ts: 500 };
    /// assert_eq!(w.wall_ns(700, |t| t), 1_000_200);
    /// assert_eq!(w.wall_ns(400, |t| t), 999_900);
    /// ```
    pub fn wall_ns(&self, ts: u64, to_ns: impl Fn(u64) -> u64) -> u64 {
        let delta = i128::from(to_ns(ts)) - i128::from(to_ns(self.clock_ts));
        let wall = i128::from(self.realtime_ns) + delta;
        u64::try_from(wall.max(0)).unwrap_or(u64::MAX)
    }
}
