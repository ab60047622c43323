//! The clocks a tracer reads per event, as floors and as time stamps.

use std::sync::OnceLock;
use std::time::Instant;

/// The CPU's time stamp counter (`rdtsc`); nanoseconds since the first call
/// on targets without one.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// Nanoseconds since the first call, from `Instant::now()`.
#[inline]
pub fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    start.elapsed().as_nanos() as u64
}
