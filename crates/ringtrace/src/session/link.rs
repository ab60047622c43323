//! A tracer's tie to its session: the writer side publishes event formats,
//! printk sites and thread names into the session's tables; the reader
//! side imports them into this process (the event registry, the printk
//! site table, the tracer's thread names) so the ordinary readers and
//! exporters decode the writer's records.

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::table::{TableEntry, TableReader, KIND_COMM, KIND_EVENT, KIND_PRINTK, KIND_PROCESS};
use super::SessionMap;
use crate::event::{Array, EventType, Field, Registry, FIRST_USER_ID, MAX_EVENT_ID};
use crate::printk;
use crate::tracedat::format::{parse_format, FieldKind};
use crate::tracer::storage::SharedStorage;

const WORDS: usize = 64;
const _: () = assert!(WORDS * 64 > MAX_EVENT_ID as usize);
const _: () = assert!(WORDS * 64 >= printk::MAX_SITES);

/// See the module docs.
#[derive(Debug)]
pub(crate) struct SessionLink {
    pub(crate) map: Arc<SessionMap>,
    /// Bit `id`: event type `id`'s table record is committed (or the
    /// table was full for it), set after the append (see `publish`). A
    /// record is written only once its type's bit is set, so it never
    /// reaches the ring before its format is in the tables.
    types: [AtomicU64; WORDS],
    /// Bit `id`: a writer is publishing type `id` (claimed by fetch_or).
    /// Another writer that finds the claim taken but the type not yet in
    /// `types` cannot write its record yet: it publishes a copy (see
    /// `publish`). Readers import the same format twice harmlessly.
    types_claimed: [AtomicU64; WORDS],
    /// Bit `id`: printk site `id`'s table record is committed (as `types`).
    sites: [AtomicU64; WORDS],
    /// Bit `id`: a writer is publishing printk site `id` (as `types_claimed`).
    sites_claimed: [AtomicU64; WORDS],
    /// `printk::site_count()` when the sites were last synced.
    sites_synced: AtomicU32,
    /// Types registered before this link existed may be unpublished: sync
    /// them all at the first ordinary record (iterating the registry is
    /// fine there, and a one-off).
    types_pending: AtomicBool,
    /// Pid that registered in the process table (a forked child differs).
    pid: AtomicU32,
    /// Its process-table entry + 1 (0: not registered: the table was full).
    entry: AtomicU32,
    /// Pid of a process that found the process table full and runs
    /// untraced (`run_untraced`); a forked child differs and tries anew.
    untraced: AtomicU32,
    /// When this process last scanned for slots of dead processes
    /// (`reclaim_dead_slots`), in ms of the process's monotonic clock.
    last_reclaim_ms: AtomicU64,
    /// Writer side (publishes and registers); else a reader (imports).
    pub(crate) writer: bool,
    /// The reader's table cursor.
    reader: Mutex<TableReader>,
}

/// Turns that ordinary code (depth 0), finding a format claimed by another
/// writer but not yet committed, waits for the claimant before it
/// publishes a copy itself: the claimant is then another thread, about to
/// commit (ordinary code never interrupts itself), and waiting saves the
/// tables a copy per thread when threads start together. Bounded: a
/// preempted claimant costs a copy, not a wait. A signal handler does not
/// wait: the claimant may be the code it interrupted.
const CLAIM_SPINS: u32 = 512;

/// Publishes the format `i` of `done`/`claimed` with `append` unless it is
/// published already: claims it, or, when another writer has claimed it
/// but not committed it yet (see `CLAIM_SPINS`), publishes a copy, so that
/// the caller's record never precedes its format. Async-signal-safe if
/// `append` is.
fn publish(
    done: &[AtomicU64; WORDS],
    claimed: &[AtomicU64; WORDS],
    i: usize,
    depth: u32,
    append: impl FnOnce(),
) {
    if is_set(done, i) {
        return;
    }
    if !claim(claimed, i) && depth == 0 {
        for _ in 0..CLAIM_SPINS {
            if is_set(done, i) {
                return;
            }
            std::hint::spin_loop();
        }
    }
    append();
    mark(done, i);
}

/// Claims bit `i` of `bits`; true if this call set it.
fn claim(bits: &[AtomicU64; WORDS], i: usize) -> bool {
    let (w, b) = (i / 64, 1u64 << (i % 64));
    match bits.get(w) {
        // Relaxed: a claim orders nothing (`mark` publishes).
        Some(word) => word.fetch_or(b, Ordering::Relaxed) & b == 0,
        None => false,
    }
}

/// Sets bit `i` of `bits` once its table record is committed.
fn mark(bits: &[AtomicU64; WORDS], i: usize) {
    if let Some(word) = bits.get(i / 64) {
        // Release: pairs with the Acquire load in `is_set`, so a writer
        // that skips publishing because of this bit writes its record
        // after the committed table record (and a reader that sees the
        // record sees the table record).
        word.fetch_or(1u64 << (i % 64), Ordering::Release);
    }
}

fn is_set(bits: &[AtomicU64; WORDS], i: usize) -> bool {
    // Acquire: pairs with the Release in `mark`.
    bits.get(i / 64)
        .is_some_and(|w| w.load(Ordering::Acquire) & (1u64 << (i % 64)) != 0)
}

impl SessionLink {
    pub(crate) fn new(map: Arc<SessionMap>, writer: bool) -> SessionLink {
        let reader = TableReader::new(map.clone());
        let link = SessionLink {
            map,
            types: [const { AtomicU64::new(0) }; WORDS],
            types_claimed: [const { AtomicU64::new(0) }; WORDS],
            sites: [const { AtomicU64::new(0) }; WORDS],
            sites_claimed: [const { AtomicU64::new(0) }; WORDS],
            sites_synced: AtomicU32::new(0),
            types_pending: AtomicBool::new(true),
            pid: AtomicU32::new(0),
            entry: AtomicU32::new(0),
            untraced: AtomicU32::new(0),
            last_reclaim_ms: AtomicU64::new(0),
            writer,
            reader: Mutex::new(reader),
        };
        if writer {
            // Printk ids come from the session from now on: unique across
            // its processes (a parent and its forked children). The
            // mapping is kept for the rest of the process, so the counter
            // in it is `'static`.
            let keep: &'static SessionMap = Box::leak(Box::new(link.map.clone()));
            printk::share_ids(keep.printk_next_id());
            link.check_process();
            link.sync_types();
            link.sync_sites(0);
        }
        link
    }

    /// Registers the calling process in the session's process table when
    /// it has not yet (first attach, or a forked child).
    pub(crate) fn check_process(&self) {
        let me = std::process::id();
        if self.pid.load(Ordering::Relaxed) == me || self.untraced.load(Ordering::Relaxed) == me {
            return;
        }
        // A new process (the first attach, or a forked child): its own
        // pace of scans for dead processes' slots, not its parent's.
        self.last_reclaim_ms.store(0, Ordering::Relaxed);
        let entry = super::procs::register_process(&self.map).map_or(0, |i| i + 1);
        self.entry.store(entry as u32, Ordering::Relaxed);
        if entry != 0 {
            self.pid.store(me, Ordering::Relaxed);
        }
    }

    /// Whether the calling process gave up on the session (`run_untraced`).
    pub(crate) fn is_untraced(&self) -> bool {
        self.untraced.load(Ordering::Relaxed) == std::process::id()
    }

    /// The calling process found the process table full even after taking
    /// back the slots of dead processes: it runs untraced (it leases no
    /// ring, so no reader ever takes it for dead and repairs a ring under
    /// it), says so once on stderr, and the session counts it.
    #[cold]
    pub(crate) fn run_untraced(&self) {
        let me = std::process::id();
        if self.untraced.swap(me, Ordering::Relaxed) == me {
            return;
        }
        self.map
            .header()
            .untraced_processes
            .fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "ringtrace: session {}: its process table is full ({} writer processes): \
             process {me} runs untraced (its events are counted as refused)",
            self.map.path.display(),
            self.map.layout.procs
        );
    }

    /// Counts a refused event in the session, where every reader sees it
    /// (a forked child's refusals included). Async-signal-safe.
    #[cold]
    pub(crate) fn count_refused(&self, why: crate::tracer::Refusal) {
        use crate::tracer::Refusal;
        let h = self.map.header();
        let c = match why {
            Refusal::NoContext => &h.refused_no_context,
            Refusal::InSignalHandler => &h.refused_in_signal_handler,
            Refusal::Other => &h.refused_other,
            Refusal::Masked => &h.refused_masked,
        };
        // Relaxed: a counter, ordering nothing.
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The calling process's process-table entry + 1, registering it if
    /// needed (0: the table is full): the owner a lease records.
    pub(crate) fn owner(&self) -> usize {
        if !self.writer {
            return 0;
        }
        self.check_process();
        let e = self.entry.load(Ordering::Relaxed) as usize;
        if e <= crate::tracer::MAX_SLOT_OWNERS {
            e
        } else {
            0
        }
    }

    /// Reclaims the lease slots of processes that died holding them (see
    /// [`super::procs::reclaim_dead_slots`]); at most one scan per 10 ms per
    /// process (it reads `/proc` for each leaseholder). `None` when the
    /// scan was skipped for that pace.
    pub(crate) fn reclaim_dead_slots(&self, buf: &ringtrace_ring::RingBuffer) -> Option<usize> {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
            + 10;
        let last = self.last_reclaim_ms.load(Ordering::Relaxed);
        if now < last.saturating_add(10)
            || self
                .last_reclaim_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(super::procs::reclaim_dead_slots(&self.map, buf))
    }

    /// Before each record of a writer (its type registered and its
    /// printk site id assigned: `Record::prepare`): publishes the type and
    /// any new printk sites, so that the table records are committed
    /// before the ring record that needs them. Cheap when nothing is new
    /// (two loads, one bit test).
    #[inline(always)]
    pub(crate) fn before_write(&self, id: u16, depth: u32) {
        // Acquire: pairs with the Release store in `sync_sites`.
        if printk::site_count() != self.sites_synced.load(Ordering::Acquire) {
            self.sync_sites(depth);
        }
        if id >= FIRST_USER_ID && !is_set(&self.types, usize::from(id)) {
            self.publish_type(id, depth);
        }
    }

    /// Publishes type `id` (async-signal-safe, so a handler that is the
    /// first to record a type publishes it before its record too).
    #[cold]
    fn publish_type(&self, id: u16, depth: u32) {
        if depth == 0 && self.types_pending.swap(false, Ordering::Relaxed) {
            self.sync_types();
        }
        if let Some(ty) = Registry::global().get(id) {
            self.put_type(ty, depth);
        }
    }

    /// Appends `ty`'s table record (system, NUL, format text) unless it is
    /// published already (see `publish`); `depth` is the caller's signal
    /// nesting. No allocation: the text is measured, then formatted
    /// straight into the table. Async-signal-safe.
    fn put_type(&self, ty: &EventType, depth: u32) {
        let id = usize::from(ty.id);
        publish(&self.types, &self.types_claimed, id, depth, || {
            #[cfg(test)]
            tests::publishing(&self.map, KIND_EVENT, u32::from(ty.id));
            let mut count = CountBytes(0);
            let _ = ty.write_format(&mut count);
            let system = ty.system.as_bytes();
            let len = system.len() + 1 + count.0;
            // A full table counts the loss itself (`table_full`); the type
            // is marked all the same, as a printk site is: a retry would
            // fail the same way.
            let _ = super::table::append_with(&self.map, KIND_EVENT, len, |dst| {
                let (head, text) = dst.split_at_mut(system.len() + 1);
                head[..system.len()].copy_from_slice(system);
                head[system.len()] = 0;
                let mut out = SliceWriter { buf: text, at: 0 };
                ty.write_format(&mut out).is_ok() && out.at == out.buf.len()
            });
        });
    }

    /// Publishes every registered user event type (ordinary code only).
    pub(crate) fn sync_types(&self) {
        for ty in Registry::global().iter() {
            if ty.id >= FIRST_USER_ID {
                self.put_type(ty, 0);
            }
        }
    }

    /// Publishes every printk site not yet published (see `publish`);
    /// `depth` is the caller's signal nesting. Async-signal-safe: atomics
    /// and copies into the mapping.
    #[cold]
    pub(crate) fn sync_sites(&self, depth: u32) {
        let count = printk::site_count();
        for id in 1..count.min(printk::MAX_SITES as u32) {
            if is_set(&self.sites, id as usize) {
                continue;
            }
            let Some(site) = printk::site_by_id(id) else {
                continue;
            };
            publish(&self.sites, &self.sites_claimed, id as usize, depth, || {
                #[cfg(test)]
                tests::publishing(&self.map, KIND_PRINTK, id);
                let fmt = site.format().as_bytes();
                super::table::append(
                    &self.map,
                    KIND_PRINTK,
                    &[
                        &id.to_le_bytes(),
                        &site.line().to_le_bytes(),
                        &(fmt.len() as u32).to_le_bytes(),
                        fmt,
                        site.file().as_bytes(),
                    ],
                );
            });
        }
        // Release: pairs with the Acquire load in `before_write`: a writer
        // that finds the sites synced writes its record after their table
        // records.
        self.sites_synced.store(count, Ordering::Release);
    }

    /// Publishes a thread name, then the pid and name of its process (a
    /// reader attaches the process to the name it has just read).
    pub(crate) fn put_comm(&self, tid: i32, comm: &str, (pid, name): (u32, &str)) {
        let tid = tid.to_le_bytes();
        super::table::append(&self.map, KIND_COMM, &[&tid, comm.as_bytes()]);
        let rec: [&[u8]; 3] = [&tid, &pid.to_le_bytes(), name.as_bytes()];
        super::table::append(&self.map, KIND_PROCESS, &rec);
    }

    /// The writer process detaches: publishes what is left, marks it exited.
    pub(crate) fn detach(&self) {
        if self.writer && self.pid.load(Ordering::Relaxed) == std::process::id() {
            self.sync_types();
            self.sync_sites(0);
            super::procs::mark_exited(&self.map);
        }
    }

    /// Reader side: the table records committed since the last call.
    pub(crate) fn poll_tables(&self) -> (Vec<TableEntry>, u64) {
        match self.reader.lock() {
            Ok(mut r) => {
                let v = r.poll();
                (v, r.malformed())
            }
            Err(_) => (Vec::new(), 0),
        }
    }
}

impl Drop for SessionLink {
    fn drop(&mut self) {
        self.detach();
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;

impl SharedStorage for SessionLink {
    fn slot_states(&self) -> &[AtomicU32] {
        self.map.slot_states()
    }
    fn slot_tids(&self) -> &[AtomicU32] {
        self.map.slot_tids()
    }
    fn tracing_off(&self) -> &AtomicU32 {
        self.map.tracing_off()
    }
    fn context_mask_off(&self) -> &[crate::sync::AtomicU64] {
        self.map.context_mask_off()
    }
    fn wall_start(&self) -> Option<crate::clock::WallStart> {
        self.map.wall_start()
    }
    fn is_writer(&self) -> bool {
        self.writer
    }
    fn is_untraced(&self) -> bool {
        SessionLink::is_untraced(self)
    }
    fn run_untraced(&self) {
        SessionLink::run_untraced(self);
    }
    fn owner(&self) -> usize {
        SessionLink::owner(self)
    }
    fn reclaim_dead_slots(&self, buf: &ringtrace_ring::RingBuffer) -> Option<usize> {
        SessionLink::reclaim_dead_slots(self, buf)
    }
    fn orphaned_rings(&self, rings: usize, own: usize) -> Vec<(usize, u32)> {
        super::procs::orphaned_rings(&self.map, rings, own)
    }
    fn count_refused(&self, why: crate::tracer::Refusal) {
        SessionLink::count_refused(self, why);
    }
    fn check_process(&self) {
        SessionLink::check_process(self);
    }
    fn put_comm(&self, tid: i32, comm: &str, process: (u32, &str)) {
        SessionLink::put_comm(self, tid, comm, process);
    }
    fn before_write(&self, id: u16, depth: u32) {
        SessionLink::before_write(self, id, depth);
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// An event type from its format text, leaked (a reader imports each type
/// once, from a bounded table). `None` when the text does not parse or
/// describes something ringtrace cannot have written.
pub(crate) fn leak_event_type(system: &str, format: &str) -> Option<&'static EventType> {
    let f = parse_format(system, format).ok()?;
    let id = u16::try_from(f.id).ok()?;
    if !(FIRST_USER_ID..=MAX_EVENT_ID).contains(&id) {
        return None;
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let mut fields = Vec::with_capacity(f.fields.len());
    for ff in &f.fields {
        let array = match ff.kind {
            FieldKind::Scalar | FieldKind::DataLoc | FieldKind::RelLoc => Array::None,
            FieldKind::Array { len } if ff.size == 0 => {
                let _ = len;
                Array::Flexible
            }
            FieldKind::Array { len } => Array::Fixed(u16::try_from(len).ok()?),
        };
        fields.push(Field {
            name: leak(&ff.name),
            c_type: leak(&ff.type_name),
            offset: u16::try_from(ff.offset).ok()?,
            size: u16::try_from(ff.size).ok()?,
            signed: ff.signed,
            array,
        });
    }
    let fields: &'static [Field] = Box::leak(fields.into_boxed_slice());
    Some(Box::leak(Box::new(EventType {
        name: leak(&f.name),
        system: leak(&f.system),
        id,
        fields,
        print_fmt: leak(&f.print_fmt),
    })))
}

/// A `fmt::Write` that only counts bytes.
struct CountBytes(usize);

impl std::fmt::Write for CountBytes {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// A `fmt::Write` into a fixed slice; fails rather than overflow.
struct SliceWriter<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl std::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.at + s.len();
        let dst = self.buf.get_mut(self.at..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.at = end;
        Ok(())
    }
}
