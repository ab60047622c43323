//! A tracer's ways out: every method of [`Tracer`] that reads its rings
//! back or writes them out, in one `impl Tracer`.
//!
//! # Terms
//!
//! - **Pipe** and **raw pipe**: consuming readers ([`crate::read::pipe`]).
//! - **View**: the non-consuming reader, and its live export
//!   ([`crate::read::view`], `export/view.rs`).
//! - **Snapshot**: the rings swapped with spares ([`crate::read::snapshot`]).
//! - **Dump**: the crash dumps ([`crate::read::dump`]).
//! - **Drain**: the streaming export ([`Drain`]).
//!
//! # Contract
//!
//! Each method here only names its reader and delegates to the constructor
//! or function of the room that owns it (read/, fmt/, export/); nothing of
//! how a reader works is here. The tracer room defines [`Tracer`] and knows
//! none of these rooms: the methods live at the top of the read and export
//! rooms so that every import runs downward. Besides this file and
//! `tracer/`, only the session room has an `impl Tracer` (attaching a
//! tracer to a shared-memory session).

use crate::sync::AtomicBool;
use std::io::{Seek, Write};

use crate::dump::DumpError;
use crate::export::{Drain, ExportError, ExportFormat};
use crate::output::TextOptions;
use crate::reader::{Pipe, RawPipe};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::text::Style;
use crate::tracer::Tracer;
use crate::view::{View, ViewStats};

// Methods are grouped by reader: the pipes, the view and its export, the
// snapshot, the dumps, the drain, the `trace` file header.
impl Tracer {
    /// The merged consuming pipe with default text options. It takes every
    /// ring's reader lock (one consuming reader per ring; see
    /// `RingBuffer::consumer`). Where another consuming reader holds a
    /// ring, every read from the pipe fails with
    /// [`ReadError::ReaderHeld`](ringtrace_ring::ReadError::ReaderHeld), naming it, and nothing is consumed: a
    /// program run under `ringtrace record` gets this, since `record`
    /// reads its rings (the events go to `record`'s output). A reader of
    /// this process is waited for 2 s at most; a dead one is taken over
    /// ([`Pipe::took_over`]).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("x");
    /// assert_eq!(t.pipe().read_to_string().unwrap().lines().count(), 1);
    /// ```
    #[must_use]
    pub fn pipe(&self) -> Pipe<'_> {
        self.pipe_with(TextOptions::default())
    }

    /// The merged consuming pipe with the given text options.
    ///
    /// ```
    /// use ringtrace::output::TextOptions;
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("x");
    /// let opts = TextOptions { ns_timestamps: true, ..Default::default() };
    /// assert!(t.pipe_with(opts).next_line().unwrap().is_some());
    /// ```
    #[must_use]
    pub fn pipe_with(&self, opts: TextOptions) -> Pipe<'_> {
        Pipe::over(self, self.inner.buf(), opts)
    }

    /// The raw page reader of context `ring`; `RingError::ReaderHeld`
    /// when another consuming reader holds that ring (see
    /// [`Tracer::pipe`]).
    pub fn raw_pipe(&self, ring: usize) -> Result<RawPipe<'_>, ringtrace_ring::RingError> {
        RawPipe::open(self.ring_buffer(), ring)
    }

    /// The merged non-consuming view (the kernel's `trace` file) with
    /// default text options. Nothing is consumed: a pipe or a drain still
    /// gets every event.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("seen twice");
    /// assert!(t.view().read_to_string().unwrap().contains("seen twice"));
    /// assert!(t.pipe().read_to_string().unwrap().contains("seen twice"));
    /// ```
    #[must_use]
    pub fn view(&self) -> View<'_> {
        self.view_with(TextOptions::default())
    }

    /// The merged non-consuming view with the given text options.
    #[must_use]
    pub fn view_with(&self, opts: TextOptions) -> View<'_> {
        View::over(self, opts)
    }

    /// Writes what the non-consuming view reads (see the module docs) to
    /// `out` in `format`, while writers keep writing: nothing is consumed,
    /// no reader lock is taken, nothing is copied first. Each ring shows
    /// what was written before its turn came, each event checked not
    /// overwritten while it was copied; what was overwritten or consumed
    /// meanwhile is counted in [`ViewStats`] and marked in the output.
    /// `stop` is checked between events: once set, the output is finished
    /// with what was read.
    ///
    /// ```
    /// use core::sync::atomic::AtomicBool;
    /// use ringtrace::export::ExportFormat;
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("kept");
    /// let (out, st) = t
    ///     .export_view(std::io::Cursor::new(Vec::new()), ExportFormat::Json, &AtomicBool::new(false))
    ///     .unwrap();
    /// assert_eq!((st.events, st.lost), (1, 0));
    /// assert!(String::from_utf8(out.into_inner()).unwrap().contains("kept"));
    /// assert!(t.pipe().read_to_string().unwrap().contains("kept"), "nothing consumed");
    /// ```
    pub fn export_view<W: Write + Seek>(
        &self,
        out: W,
        format: ExportFormat,
        stop: &AtomicBool,
    ) -> Result<(W, ViewStats), ExportError> {
        super::view::export_view(self, out, format, stop)
    }

    /// Takes a snapshot: every context's ring is swapped with an empty spare
    /// one; the returned [`Snapshot`] holds what was recorded, and recording
    /// continues into the emptied rings. On error, the rings already swapped
    /// are swapped back (if that fails too, their events stay in the
    /// returned error's spare: the error says which context failed).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("before");
    /// let snap = t.snapshot().unwrap();
    /// t.marker("after");
    /// assert!(snap.pipe().read_to_string().unwrap().contains("before"));
    /// let live = t.pipe().read_to_string().unwrap();
    /// assert!(live.contains("after") && !live.contains("before"));
    /// ```
    pub fn snapshot(&self) -> Result<Snapshot<'_>, SnapshotError> {
        Snapshot::take(self)
    }

    /// Dumps every ring, merged, to stderr when a thread panics (after the
    /// previous panic hook ran). Recording stops at the dump.
    ///
    /// ```
    /// let t: &'static ringtrace::Tracer = Box::leak(Box::new(ringtrace::Tracer::new(Default::default()).unwrap()));
    /// t.dump_on_panic(); // a panic from here on prints the trace after the message
    /// ```
    pub fn dump_on_panic(&self) {
        crate::dump::dump_on_panic(self)
    }

    /// Dumps every ring, merged, to stderr on SIGSEGV, SIGBUS, SIGABRT,
    /// SIGILL or SIGFPE, then dies of the signal. Replaces the handlers
    /// already installed for those signals (std's stack-overflow message
    /// among them). The last tracer to call this is the one dumped.
    ///
    /// ```
    /// let t: &'static ringtrace::Tracer = Box::leak(Box::new(ringtrace::Tracer::new(Default::default()).unwrap()));
    /// t.dump_on_fatal_signal().unwrap(); // SIGSEGV etc. now dump the trace first
    /// ```
    pub fn dump_on_fatal_signal(&self) -> Result<(), DumpError> {
        crate::dump::dump_on_fatal_signal(self)
    }

    /// Writes the dump (recording stops first) to `out`, as the crash paths
    /// do; for tests and for a program's own "dump now" command. Allocates
    /// nothing.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
    /// t.marker("last words");
    /// let mut out = Vec::new();
    /// t.dump_to(&mut |b: &[u8]| out.extend_from_slice(b));
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("Dumping ftrace buffer:\n---------------------------------\n"));
    /// assert!(text.contains("tracing_mark_write: last words\n"));
    /// assert!(!t.is_on());
    /// ```
    pub fn dump_to(&self, out: &mut dyn FnMut(&[u8])) {
        crate::dump::dump_to(self, out)
    }

    /// A [`Drain`] of this tracer: takes every ring's reader lock (a dead
    /// reader's is taken over; see [`ringtrace_ring::RingBuffer::consumer`]).
    /// A ring that another live reader holds is not read: it is listed by
    /// [`Drain::unread_rings`], which a caller must check, since the output
    /// then lacks that ring's events.
    pub fn drain(&self) -> Drain<'_> {
        Drain::new(self)
    }

    /// The `trace` file header for this tracer (`# tracer: nop`, the
    /// entries line, the column legend), with the current counters.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(3).build().unwrap();
    /// assert!(t.header_text(ringtrace::text::Style::default()).contains("#P:3\n"));
    /// ```
    #[must_use]
    pub fn header_text(&self, style: Style) -> String {
        crate::output::header_text(self, style)
    }
}
