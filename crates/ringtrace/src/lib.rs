//! ringtrace: the Linux kernel's lockless tracing ring buffer and the
//! ftrace core on top of it, in user space.
//!
//! Record events into per-thread rings without locks or allocation, read
//! them back as ftrace text, and export them for `trace-cmd` and KernelShark:
//!
//! ```
//! use ringtrace::TracerConfig;
//! ringtrace::declare_event! {
//!     /// One request served.
//!     pub struct Served<'a>: "demo" / "served" = 1000 { bytes: u64, path: &'a str }
//! }
//! let tracer = TracerConfig::new().max_contexts(4).build()?;
//! // Record: binary printk (formatted when read) and a typed event.
//! ringtrace::trace!(tracer: &tracer, "start pass %d of %d", 1, 3);
//! ringtrace::trace_event!(&tracer, Served { bytes: 512, path: "/index.html" });
//! // Read: the merged view, in ftrace's `trace` format (consumes nothing).
//! let text = tracer.view().read_to_string()?;
//! assert!(text.contains(": start pass 1 of 3\n"));
//! assert!(text.contains(": served: bytes=512 path=/index.html\n"));
//! // Export: trace.dat for `trace-cmd report` and KernelShark.
//! let path = std::env::temp_dir().join(format!("ringtrace-doc-{}.dat", std::process::id()));
//! let file = std::fs::File::create(&path)?;
//! let (_, stats) = ringtrace::export::export_snapshot(&tracer, file, Default::default())?;
//! assert_eq!(stats.events, 2);
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where to go next
//!
//! - [`Tracer`] and [`TracerConfig`]: a trace instance, its rings (one per
//!   writing thread: a *context*), mode (overwrite = flight recorder, or
//!   producer/consumer), clock; [`global`] / [`init`] for the default one.
//! - Recording: [`trace!`] (binary printk), [`trace_event!`] with
//!   [`declare_event!`] (typed events), [`trace_marker`]; explicit
//!   per-thread contexts with [`Tracer::context`] ([`ContextHandle`]).
//! - Reading: [`Pipe`] ([`Tracer::pipe`]), [`output`] and [`text`] (ftrace
//!   lines), [`dump`] (dumps on panic and on fatal signals).
//! - Files: [`tracedat`] (trace.dat v6/v7 writer and reader, checked with
//!   the real trace-cmd).
//! - Other front ends: `layer` (a `tracing-subscriber` layer, crate
//!   feature `tracing`), `log_backend` (a `log` backend, crate feature
//!   `log`), [`span`] (span begin/end events any front end can record).
//! - Examples in `crates/ringtrace/examples/`: `flight_recorder` (overwrite
//!   mode, dump on crash), `live_pipe` (a reader thread following writers),
//!   `tracing_layer` (the `tracing` integration), `thread_per_core`
//!   (explicit contexts).
//!
//! # Signal safety
//!
//! ringtrace's own record macros ([`trace!`], [`trace_event!`]) and
//! [`trace_marker`] are async-signal-safe once the thread has its context
//! (its first ordinary event leases one): no lock, no allocation, one clock
//! read. A handler that records calls [`signal_scope`] first.
//!
//! The `tracing` and `log` front ends are **not** async-signal-safe: those
//! crates allocate and take locks inside themselves (the dispatcher, span
//! storage, the values' `Debug`/`Display` impls). Never call their macros
//! from a signal handler; use ringtrace's macros there.
//!
//! # Crate features
//!
//! - `tracing`: `ringtrace::layer::RingtraceLayer`.
//! - `log`: `ringtrace::log_backend`.
//!
//! # Modules
//!
//! - [`tracedat`]: reading and writing trace-cmd's `trace.dat` files (versions 6
//!   and 7) from raw ring-buffer pages, so `trace-cmd report` and KernelShark
//!   open what ringtrace records.
//! - [`clock`]: the clocks a trace can be recorded with (`tsc`, `mono`, `counter`).
//! - [`event`]: static event-type metadata and its ftrace `format` text.
//! - [`printk`]: binary printk: arguments stored raw, formatted when read.
//! - [`tracer`]: the [`Tracer`] (a trace instance) and the default one
//!   ([`global`], [`init`]).
//! - [`context`]: per-thread contexts, signal-handler nesting, the record path.
//! - [`trace!`], [`trace_event!`], [`trace_marker`]: the record macros.
//! - [`reader`]: the merged consuming pipe (`trace_pipe`).
//! - [`output`]: ftrace text lines for recorded events.
//! - [`dump`]: dumps on panic and on fatal signals (`ftrace_dump_on_oops`).
//! - [`export`]: streaming export of a live tracer (a drain) or a snapshot
//!   to trace.dat or JSON, with bounded memory.
//! - [`json`]: Chrome trace-event JSON, streamed (from trace.dat files too).
//! - [`span`]: span begin/end event types.
//! - [`session`]: rings and tables in shared memory, read from another
//!   process live or after the program died (`ringtrace record`).
//! - [`view`]: the merged non-consuming view (the kernel's `trace` file).
//! - [`snapshot`]: swap the live rings with a spare set, read it at leisure.
//! - [`RawPipe`] ([`Tracer::raw_pipe`]): whole pages of one context
//!   (`trace_pipe_raw`).
//!
//! # Rooms (the source layout)
//!
//! The source is laid out in rooms whose imports run one way, from the top
//! down (ARCHITECTURE.md at the repository root lists their files):
//!
//! - `frontends/`: the `tracing` layer and the `log` backend.
//! - `default_tracer`: which tracer `trace!` without a tracer records into
//!   (in process, or on the session named by `RINGTRACE_SESSION`).
//! - `session/`: the shared-memory flavor of a tracer's storage.
//! - `export/`: the drain, JSON, trace.dat; and every read or export
//!   method of [`Tracer`].
//! - `read/`: the pipe, the view, snapshots, crash dumps, event lines.
//! - `tracer/`: the [`Tracer`], its lease protocol, its clock, the record
//!   path ([`context`]), the record macros and the storage seam that the
//!   session implements; it never names a session.
//! - `fmt/`: the printf renderer and ftrace's line formats.
//! - `record/`: event types, the registry, binary printk sites and
//!   arguments, spans; it knows no tracer and no session.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod default_tracer;
mod frontends;
mod record;
pub mod session;
#[doc(hidden)]
pub mod signal;
mod sync;
pub mod tracer;

pub mod export;
mod fmt;
pub mod kernel;
// The kernel's ring-buffer benchmark, for `ringtrace bench`: not part of
// the API.
#[doc(hidden)]
pub mod kernel_bench;
pub mod latency;
mod read;

pub use export::{json, perfetto, tracedat};
// ftrace's line formats as plain functions: what the readers and the CLI
// render through, not part of the API (read with Pipe, View or a dump).
#[doc(hidden)]
pub use fmt::text;
pub use read::line as output;
pub use read::{dump, pipe as reader, snapshot, view};

#[cfg(feature = "tracing")]
pub use frontends::layer;
#[cfg(feature = "log")]
pub use frontends::log_backend;
pub use record::span;
/// Function tracing of Rust code: [`traced`] (`#[ringtrace::traced]`)
/// records a function's entry and return as ftrace's `funcgraph_entry` /
/// `funcgraph_exit` (the `function_graph` tracer), or its entry only as
/// `function` (`#[traced(entry_only)]`), into the default tracer. The
/// trace.dat's kallsyms section names each function, so `trace-cmd report`
/// and `ringtrace report` print the call graph with durations.
pub mod funcgraph {
    pub use crate::frontends::funcgraph::depth;
    // What `#[traced]` expands to: public for the expansion's path.
    #[doc(hidden)]
    pub use crate::frontends::funcgraph::{call, enter, Call, Graph};
    pub use crate::record::funcgraph::{
        func_addr, func_name, FuncCall, FuncEntry, FuncExit, FUNCGRAPH_ENTRY_EVENT,
        FUNCGRAPH_ENTRY_ID, FUNCGRAPH_EXIT_EVENT, FUNCGRAPH_EXIT_ID, FUNCTION_EVENT, FUNCTION_ID,
    };
}
/// `#[ringtrace::traced]`: see [`funcgraph`] (crate feature `macros`, on
/// by default).
#[cfg(feature = "macros")]
pub use ringtrace_macros::traced;
/// Stack traces on events (ftrace's `userstacktrace`): the `user_stack`
/// record, the frame-pointer walk, and how many events had no stack.
pub mod stack {
    pub use crate::record::stack::*;
    #[doc(hidden)]
    pub use crate::record::stack_walk::{thread_bounds, walk_from, StackBounds};
    pub use crate::tracer::stack_hook::no_stack_count;
}
pub mod printk {
    //! Binary printk: the write side stores a format id and the raw argument
    //! bytes; formatting happens when the record is read, like the kernel's
    //! `trace_bprintk` / `vbin_printf` / `bstr_printf`.
    //!
    //! # Placeholder syntax: C printf
    //!
    //! Formats use printf conversions, not Rust's `{}`: the same format text is
    //! exported in trace.dat's `printk_formats` section and evaluated there by
    //! libtraceevent (trace-cmd, KernelShark), so it must be C. Supported:
    //!
    //! ```text
    //! %[flags][width][.precision][length]conversion
    //! flags: - + space # 0      width, precision: decimal, at most 4096 (no `*`)
    //! length: (none) = 32-bit, l / ll / z = 64-bit   (h, hh, j, t, L are refused)
    //! conversion: d i u x X o   integers      c  char      s  string
    //!             p             pointer       f F e E g G  f64
    //!             %%            a percent sign
    //! ```
    //!
    //! Width and precision count characters for `%s` and `%c` (C counts bytes;
    //! the two agree on ASCII).
    //!
    //! Everything about a call site is checked at **compile time**: the format
    //! is parsed by a `const fn` (a malformed one does not compile), the number
    //! of arguments must match, and each argument's type must fit its conversion
    //! (checked in an inline `const` block against `BprintArg::FITS`, so it
    //! fails at `cargo build`, naming the argument; `cargo check` alone does not
    //! evaluate it): integers fit `d i u x X o p c`, `bool` fits the integer
    //! conversions and `s` (as `true`/`false`), `char` fits `c` and the integer
    //! conversions, `&str`/`String` fit `s`, `f32`/`f64` fit the float
    //! conversions, raw pointers fit `p` and the 64-bit integer conversions.
    //! Integers are cut to the conversion's width, as C's varargs would (`%d` of
    //! `-1i64` stores `-1`, of `u64::MAX` too). What only a value can break is
    //! checked when encoding: an integer given to `%c` must be a Unicode scalar
    //! value ([`EncodeError::ArgMismatch`](crate::event::EncodeError::ArgMismatch)).
    //!
    //! Cost: encoding a record with two `u64` arguments (`"a=%llu b=%llu"`) is
    //! a small part of `trace!`'s cost (see the bench crate's output): the macro
    //! hands the encoder the argument kinds as a constant, so
    //! the per-argument checks fold away.
    //!
    //! # Record layout: the kernel's `bprint` entry (ftrace type 6)
    //!
    //! ```text
    //! 0   common header (8 bytes, common_type = 6)
    //! 8   u64 ip     call-site "address"  = IP_BASE + (id << 4)
    //! 16  u64 fmt    format "address"     = FMT_ADDR_BASE + (id << 4)
    //! 24  u32 buf[]  arguments, packed like vbin_printf:
    //!       32-bit ints: 4 bytes, 4-aligned      64-bit ints, %p: 8 bytes, 4-aligned
    //!       %s: the bytes up to the first NUL, then NUL, unaligned
    //!       %c: u32 code point, 4-aligned         floats: f64 bits, 8 bytes, 4-aligned
    //!     record length rounded up to 4, padding zeroed
    //! ```
    //!
    //! Alignment is relative to `buf`, which sits at offset 24 of a 4-aligned
    //! record, so it equals the absolute alignment libtraceevent computes.
    //!
    //! # What trace-cmd 3.1.6 (libtraceevent 1.7.1) can print
    //!
    //! trace-cmd knows this event when its format (from [`BPRINT_EVENT`]) is in
    //! trace.dat's *ftrace* events section (system `ftrace`, which makes
    //! libtraceevent treat `bprint` specially), and it finds the format text by
    //! the `fmt` address in the `printk_formats` section
    //! (`printk_formats_text`). The `ip` prints as `file:line` through the
    //! kallsyms section (`kallsyms_text`). libtraceevent's `make_bprint_args`
    //! then walks the format and reads the arguments with the same packing as
    //! above. Checked with the Debian trace-cmd 3.1.6 on a hand-made v6 file:
    //!
    //! ```text
    //! demo-1234 [000] 1.000000: bprint: src/main.rs:114: ints -5 7 ff -9 18446744073709551615 00042 003 end
    //! demo-1234 [000] 1.000001: bprint: src/main.rs:115: strs [hello] [] 17 [ab] [   right] 0x1234
    //! demo-1234 [000] 1.000002: bprint: src/main.rs:116: bool true int 0
    //! demo-1234 [000] 1.000003: bprint: src/main.rs:117: flags >+<d 0x5 0377        <- "%+d %#x %#o" of 5, 255, 8
    //! demo-1234 [000] 1.000004: bprint: src/main.rs:118: left [1    ] then d       <- "[%-5d] then %d" of 1, 2
    //! demo-1234 [000] 1.000005: bprint: [FAILED TO PARSE] ip=... fmt=... buf=ARRAY[] <- %c
    //! demo-1234 [000] 1.000006: bprint: [FAILED TO PARSE] ...                      <- %f
    //! demo-1234 [000] 1.000007: bprint: [FAILED TO PARSE] ...                      <- "% d"
    //! demo-1234 [000] 1.000008: print: tracing_mark_write: marker text             <- Print
    //! ```
    //!
    //! So trace-cmd prints `d i u x X o p s` with lengths `l ll z`, the `0` flag,
    //! width and precision; it misreads the `+`, `#`, `-` and space flags and
    //! fails on `%c` and the float conversions (libtraceevent consumes no
    //! argument for them). [`trace_cmd_compatible`] tells whether a format is in
    //! the safe subset; ringtrace's own reader ([`format_record`]) handles the
    //! whole syntax.
    //!
    //! A call site's id is taken on first use, with atomics only, so even a
    //! first use in a signal handler is safe (`Site::id`).
    //!
    //! ```
    //! let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
    //! ringtrace::trace!(tracer: &t, "%s=%-4d|", "n", 7);
    //! assert!(t.pipe().next_line().unwrap().unwrap().ends_with(": n=7   |\n"));
    //! assert!(ringtrace::printk::trace_cmd_compatible("n=%d id=%08llx"));
    //! ```

    pub use crate::fmt::printf::{format_record, FormatError};
    pub use crate::fmt::printk::{format_bprint, format_print, BprintFields};
    pub use crate::record::printk::*;

    // What the record macros expand to and the read side's internals:
    // public because macro expansions and the other rooms need a path, not
    // part of the API.
    #[doc(hidden)]
    pub use crate::fmt::printf::{write_record, ConvText};
    #[doc(hidden)]
    pub use crate::fmt::printk::{kallsyms_text, printk_formats_text};
    #[doc(hidden)]
    pub use crate::record::printk::{
        arg_kinds, count_args, first_misfit, fmt_addr, import_site, ip_addr, refuse_rust_style,
        site_by_fmt_addr, site_by_id, sites, ArgKind, ArgList, ArgValue, Bprint, BprintArg,
        FromSite, KindsSource, Site, SiteKinds, AMBIGUOUS_FORMAT, BPRINT_ARGS_OFFSET, BPRINT_EVENT,
        FMT_ADDR_BASE, IP_BASE, MAX_SITES, MAX_WIDTH, PRINT_EVENT,
    };
    #[doc(hidden)]
    pub mod fits {
        pub use crate::record::printk::fits::*;
    }

    pub(crate) use crate::fmt::printf::{write_site, FormatCache};
    pub(crate) use crate::fmt::printk::escape;
}

/// Event types: static metadata (ftrace's `format` text), the [`Record`]
/// trait every recordable value implements, the registry of ids, and the
/// common fields every record starts with. Typed events are declared with
/// [`declare_event!`](crate::declare_event).
///
/// [`Record`]: event::Record
///
/// ```
/// ringtrace::declare_event! {
///     /// A packet seen.
///     pub struct Packet: "net" / "packet" = 1200 { len: u32, port: u16 }
/// }
/// use ringtrace::event::Record;
/// let ty = Packet { len: 0, port: 0 }.event_type();
/// assert!(ty.format_text().contains("field:u32 len;"));
/// ```
pub mod event {
    // Named one by one: a glob would also re-export `declare_event!` here,
    // a second path for the root macro.
    #[doc(hidden)]
    pub use crate::record::event::{
        flags, write_lossy, BPRINT_EVENT, BPRINT_ID, COMMON_FIELDS, COMMON_HEADER_SIZE,
        PRINT_EVENT, PRINT_ID,
    };
    pub use crate::record::event::{
        Array, CommonFields, DecodeError, EncodeError, EventField, EventType, Field, Record,
        Registry, RegistryError, FIRST_USER_ID, MAX_EVENT_ID,
    };
    // `declare_event!`'s expansion (field layout at compile time): public
    // because the macro needs a path, not part of the API.
    #[doc(hidden)]
    pub use crate::record::event::{layout, valid_user_id, FieldDecl, Layout};
}
pub use tracer::clock;

/// Per-thread contexts, signal-handler nesting, the record path
/// ([`tracer::context`]).
pub mod context {
    // What `trace!` without a tracer expands to: the macro needs a path.
    #[doc(hidden)]
    pub use crate::default_tracer::record_global;
    pub use crate::tracer::context::*;
}

pub use context::{signal_scope, ContextHandle, RecordError, Target};
pub use default_tracer::{global, init, trace_marker};
pub use export::{Drain, ExportFormat};
pub use latency::latency;
#[doc(no_inline)]
pub use reader::{Pipe, RawPipe};
/// The lockless ring buffer the tracer is built on (the `ringtrace-ring`
/// crate): pages, writers, readers, exact accounting. Use it directly for a
/// ring without the tracing core.
///
/// ```
/// use ringtrace::ring::{Config, RingBuffer};
/// let buf = RingBuffer::new(Config::new(1)).unwrap();
/// buf.writer(0).unwrap().write(1, b"event").unwrap();
/// let s = buf.stats(0).unwrap();
/// assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun + s.entries);
/// assert_eq!(s.entries, 1);
/// ```
pub use ringtrace_ring as ring;
/// The ring mode ([`TracerConfig::mode`]): `Overwrite` (flight recorder) or
/// `ProducerConsumer` (new events are dropped when a ring is full).
#[doc(no_inline)]
pub use ringtrace_ring::Mode;

/// The README's Rust snippets, compiled and run as this crate's doctests
/// (`cargo test --doc -p ringtrace readme`), so that code users copy works.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
#[doc(no_inline)]
pub use snapshot::{Snapshot, SnapshotError};
pub use tracer::{Tracer, TracerConfig, TracerError, TracerStats};
#[doc(no_inline)]
pub use view::View;
