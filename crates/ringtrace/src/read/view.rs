//! The merged non-consuming view across all contexts (the kernel's `trace`
//! file): every ring's live iterator (`RingBuffer::iter`), merged by time
//! stamp, read while writers keep writing and without taking anything from
//! a consuming reader.
//!
//! ```text
//!   ring 0 iter: [t=5] [t=9] ...     each ring's next event is copied out
//!   ring 1 iter: [t=3] [t=4] ...  -> (the iterator checks it was not
//!   ring 2 iter: (end)               overwritten meanwhile); the smallest
//!                                    time stamp goes first (ties: lower ring)
//! ```
//!
//! The view ends: it shows what was written before it was made. Each ring's
//! newest time stamp is read when the view is made, and an event stamped
//! later ends that ring's part. A ring whose writer lapped the view before
//! the view reached it holds nothing that old: its part then starts at its
//! oldest surviving event and ends at its newest stamp at that moment. (The kernel pauses writers while its `trace`
//! file is open, the `pause-on-trace` option, for the same end; writers here
//! go on.) Without the bound, writers faster than the view kept it going for
//! as long as they wrote.
//!
//! Events the writer overwrote under the view are skipped and reported as a
//! `CPU:N [LOST n EVENTS]` line before the next event of that ring, as the
//! pipe reports losses. A [`crate::Pipe`] or drain may consume meanwhile: the
//! view then continues after what was consumed, counting it as skipped.
//! Every such count is exact: the events written to a ring between two of
//! its events shown and not shown. After a ring's last event shown there is
//! no event to report a skip with, and the iterator's jump past the view's
//! end cannot tell events overwritten under the view from events written
//! after it began: [`View::skipped_at_end`] counts both, a bound on what
//! was lost there.
//!
//! A ring the view cannot read (its iterator reports a damaged page or
//! ring) gives that error once and is not read further; the other rings
//! go on.
//!
//! # Live export
//!
//! [`Tracer::export_view`] writes what the view reads to `trace.dat` or JSON
//! without consuming anything and without a temporary copy: memory is one
//! page plus the file's metadata, time is what is read.
//!
//! ```text
//!  trace.dat: metadata (every known event format and thread name: the
//!             file is written before the events are read) | ring 0 read by
//!             its iterator, packed into pages (PagePacker), lost counts in
//!             the page headers | ring 1 ... (each ring bounded by its
//!             newest stamp when its turn came)
//!  JSON:      the merged view, each event decoded through the same
//!             metadata and streamed as JSON
//! ```

use ringtrace_ring::{ReadError, RingIter};

use crate::output::TextOptions;
use crate::reader::EventRef;
use crate::tracer::Tracer;

/// One ring's next event, copied out of its iterator.
#[derive(Debug, Clone)]
struct Head {
    timestamp: u64,
    lost_events: u64,
    payload: Vec<u8>,
}

/// The merged non-consuming view of a tracer ([`Tracer::view`]); see the
/// module docs. It reads every ring's events in time-stamp order, up to
/// what was written when it was made, and consumes nothing.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// t.marker("one");
/// t.marker("two");
/// let mut view = t.view();
/// assert!(view.next_line().unwrap().unwrap().ends_with("tracing_mark_write: one\n"));
/// assert!(view.next_line().unwrap().unwrap().ends_with("tracing_mark_write: two\n"));
/// assert!(view.next_line().unwrap().is_none());
/// assert_eq!(view.lost(0) + view.lost(1), 0);
/// // Nothing was consumed: the next view shows both again.
/// assert_eq!(t.view().read_to_string().unwrap().lines().count(), 2);
/// ```
#[derive(Debug)]
pub struct View<'t> {
    tracer: &'t Tracer,
    iters: Vec<(usize, RingIter<'t>)>,
    heads: Vec<Option<Head>>,
    /// Whether the ring's iterator reached its end once (a live writer may
    /// add more; the view does not wait for it), or an event stamped after
    /// the view was made.
    done: Vec<bool>,
    /// Each ring's newest time stamp when the view was made: its events
    /// stamped later are not shown.
    until: Vec<u64>,
    /// Losses reported with the events the view returned, per ring.
    lost: Vec<u64>,
    /// Losses the iterator reported with an event the view did not return
    /// (stamped after `until`), per ring.
    end_lost: Vec<u64>,
    /// The ring whose iterator gave the last error.
    last_failed: Option<usize>,
    /// Events returned per ring, and their bound: no more than a ring holds
    /// (see `ring_bound`), so a loop over shared memory always ends.
    returned: Vec<u64>,
    bound: u64,
    opts: TextOptions,
}

/// Most events of one ring a view returns: those stamped no later than the
/// ring's newest stamp when the view reached it were all written by then,
/// and at most a ring's worth (its pages, pool pages included, and the
/// reader's page, 8 bytes an event at least) were still in it. A bound on a loop over shared memory
/// that a sound ring never reaches.
pub(crate) fn ring_bound(buf: &ringtrace_ring::RingBuffer) -> u64 {
    let c = buf.config();
    (c.max_ring_pages() as u64 + 1) * (c.page_size as u64 / 8) + 1
}

impl<'t> View<'t> {
    /// The merged non-consuming view of `tracer`'s rings
    /// ([`Tracer::view_with`]).
    pub(crate) fn over(tracer: &'t Tracer, opts: TextOptions) -> View<'t> {
        let buf = tracer.ring_buffer();
        let iters: Vec<(usize, RingIter<'_>)> = (0..tracer.max_contexts())
            .filter(|&r| !empty_and_quiet(buf, r))
            .filter_map(|r| buf.iter(r).ok().map(|it| (r, it)))
            .collect();
        let n = iters.len();
        // After the iterators: an event they start on is older than this.
        let until = iters
            .iter()
            .map(|(r, _)| buf.stats(*r).map_or(u64::MAX, |s| s.now_ts))
            .collect();
        View {
            tracer,
            iters,
            heads: vec![None; n],
            done: vec![false; n],
            until,
            lost: vec![0; n],
            end_lost: vec![0; n],
            last_failed: None,
            returned: vec![0; n],
            bound: ring_bound(buf),
            opts,
        }
    }
}

/// Whether ring `ring` holds no unread event and no writer wrote to it
/// between two samples of its counters: the view has nothing to read
/// there, and leaves it alone. A ring's iterator finds the head page by
/// walking the ring's links, so a large session's empty rings would cost
/// memory in proportion to their size; a live ring is always read (its
/// counters are a snapshot that a writer moving on may undercount).
pub(crate) fn empty_and_quiet(buf: &ringtrace_ring::RingBuffer, ring: usize) -> bool {
    let sample = || {
        buf.stats(ring)
            .ok()
            .map(|s| (s.entries, s.committed, s.now_ts))
    };
    match (sample(), sample()) {
        (Some(a), Some(b)) => a == b && a.0 == 0,
        _ => false,
    }
}

impl View<'_> {
    /// The next event in time-stamp order, handed to `f`; `Ok(None)` at the
    /// end of what was committed when each ring was reached, or at the
    /// first event written after the view was made. An error names a ring
    /// that cannot be read ([`View::last_failed`]); that ring is not read
    /// again, and the next call goes on with the others.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("x");
    /// assert_eq!(t.view().next_with(|e| e.ring).unwrap(), Some(0));
    /// ```
    pub fn next_with<T>(
        &mut self,
        f: impl FnOnce(EventRef<'_>) -> T,
    ) -> Result<Option<T>, ReadError> {
        let mut best: Option<(u64, usize)> = None;
        for i in 0..self.iters.len() {
            if self.heads[i].is_none() && !self.done[i] && self.returned[i] >= self.bound {
                self.done[i] = true;
            }
            if self.heads[i].is_none() && !self.done[i] {
                let ring = self.iters[i].0;
                let tracer = self.tracer;
                let next = match self.iters[i].1.next() {
                    Ok(next) => next,
                    Err(e) => {
                        self.done[i] = true;
                        self.last_failed = Some(self.iters[i].0);
                        return Err(e);
                    }
                };
                // Writers that lapped the view before it reached this ring
                // left nothing as old as its bound: the ring's part then
                // starts at its oldest surviving event and ends at its
                // newest stamp now (still at most a ring's worth).
                if let Some(e) = &next {
                    if self.returned[i] == 0 && e.timestamp > self.until[i] {
                        let now = tracer.ring_buffer().stats(ring);
                        self.until[i] = now.map_or(u64::MAX, |s| s.now_ts).max(e.timestamp);
                    }
                }
                match next {
                    Some(e) if e.timestamp > self.until[i] => {
                        self.end_lost[i] += e.lost_events;
                        self.done[i] = true;
                    }
                    Some(e) => {
                        self.heads[i] = Some(Head {
                            timestamp: e.timestamp,
                            lost_events: e.lost_events,
                            payload: e.payload.to_vec(),
                        })
                    }
                    None => self.done[i] = true,
                }
            }
            if let Some(h) = &self.heads[i] {
                if best.is_none_or(|(b, _)| h.timestamp < b) {
                    best = Some((h.timestamp, i));
                }
            }
        }
        let Some((_, i)) = best else {
            return Ok(None);
        };
        let Some(h) = self.heads[i].take() else {
            return Ok(None);
        };
        self.lost[i] += h.lost_events;
        self.returned[i] += 1;
        Ok(Some(f(EventRef {
            ring: self.iters[i].0,
            timestamp: h.timestamp,
            lost_events: h.lost_events,
            payload: &h.payload,
        })))
    }

    /// The next event as text, with a `CPU:N [LOST n EVENTS]` line first
    /// when events were skipped before it.
    pub fn next_line(&mut self) -> Result<Option<String>, ReadError> {
        let inner = &*self.tracer.inner;
        let opts = self.opts;
        self.next_with(|e| e.line(inner, &opts))
    }

    /// Everything the view holds, as text.
    pub fn read_to_string(&mut self) -> Result<String, ReadError> {
        let mut out = String::new();
        while let Some(l) = self.next_line()? {
            out.push_str(&l);
        }
        Ok(out)
    }

    /// Events of ring `ring` the view skipped because they were
    /// overwritten or consumed under it.
    #[must_use]
    pub fn skipped(&self, ring: usize) -> u64 {
        self.iters
            .iter()
            .find(|(r, _)| *r == ring)
            .map_or(0, |(_, it)| it.skipped())
    }

    /// Events of ring `ring` skipped between the events the view returned
    /// (overwritten or consumed under it, or dropped by writers and noted
    /// in the ring): the sum of the `lost_events` it reported for `ring`.
    ///
    /// What is guaranteed: between two events of a ring that the view
    /// returned, the events written to that ring and not returned number
    /// exactly the second one's `lost_events`, with the ring iterator's two
    /// approximations (`RingIter::skipped`: a write dropped mid-page is
    /// counted at the page's end; a write in flight on the consumer's page
    /// when the view jumps, and discarded later, is counted once).
    #[must_use]
    pub fn lost(&self, ring: usize) -> u64 {
        self.index(ring).map_or(0, |i| self.lost[i])
    }

    /// Events of ring `ring` skipped after the last event the view returned
    /// and not reported with an event: overwritten or consumed under the
    /// view, or written after the view began (the ring's iterator, jumping
    /// past the view's end, cannot tell them apart). At most this many of
    /// the ring's events before the view's end were lost.
    #[must_use]
    pub fn skipped_at_end(&self, ring: usize) -> u64 {
        self.index(ring)
            .map_or(0, |i| self.end_lost[i] + self.iters[i].1.pending_lost())
    }

    /// The ring whose iterator gave the last error [`View::next_with`]
    /// returned.
    #[must_use]
    pub fn last_failed(&self) -> Option<usize> {
        self.last_failed
    }

    fn index(&self, ring: usize) -> Option<usize> {
        self.iters.iter().position(|(r, _)| *r == ring)
    }
}

/// What [`Tracer::export_view`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewStats {
    /// Events written to the output.
    pub events: u64,
    /// Events skipped between events written (overwritten or consumed
    /// while read, or dropped by writers and noted in the ring): each is
    /// in the output, as a lost count before the next event of its
    /// context (a flagged page in `trace.dat`, a `lost events` mark in JSON).
    pub lost: u64,
    /// Events skipped after the last event written of a context: lost as
    /// above, or written after the export reached that context (its
    /// iterator cannot tell them apart): a bound on the losses there, which
    /// the output has no event to put before.
    pub skipped_at_end: u64,
    /// Records read whole that the output's formats could not decode
    /// (JSON only; `trace.dat` keeps them as they are).
    pub undecodable: u64,
    /// Contexts not read to their end, with the reason (a damaged page or
    /// ring).
    pub damaged: Vec<(usize, String)>,
    /// Whether `stop` ended the export early (the output is complete, with
    /// what was read until then).
    pub stopped: bool,
}
