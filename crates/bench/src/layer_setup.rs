//! The set-up shared by the `tracing` layer's measures: the criterion
//! bench `benches/layer.rs` (nanoseconds) and the callgrind harness
//! `examples/layer_ir.rs` (instructions), so that both measure the same
//! contenders on the same events.
//!
//! - [`Nop`]: a layer whose callbacks do nothing (the cost of `tracing`'s
//!   dispatch and the `Registry` alone);
//! - [`VisitOnly`]: a layer that only visits each event's fields (the least
//!   any layer that records field values does, before it reads a clock or
//!   stores anything);
//! - [`overwrite_tracer`]: the tracer `RingtraceLayer` records into in
//!   both, a flight recorder that never fills;
//! - [`two_u64`], [`one_u64`]: the events measured, not inlined into the
//!   loop, as they would be in a program;
//! - [`record_two_u64`]: the same record as `two_u64` written by
//!   ringtrace's own record path (no `tracing`), called the same way: the
//!   floor of what recording costs.

use std::hint::black_box;

/// A layer that does nothing.
#[derive(Debug)]
pub struct Nop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nop {}

/// A layer that only visits each event's fields, keeping the u64 values.
#[derive(Debug)]
pub struct VisitOnly;

/// The visitor of [`VisitOnly`]: the sum of the u64 values.
struct KeepU64(u64);
impl tracing::field::Visit for KeepU64 {
    fn record_u64(&mut self, _: &tracing::field::Field, v: u64) {
        self.0 = self.0.wrapping_add(v);
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for VisitOnly {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut v = KeepU64(0);
        event.record(&mut v);
        black_box(v.0);
    }
}

/// A two-context overwrite tracer that lives as long as the process, with
/// `clock` (the default clock when `None`).
///
/// # Panics
///
/// If the tracer cannot be made (a bench cannot run without it).
pub fn overwrite_tracer(clock: Option<ringtrace::clock::Clock>) -> &'static ringtrace::Tracer {
    let mut cfg = ringtrace::TracerConfig::new()
        .max_contexts(2)
        .mode(ringtrace_ring::Mode::Overwrite);
    if let Some(clock) = clock {
        cfg = cfg.clock(clock);
    }
    Box::leak(Box::new(cfg.build().expect("tracer")))
}

/// `tracing::info!(a = i, b = !i)`: two u64 fields, no message (the
/// measure of issue 24).
#[inline(never)]
pub fn two_u64(i: u64) {
    tracing::info!(a = i, b = !i);
}

/// `tracing::info!(n = i)`: one u64 field (the measure of issue 8).
#[inline(never)]
pub fn one_u64(i: u64) {
    tracing::info!(n = i);
}

ringtrace::declare_event! {
    /// Two numbers: the record `info!(a = i, b = !i)` becomes, written by
    /// ringtrace's own path.
    pub struct TwoU64: "layer_bench" / "two_u64" = 942 { a: u64, b: u64 }
}

/// Records `TwoU64 { a: i, b: !i }` into `t` with ringtrace's own record
/// path (clock, reserve, copy, commit), not inlined, as [`two_u64`] is not.
#[inline(never)]
pub fn record_two_u64(t: &ringtrace::Tracer, i: u64) {
    // Errors are counted by the tracer (the callers check its stats).
    let _ = t.record(&TwoU64 { a: i, b: !i });
}

/// Checks that events really went to `tracer`'s rings (overwrite mode:
/// most were overwritten) and that none was refused nor left untyped.
///
/// # Panics
///
/// When nothing was recorded, or something was refused.
pub fn assert_recorded(tracer: &ringtrace::Tracer) {
    let recorded: u64 = (0..tracer.max_contexts())
        .filter_map(|r| tracer.ring_stats(r).ok())
        .map(|s| s.entries + s.overrun)
        .sum();
    assert!(recorded > 0, "nothing was recorded");
    assert_eq!(ringtrace::layer::RingtraceLayer::untyped(), 0);
    let st = tracer.stats();
    assert_eq!(st.refused_no_context + st.refused_other, 0, "{st:?}");
}
