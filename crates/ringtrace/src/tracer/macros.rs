//! The record macros: [`trace!`](crate::trace) (binary printk),
//! [`trace_event!`](crate::trace_event) (typed events). Marker writes are
//! the functions [`crate::trace_marker`] and [`Tracer::marker`](crate::Tracer::marker).
//!
//! Each expands to one record: one clock read, the common header (type id,
//! flags, signal depth, thread id), encode into a reservation, commit. No
//! allocation and no lock once the thread has its context; async-signal-safe
//! (a handler should enter [`signal_scope`](crate::context::signal_scope)
//! first). Errors are counted by the tracer, not returned; use
//! [`Tracer::record`](crate::Tracer::record) to see them.

/// Records a binary printk (the kernel's `trace_printk`): the call site's
/// format id and the raw arguments are stored; the text is formatted when
/// read.
///
/// The format is **C printf**, not Rust's `{}`: `%d` (i32), `%u` (u32),
/// `%lld` / `%llu` (i64 / u64), `%zu` (usize), `%x`, `%s` (&str), `%c`,
/// `%f` (f64), `%p`, `%%` (see [`crate::printk`]), because trace-cmd and
/// KernelShark evaluate the same text. A Rust placeholder (`{}`, `{name}`,
/// `{:?}`) is a compile error saying so; other braces are text (`{%d}`).
///
/// `trace!("fmt", args..)` records into the default tracer;
/// `trace!(tracer: t, "fmt", args..)` into `t` (a [`Tracer`](crate::Tracer),
/// a [`ContextHandle`](crate::ContextHandle), or a reference to one).
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// ringtrace::trace!(tracer: &t, "a=%llu b=%llu", 1u64, 2u64);
/// let line = t.pipe().next_line().unwrap().unwrap();
/// assert!(line.ends_with(": a=1 b=2\n"));
/// ```
///
/// Rust's style does not compile (`{id}` would otherwise print as is):
///
/// ```compile_fail,E0080
/// let id = 42u64;
/// ringtrace::trace!("request {id}");
/// ```
#[macro_export]
macro_rules! trace {
    (tracer: $t:expr, $fmt:expr $(, $arg:expr)* $(,)?) => {{
        let _ = $crate::Target::record(&$t, &$crate::bprintk!($fmt $(, $arg)*));
    }};
    ($fmt:expr $(, $arg:expr)* $(,)?) => {{
        let _ = $crate::context::record_global(&$crate::bprintk!($fmt $(, $arg)*));
    }};
}

/// Records a typed event (a type made with
/// [`declare_event!`](crate::declare_event)): `trace_event!(value)` into the
/// default tracer, `trace_event!(t, value)` into `t`.
///
/// ```
/// ringtrace::declare_event! {
///     /// A sample.
///     pub struct Sample: "demo" / "sample" = 950 { cpu: u32, value: u64 }
/// }
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// ringtrace::trace_event!(&t, Sample { cpu: 1, value: 7 });
/// let line = t.pipe().next_line().unwrap().unwrap();
/// assert!(line.ends_with(": sample: cpu=1 value=7\n"), "{line}");
/// ```
#[macro_export]
macro_rules! trace_event {
    ($t:expr, $ev:expr $(,)?) => {{
        let _ = $crate::Target::record(&$t, &$ev);
    }};
    ($ev:expr $(,)?) => {{
        let _ = $crate::context::record_global(&$ev);
    }};
}
