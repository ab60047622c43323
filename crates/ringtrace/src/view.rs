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
//! later ends that ring's part. (The kernel pauses writers while its `trace`
//! file is open, the `pause-on-trace` option, for the same end; writers here
//! go on.) Without the bound, writers faster than the view kept it going for
//! as long as they wrote.
//!
//! Events the writer overwrote under the view are skipped and reported as a
//! `CPU:N [LOST n EVENTS]` line before the next event of that ring, as the
//! pipe reports losses. A [`crate::Pipe`] or drain may consume meanwhile: the
//! view then continues after what was consumed, counting it as skipped.

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

/// The merged non-consuming view of a tracer; see the module docs.
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
    opts: TextOptions,
}

impl Tracer {
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
        let buf = self.ring_buffer();
        let iters: Vec<(usize, RingIter<'_>)> = (0..self.max_contexts())
            .filter_map(|r| buf.iter(r).ok().map(|it| (r, it)))
            .collect();
        let n = iters.len();
        // After the iterators: an event they start on is older than this.
        let until = iters
            .iter()
            .map(|(r, _)| buf.stats(*r).map_or(u64::MAX, |s| s.now_ts))
            .collect();
        View {
            tracer: self,
            iters,
            heads: vec![None; n],
            done: vec![false; n],
            until,
            opts,
        }
    }
}

impl View<'_> {
    /// The next event in time-stamp order, handed to `f`; `Ok(None)` at the
    /// end of what was committed when each ring was reached, or at the
    /// first event written after the view was made.
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
            if self.heads[i].is_none() && !self.done[i] {
                match self.iters[i].1.next()? {
                    Some(e) if e.timestamp > self.until[i] => self.done[i] = true,
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
                if best.map_or(true, |(b, _)| h.timestamp < b) {
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
}
