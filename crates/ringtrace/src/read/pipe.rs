//! The merged consuming pipe across all contexts (the kernel's
//! `trace_pipe`).
//!
//! A [`Pipe`] holds the consuming reader (and so the reader lock) of every
//! ring. Each step peeks the head of each ring, picks the smallest time
//! stamp (ties go to the lower ring, as trace-cmd merges) and consumes it:
//!
//! ```text
//!   ring 0: [t=5] [t=9] ...        heads cached: a ring's head stays put
//!   ring 1: [t=3] [t=4] ...   -->  until consumed (it is on the reader's
//!   ring 2: (empty)                 own page), so only consumed and empty
//!                                   rings are peeked again.
//!   next = ring 1 @ 3
//! ```
//!
//! Within a ring, events come in ring order (nested events carry the time
//! stamp of the event they interrupted). Across rings the order is by time
//! stamp among the events committed at the moment of the step: a live read
//! may return an event of one ring before a smaller-stamped event another
//! ring commits later.
//!
//! # The live merge's bound
//!
//! Rings found empty are looked at again only every [`RESCAN_STEPS`] steps
//! (and always before the pipe says it is empty), and then first with the
//! consumer's `nothing_to_read`, which answers for an empty ring without a
//! peek: a session has 64 rings, most of them empty, and looking at each
//! at every step would cost more than formatting the event. So, while
//! writers write, an event committed to a ring the pipe found empty goes
//! after **at most [`RESCAN_STEPS`] events of other rings stamped later
//! than it**, and after every event stamped earlier. Exact order at each step would need a peek of every ring per
//! event; rings read while their writers are stopped (a dump, a finished
//! program, a snapshot) merge exactly.
//!
//! Where a ring lost events (overwritten, dropped), the event after the loss
//! is preceded by a `CPU:N [LOST n EVENTS]` line.
//!
//! The blocking variants ([`Pipe::next_line_timeout`]) sleep in the ring's
//! blocking wait (`RingBuffer::wait_any`, a futex the writers wake) until
//! some ring has data.
//!
//! The merged *non-consuming* view (the kernel's `trace` file) is
//! [`crate::view::View`]; whole pages (`trace_pipe_raw`) come from the
//! ring's `Consumer::read_page`, which the exporter uses.

use std::time::{Duration, Instant};

use ringtrace_ring::{Consumer, PeekMark, ReadError, WaitFor};

use crate::event::CommonFields;
use crate::output::{format_missing, write_event, write_event_cached, HeadCache, TextOptions};
use crate::tracer::Tracer;

/// One event read from a [`Pipe`], borrowed from the ring.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// ringtrace::trace!(tracer: &t, "hi");
/// let ring = t.pipe().next_with(|e| e.ring).unwrap();
/// assert_eq!(ring, Some(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Context (ring) number.
    pub ring: usize,
    /// Time stamp in the tracer clock's unit.
    pub timestamp: u64,
    /// Events this ring lost just before this one.
    pub lost_events: u64,
    /// The record (common header first), rounded up to 4 bytes.
    pub payload: &'a [u8],
}

impl EventRef<'_> {
    /// The event's text: a `CPU:N [LOST n EVENTS]` line first when events
    /// were lost before it, then its `trace` line (newline included).
    pub(crate) fn line(&self, inner: &crate::tracer::Inner, opts: &TextOptions) -> String {
        let mut s = String::with_capacity(96);
        self.write_line(inner, opts, &mut s);
        s
    }

    /// [`EventRef::line`] appended to `s`.
    pub(crate) fn write_line(
        &self,
        inner: &crate::tracer::Inner,
        opts: &TextOptions,
        s: &mut String,
    ) {
        // Writing to a String cannot fail.
        let _ = write_event(
            s,
            inner,
            opts,
            self.ring,
            self.timestamp,
            self.lost_events,
            self.payload,
        );
    }

    /// The record's type id and common fields.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// ringtrace::trace!(tracer: &t, "hi");
    /// let id = t.pipe().next_with(|e| e.common().map(|c| c.0)).unwrap();
    /// assert_eq!(id, Some(Some(ringtrace::printk::BPRINT_ID)));
    /// ```
    #[must_use]
    pub fn common(&self) -> Option<(u16, CommonFields)> {
        CommonFields::read(self.payload)
    }

    /// An owned copy.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("m");
    /// let e = t.pipe().next_with(|e| e.to_owned_event()).unwrap().unwrap();
    /// assert_eq!(e.ring, 0);
    /// ```
    #[must_use]
    pub fn to_owned_event(&self) -> OwnedEvent {
        OwnedEvent {
            ring: self.ring,
            timestamp: self.timestamp,
            lost_events: self.lost_events,
            payload: self.payload.to_vec(),
        }
    }
}

/// An owned event, as [`Pipe::next_event`] returns it.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// t.marker("m");
/// let e = t.pipe().next_event().unwrap().unwrap();
/// assert_eq!(e.lost_events, 0);
/// assert!(e.payload.len() >= 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEvent {
    /// Context (ring) number.
    pub ring: usize,
    /// Time stamp in the tracer clock's unit.
    pub timestamp: u64,
    /// Events this ring lost just before this one.
    pub lost_events: u64,
    /// The record (common header first), rounded up to 4 bytes.
    pub payload: Vec<u8>,
}

impl OwnedEvent {
    /// The record's type id and common fields.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("m");
    /// let e = t.pipe().next_event().unwrap().unwrap();
    /// assert_eq!(e.common().map(|c| c.0), Some(ringtrace::printk::PRINT_ID));
    /// ```
    #[must_use]
    pub fn common(&self) -> Option<(u16, CommonFields)> {
        CommonFields::read(&self.payload)
    }
}

/// Steps of a [`Pipe`] between two peeks of the rings it found empty: the
/// bound of the live merge's disorder. An event committed to such a ring
/// in between is merged at the next peek: at most this many events of
/// other rings with later time stamps go before it (see "The live merge's
/// bound" in the module docs); rings read while the writers are stopped
/// merge exactly as when every ring is peeked at every step.
pub const RESCAN_STEPS: u32 = 64;

/// The merged consuming reader of a tracer (`trace_pipe`). Holds every
/// ring's reader lock while it exists: other readers of the tracer wait
/// (a crash dump skips the rings it cannot lock). Writers are never slowed.
///
/// Order: by time stamp across rings, ring order within one; while
/// writers write, an event of a ring found empty may follow up to
/// [`RESCAN_STEPS`] later-stamped events of other rings (see the module
/// docs).
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// ringtrace::trace!(tracer: &t, "a=%d", 1);
/// let mut pipe = t.pipe();
/// assert!(pipe.next_line().unwrap().unwrap().ends_with(": a=1\n"));
/// assert!(pipe.next_line().unwrap().is_none(), "consumed");
/// ```
#[derive(Debug)]
pub struct Pipe<'t> {
    tracer: &'t Tracer,
    /// The rings read: the tracer's, or a snapshot's.
    buf: &'t ringtrace_ring::RingBuffer,
    consumers: Vec<Consumer<'t>>,
    /// Time stamp of each ring's peeked head and where it lies (consumed
    /// with `consume_peeked`, not decoded again), `None` when not known.
    heads: Vec<Option<(u64, PeekMark)>>,
    /// Rings found empty at their last peek: looked at again every
    /// [`RESCAN_STEPS`] steps, and always before the pipe says it is
    /// empty (see "The live merge's bound" in the module docs).
    empty: Vec<bool>,
    /// The rings not in `empty`, in no particular order.
    active: Vec<usize>,
    /// Steps since the empty rings were last peeked.
    since_rescan: u32,
    /// Each ring's last context columns, for the next line.
    line_heads: HeadCache,
    opts: TextOptions,
    /// Another consuming reader held a ring: every read returns this.
    held: Option<ReadError>,
    /// Rings whose reader lock was taken over from a dead reader, and its
    /// pid.
    took_over: Vec<(usize, u32)>,
}

impl<'t> Pipe<'t> {
    /// A pipe over `buf`: the tracer's rings or a snapshot of them (same
    /// shape); the tracer gives the event formats and thread names.
    pub(crate) fn over(
        tracer: &'t Tracer,
        buf: &'t ringtrace_ring::RingBuffer,
        opts: TextOptions,
    ) -> Pipe<'t> {
        let n = buf.rings().min(tracer.max_contexts());
        let mut consumers = Vec::with_capacity(n);
        let mut held = None;
        let mut took_over = Vec::new();
        for r in 0..n {
            match buf.consumer(r) {
                Ok(c) => {
                    if let Some(pid) = c.took_over() {
                        took_over.push((r, pid));
                    }
                    consumers.push(c);
                }
                Err(ringtrace_ring::RingError::ReaderHeld { ring, holder }) => {
                    // All or nothing: a pipe without some rings would
                    // leave their events out of the merge without a word.
                    consumers.clear();
                    held = Some(ReadError::ReaderHeld { ring, holder });
                    break;
                }
                // `r` is in range: no other error.
                Err(_) => {}
            }
        }
        Pipe {
            tracer,
            buf,
            heads: vec![None; consumers.len()],
            empty: vec![false; consumers.len()],
            active: (0..consumers.len()).collect(),
            since_rescan: 0,
            line_heads: HeadCache::new(&tracer.inner),
            consumers,
            opts,
            held,
            took_over,
        }
    }

    /// The rings whose reader lock this pipe took over from a reader that
    /// died holding it, with that reader's pid (see
    /// `Consumer::took_over`); worth a message to the user.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(t.pipe().took_over().is_empty());
    /// ```
    #[must_use]
    pub fn took_over(&self) -> &[(usize, u32)] {
        &self.took_over
    }
}

/// The time stamp of ring `c`'s next event and where it lies, if any.
#[inline]
fn peek_head(c: &mut Consumer<'_>) -> Result<Option<(u64, PeekMark)>, ReadError> {
    Ok(c.peek_marked()?.map(|(e, mark)| (e.timestamp, mark)))
}

impl<'t> Pipe<'t> {
    /// Consumes the next event in time-stamp order and hands it to `f`.
    /// `Ok(None)` when every ring is empty now.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("x");
    /// let len = t.pipe().next_with(|e| e.payload.len()).unwrap();
    /// assert!(len.unwrap() >= 16);
    /// ```
    pub fn next_with<T>(
        &mut self,
        f: impl FnOnce(EventRef<'_>) -> T,
    ) -> Result<Option<T>, ReadError> {
        self.next_with_heads(|e, _| f(e))
    }

    /// [`Pipe::next_with`], handing `f` the pipe's cache of context columns
    /// too (a field the event does not borrow).
    fn next_with_heads<T>(
        &mut self,
        f: impl FnOnce(EventRef<'_>, &mut HeadCache) -> T,
    ) -> Result<Option<T>, ReadError> {
        if let Some(e) = &self.held {
            return Err(e.clone());
        }
        let mut rescan = self.since_rescan >= RESCAN_STEPS;
        let best = loop {
            if rescan {
                for i in 0..self.consumers.len() {
                    // `nothing_to_read` never says true where a peek would
                    // find an event, and costs far less on an empty ring.
                    if self.empty[i] && !self.consumers[i].nothing_to_read() {
                        self.heads[i] = peek_head(&mut self.consumers[i])?;
                        if self.heads[i].is_some() {
                            self.empty[i] = false;
                            self.active.push(i);
                        }
                    }
                }
                self.since_rescan = 0;
            }
            // Only the rings not found empty are looked at: a session has
            // 64 rings, most of them empty.
            let mut best: Option<(u64, usize)> = None;
            let mut k = 0;
            while k < self.active.len() {
                let i = self.active[k];
                if self.heads[i].is_none() {
                    self.heads[i] = peek_head(&mut self.consumers[i])?;
                }
                let Some((ts, _)) = self.heads[i] else {
                    self.empty[i] = true;
                    self.active.swap_remove(k);
                    continue;
                };
                // Ties go to the lower ring, whatever the order of `active`.
                if best.is_none_or(|(b, bi)| ts < b || (ts == b && i < bi)) {
                    best = Some((ts, i));
                }
                k += 1;
            }
            // "Empty" is only said after every ring was peeked now.
            if best.is_some() || rescan {
                break best;
            }
            rescan = true;
        };
        self.since_rescan = self.since_rescan.saturating_add(1);
        let Some((_, i)) = best else {
            return Ok(None);
        };
        let consumed = match self.heads[i].take() {
            Some((_, mark)) => self.consumers[i].consume_peeked(mark)?,
            None => self.consumers[i].consume()?,
        };
        match consumed {
            Some(e) => Ok(Some(f(
                EventRef {
                    ring: i,
                    timestamp: e.timestamp,
                    lost_events: e.lost_events,
                    payload: e.payload,
                },
                &mut self.line_heads,
            ))),
            None => Ok(None),
        }
    }

    /// The next event, owned.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(t.pipe().next_event().unwrap().is_none());
    /// ```
    pub fn next_event(&mut self) -> Result<Option<OwnedEvent>, ReadError> {
        self.next_with(|e| e.to_owned_event())
    }

    /// The next event as text: a `CPU:N [LOST n EVENTS]` line first when
    /// events were lost before it, then its `trace` line (newline included).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("hello");
    /// assert!(t.pipe().next_line().unwrap().unwrap().ends_with("tracing_mark_write: hello\n"));
    /// ```
    pub fn next_line(&mut self) -> Result<Option<String>, ReadError> {
        let mut line = String::with_capacity(96);
        Ok(self.next_line_into(&mut line)?.then_some(line))
    }

    /// [`Pipe::next_line`] appended to `line` (a buffer reused across
    /// calls saves an allocation per event); false, with `line` untouched,
    /// when every ring is empty now.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("a");
    /// t.marker("b");
    /// let mut pipe = t.pipe();
    /// let mut text = String::new();
    /// while pipe.next_line_into(&mut text).unwrap() {}
    /// assert!(text.ends_with("tracing_mark_write: b\n"), "{text}");
    /// assert_eq!(text.lines().count(), 2);
    /// ```
    pub fn next_line_into(&mut self, line: &mut String) -> Result<bool, ReadError> {
        let tracer = self.tracer;
        let opts = self.opts;
        let got = self.next_with_heads(|e, heads| {
            // On a session, a writer publishes a format in the tables
            // before the first record that uses it: a format not known
            // here yet is imported now, not printed as unparsable.
            if tracer.inner.session().is_some() && format_missing(e.payload) {
                tracer.import_session_tables();
            }
            // Writing to a String cannot fail.
            let _ = write_event_cached(
                line,
                &tracer.inner,
                &opts,
                heads,
                e.ring,
                e.timestamp,
                e.lost_events,
                e.payload,
            );
        });
        Ok(got?.is_some())
    }

    /// Appends the lines of the events there are now to `text`, in the
    /// order [`Pipe::next_line_into`] gives them, until `text` holds
    /// `max_bytes` bytes or more (a line is never split) or every ring is
    /// empty; returns how many events it appended. One call per batch of
    /// lines lets a reader write them out in one large write: what
    /// `ringtrace pipe` does.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// for i in 0..10 {
    ///     ringtrace::trace!(tracer: &t, "i=%d", i);
    /// }
    /// let mut pipe = t.pipe();
    /// let mut text = String::new();
    /// let first = pipe.read_lines_into(&mut text, 1).unwrap();
    /// assert_eq!(first, 1, "one line reaches 1 byte");
    /// let rest = pipe.read_lines_into(&mut text, 1 << 16).unwrap();
    /// assert_eq!((rest, text.lines().count()), (9, 10));
    /// assert_eq!(pipe.read_lines_into(&mut text, 1 << 16).unwrap(), 0);
    /// ```
    pub fn read_lines_into(
        &mut self,
        text: &mut String,
        max_bytes: usize,
    ) -> Result<usize, ReadError> {
        let mut n = 0;
        while text.len() < max_bytes && self.next_line_into(text)? {
            n += 1;
        }
        Ok(n)
    }

    /// [`Pipe::next_line`], waiting up to `timeout` for an event (asleep in
    /// the rings' blocking wait, woken by the writer that commits one).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(t.pipe().next_line_timeout(Duration::from_millis(1)).unwrap().is_none());
    /// ```
    pub fn next_line_timeout(&mut self, timeout: Duration) -> Result<Option<String>, ReadError> {
        self.waiting(timeout, Pipe::next_line)
    }

    /// `next` until it returns something or `timeout` has passed, asleep
    /// in the rings' blocking wait in between.
    fn waiting<T>(
        &mut self,
        timeout: Duration,
        mut next: impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<Option<T>, ReadError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(x) = next(self)? {
                return Ok(Some(x));
            }
            if !self.wait_until(deadline) {
                return Ok(None);
            }
        }
    }

    /// Sleeps until a ring has data or `deadline` passes; false when it has.
    fn wait_until(&self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let buf = self.buf;
        // A ring error cannot happen (no ring index is given); treat it as
        // "look again".
        let _ = buf.wait_any(WaitFor::Data, Some(deadline - now));
        true
    }

    /// [`Pipe::next_event`], waiting up to `timeout` (asleep, as
    /// [`Pipe::next_line_timeout`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("x");
    /// assert!(t.pipe().next_event_timeout(Duration::from_millis(10)).unwrap().is_some());
    /// ```
    pub fn next_event_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<OwnedEvent>, ReadError> {
        self.waiting(timeout, Pipe::next_event)
    }

    /// Consumes everything there is now and returns it as text.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("a");
    /// t.marker("b");
    /// assert_eq!(t.pipe().read_to_string().unwrap().lines().count(), 2);
    /// ```
    pub fn read_to_string(&mut self) -> Result<String, ReadError> {
        let mut out = String::new();
        while self.next_line_into(&mut out)? {}
        Ok(out)
    }

    /// Losses of ring `ring` not yet reported with an event (see
    /// `Consumer::pending_losses`).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert_eq!(t.pipe().pending_losses(0), 0);
    /// ```
    #[must_use]
    pub fn pending_losses(&self, ring: usize) -> u64 {
        self.consumers.get(ring).map_or(0, |c| c.pending_losses())
    }
}

/// Whole pages of one context, consumed (the kernel's per-CPU
/// `trace_pipe_raw`): each page in the kernel's binary format, loss flags
/// and count included, ready for `trace-cmd` or a file. Complete pages are
/// swapped out of the ring without a copy.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// t.marker("raw");
/// let mut raw = t.raw_pipe(0).unwrap();
/// let (info, page) = raw.next_page(false).unwrap().unwrap();
/// assert_eq!((info.events, page.len()), (1, 4096));
/// let commit = u64::from_le_bytes(page[8..16].try_into().unwrap()) & 0xfff_ffff;
/// assert!(commit > 0);
/// assert!(raw.next_page(false).unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct RawPipe<'t> {
    consumer: Consumer<'t>,
    page: ringtrace_ring::ReadPage<'t>,
}

impl<'t> RawPipe<'t> {
    /// The raw page reader of ring `ring` of `buf` ([`Tracer::raw_pipe`]).
    pub(crate) fn open(
        buf: &'t ringtrace_ring::RingBuffer,
        ring: usize,
    ) -> Result<RawPipe<'t>, ringtrace_ring::RingError> {
        Ok(RawPipe {
            consumer: buf.consumer(ring)?,
            page: buf.read_page_buffer(ring)?,
        })
    }
}

impl RawPipe<'_> {
    /// The next page (`page_size` bytes) and what it holds (events, lost
    /// count, whether it was swapped out without a copy); with `full`, only
    /// a page the writer has finished. `None` when there is none now.
    pub fn next_page(
        &mut self,
        full: bool,
    ) -> Result<Option<(ringtrace_ring::PageInfo, &[u8])>, ReadError> {
        Ok(self
            .consumer
            .read_page(&mut self.page, full)?
            .map(|info| (info, self.page.bytes())))
    }

    /// What the last page read held (events, lost count, zero-copy).
    #[must_use]
    pub fn last(&self) -> Option<ringtrace_ring::PageInfo> {
        self.page.info()
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{Array, CommonFields, EventType, Field, Record, Registry};
    use crate::output::{write_event, write_event_cached, HeadCache};
    use crate::tracer::Comm;
    use crate::TracerConfig;

    static PLAIN_FIELDS: [Field; 3] = [
        Field {
            name: "id",
            c_type: "u64",
            offset: 8,
            size: 8,
            signed: false,
            array: Array::None,
        },
        Field {
            name: "delta",
            c_type: "int",
            offset: 16,
            size: 4,
            signed: true,
            array: Array::None,
        },
        Field {
            name: "small",
            c_type: "short",
            offset: 20,
            size: 2,
            signed: true,
            array: Array::None,
        },
    ];
    static PLAIN: EventType = EventType {
        name: "pipe_test_plain",
        system: "test",
        id: 3101,
        fields: &PLAIN_FIELDS,
        print_fmt: "",
    };
    static STR_FIELDS: [Field; 2] = [
        Field {
            name: "n",
            c_type: "unsigned int",
            offset: 8,
            size: 4,
            signed: false,
            array: Array::None,
        },
        Field {
            name: "s",
            c_type: "__data_loc char[]",
            offset: 12,
            size: 4,
            signed: false,
            array: Array::None,
        },
    ];
    static WITH_STR: EventType = EventType {
        name: "pipe_test_str",
        system: "test",
        id: 3102,
        fields: &STR_FIELDS,
        print_fmt: "",
    };

    /// Record `step` of a mix: `trace!` records of plain and padded
    /// conversions, typed events whose lines the pipe prepares (whole and
    /// cut short) and one it does not (a string field), markers. Returns
    /// its length in `rec`.
    fn some_record(step: u32, c: &CommonFields, rec: &mut [u8; 64]) -> usize {
        let _ = Registry::global().register(&PLAIN);
        let _ = Registry::global().register(&WITH_STR);
        let v = u64::from(step).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match step % 6 {
            0 => crate::bprintk!("step %d", step).encode(c, rec).unwrap(),
            1 => crate::bprintk!("v=%llu w=%5d s=%s|", v, v as i32, "ab")
                .encode(c, rec)
                .unwrap(),
            2 | 3 => {
                c.write(PLAIN.id, rec);
                rec[8..16].copy_from_slice(&v.to_ne_bytes());
                rec[16..20].copy_from_slice(&(v as i32).to_ne_bytes());
                rec[20..22].copy_from_slice(&(v as i16).to_ne_bytes());
                // One time in two, cut inside the last field.
                if step % 6 == 2 {
                    24
                } else {
                    20
                }
            }
            4 => {
                c.write(WITH_STR.id, rec);
                rec[8..12].copy_from_slice(&step.to_ne_bytes());
                rec[12..16].copy_from_slice(&(16u32 | 3 << 16).to_ne_bytes());
                rec[16..19].copy_from_slice(b"xy\0");
                20
            }
            _ => crate::printk::Print {
                ip: 0,
                text: "a marker",
            }
            .encode(c, rec)
            .unwrap(),
        }
    }

    /// Lines whose context columns come from the pipe's cache, and whose
    /// printk formats and typed events' lines come from its prepared
    /// forms, are the lines written from scratch: across rings, threads,
    /// flags, nesting depths, thread names that change between two
    /// events, and records of every kind (see `some_record`).
    #[test]
    fn cached_context_columns_are_the_columns_written_from_scratch() {
        let t = TracerConfig::new().max_contexts(3).build().unwrap();
        let inner = &t.inner;
        let mut writers: Vec<_> = (0..3).map(|r| t.ring_buffer().writer(r).unwrap()).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut names = 0;
        let mut opts = crate::output::TextOptions::default();
        for round in 0..4 {
            opts.style = match round {
                0 | 1 => crate::text::Style::Modern { irq_info: true },
                2 => crate::text::Style::Modern { irq_info: false },
                _ => crate::text::Style::Legacy2009,
            };
            let mut pipe = t.pipe_with(opts);
            let mut cache = HeadCache::new(inner);
            let mut stamp = 0u64;
            for step in 0..600 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let c = CommonFields {
                    pid: 100 + (x % 3) as i32,
                    flags: if x & 0x30 == 0 { 0x08 } else { 0 },
                    preempt_count: ((x >> 8) % 3) as u8,
                };
                if x & 0x700 == 0 {
                    // A thread gets a (new) name between two of its events.
                    names += 1;
                    inner.save_comm(c.pid, Comm::new(&format!("name{names}")));
                }
                let mut rec = [0u8; 64];
                let n = some_record(step, &c, &mut rec);
                stamp += 1 + (x >> 20) % 5;
                writers[((x >> 12) % 3) as usize]
                    .write(stamp, &rec[..n])
                    .unwrap();
                let (cached, plain) = pipe
                    .next_with(|e| {
                        let mut cached = String::new();
                        write_event_cached(
                            &mut cached,
                            inner,
                            &opts,
                            &mut cache,
                            e.ring,
                            e.timestamp,
                            e.lost_events,
                            e.payload,
                        )
                        .unwrap();
                        let mut plain = String::new();
                        write_event(
                            &mut plain,
                            inner,
                            &opts,
                            e.ring,
                            e.timestamp,
                            e.lost_events,
                            e.payload,
                        )
                        .unwrap();
                        (cached, plain)
                    })
                    .unwrap()
                    .unwrap();
                assert_eq!(cached, plain, "round {round} step {step}");
            }
        }
        assert!(names > 5, "names changed between events");
        for r in 0..3 {
            let s = t.ring_stats(r).unwrap();
            assert_eq!(
                s.written,
                s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
            );
            assert_eq!(s.entries, 0);
        }
    }
}
