//! Snapshots (the kernel's `snapshot` file): the live rings are swapped
//! with a spare set of the same shape, so the events recorded so far can be
//! read at leisure while recording goes on into the (now empty) live rings.
//!
//! Each ring is exchanged with `RingBuffer::swap_ring`: pages, positions and
//! counters move together, no event is copied, and writers keep writing
//! throughout (a write in flight on a ring delays its swap). A ring that has
//! a reader (a [`crate::Pipe`], a drain) cannot be swapped: drop the reader
//! first.

use ringtrace_ring::{ControlError, RingBuffer};

use crate::output::TextOptions;
use crate::reader::Pipe;
use crate::tracer::Tracer;

/// Why a snapshot could not be taken. Rings swapped before the failure are
/// swapped back (see [`Tracer::snapshot`]).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The spare rings could not be allocated.
    #[error("snapshot: cannot allocate the spare rings: {0}")]
    Alloc(#[from] ringtrace_ring::ConfigError),
    /// A ring could not be swapped (a reader holds it, or a write stayed in
    /// flight).
    #[error("snapshot of context {ring}: {source}")]
    Swap {
        /// The context.
        ring: usize,
        /// Why.
        #[source]
        source: ControlError,
    },
}

/// The events of a tracer at the moment of [`Tracer::snapshot`], in spare
/// rings owned by this value.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// t.marker("kept");
/// let snap = t.snapshot().unwrap();
/// assert_eq!(t.ring_stats(0).unwrap().entries, 0, "the live ring starts empty");
/// let s = snap.ring_buffer().stats(0).unwrap();
/// assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun + s.entries);
/// assert_eq!(s.entries, 1);
/// assert!(snap.pipe().read_to_string().unwrap().ends_with("tracing_mark_write: kept\n"));
/// ```
#[derive(Debug)]
pub struct Snapshot<'t> {
    tracer: &'t Tracer,
    buf: RingBuffer,
}

impl<'t> Snapshot<'t> {
    /// Swaps every ring of `tracer` with a spare one ([`Tracer::snapshot`]).
    pub(crate) fn take(tracer: &'t Tracer) -> Result<Snapshot<'t>, SnapshotError> {
        let live = tracer.ring_buffer();
        let spare = RingBuffer::new(*live.config())?;
        for ring in 0..live.rings() {
            if let Err(source) = live.swap_ring(&spare, ring) {
                for back in 0..ring {
                    let _ = live.swap_ring(&spare, back);
                }
                return Err(SnapshotError::Swap { ring, source });
            }
        }
        Ok(Snapshot { tracer, buf: spare })
    }

    /// The snapshot's events, merged and consumed, as the tracer's pipe
    /// reads the live rings.
    #[must_use]
    pub fn pipe(&self) -> Pipe<'_> {
        self.pipe_with(TextOptions::default())
    }

    /// [`Snapshot::pipe`] with text options.
    #[must_use]
    pub fn pipe_with(&self, opts: TextOptions) -> Pipe<'_> {
        Pipe::over(self.tracer, &self.buf, opts)
    }

    /// The spare rings holding the snapshot (stats, page reads, iterators).
    #[must_use]
    pub fn ring_buffer(&self) -> &RingBuffer {
        &self.buf
    }
}
