//! The call-site registry of binary printk: every `bprintk!` / `trace!`
//! call site gets a small id on first use, and a reader finds the site
//! (its format, file and line) from the id a record carries.
//!
//! # Terms
//!
//! - **Site** ([`Site`]): a call site's `static`: format, argument kinds,
//!   file, line and its id (0 until first use).
//! - **Id**: 1 to [`MAX_SITES`] - 1; a record stores it as two fake
//!   kernel addresses, [`ip_addr`] (the call site) and [`fmt_addr`] (the
//!   format), as the kernel's bprint entry stores real ones.
//! - **Table** (`SITES`): the site of each id, for readers.
//! - **Shared counter**: a session's id counter, which the processes of
//!   that session take ids from ([`share_ids`]).
//!
//! # Contract
//!
//! The first use takes the next id from the counter (a bounded
//! compare-and-swap loop), publishes the site in the table slot of that
//! id, then installs the id in the site with one compare-and-swap; a
//! thread that loses the race uses the winner's id. Only atomics are
//! touched, so even the first use is async-signal-safe; after it, getting
//! the id is one Acquire load. A reader that finds an id in a record finds
//! its site in the table (the slot is published before the id). An id is
//! never given to two formats in one process; [`import_site`] makes a
//! reader's ids agree with a writer process's, and marks an id two
//! processes used for different formats as [`AMBIGUOUS_FORMAT`].

use crate::record::publish;
use crate::sync::{AtomicPtr, AtomicU32, Ordering};

use super::parse::ArgKind;
use crate::event::EncodeError;

/// Base of the fake "addresses" of interned formats (`fmt` field).
///
/// ```
/// assert_eq!(ringtrace::printk::fmt_addr(1), ringtrace::printk::FMT_ADDR_BASE + 16);
/// ```
pub const FMT_ADDR_BASE: u64 = 0xffff_ffff_f000_0000;

/// Base of the fake "addresses" of call sites (`ip` field).
///
/// ```
/// assert_eq!(ringtrace::printk::ip_addr(2), ringtrace::printk::IP_BASE + 32);
/// ```
pub const IP_BASE: u64 = 0xffff_ffff_e000_0000;

/// How many `bprintk!` call sites a process can have.
///
/// ```
/// assert_eq!(ringtrace::printk::MAX_SITES, 4096);
/// ```
pub const MAX_SITES: usize = 4096;

/// The `fmt` address of site `id`.
///
/// ```
/// assert_eq!(ringtrace::printk::fmt_addr(0), ringtrace::printk::FMT_ADDR_BASE);
/// ```
#[must_use]
pub const fn fmt_addr(id: u32) -> u64 {
    FMT_ADDR_BASE + ((id as u64) << 4)
}

/// The `ip` address of site `id`.
///
/// ```
/// assert_eq!(ringtrace::printk::ip_addr(0), ringtrace::printk::IP_BASE);
/// ```
#[must_use]
pub const fn ip_addr(id: u32) -> u64 {
    IP_BASE + ((id as u64) << 4)
}

/// One `bprintk!` call site: its format, the storage kind of each argument,
/// where it is, and its id (0 until first use).
///
/// ```
/// use ringtrace::printk::{ArgKind, Site};
/// static S: Site = Site::new("x=%d", &[ArgKind::Int32], file!(), line!());
/// let id = S.id().unwrap();
/// assert_ne!(id, 0);
/// assert_eq!(S.id().unwrap(), id);
/// assert!(std::ptr::eq(ringtrace::printk::site_by_id(id).unwrap(), &S));
/// ```
#[derive(Debug)]
pub struct Site {
    pub(super) fmt: &'static str,
    pub(super) kinds: &'static [ArgKind],
    pub(super) file: &'static str,
    pub(super) line: u32,
    /// 0 = not yet assigned; otherwise fixed forever. Written once by the
    /// compare-and-swap in `register` (AcqRel), read by `id` (Acquire): pairs
    /// with the Release store of the table slot done before the CAS.
    id: AtomicU32,
}

/// `SITES[id]` points at the site that owns `id`, or at a site that lost the
/// race for its first id (whose own id is then different: lookups check).
/// Stores happen once per slot (the slot index comes from `NEXT_ID`).
static SITES: [AtomicPtr<Site>; MAX_SITES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_SITES];

/// Next id to hand out; ids start at 1 (0 means "unassigned").
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The id counter of the session this process writes into, if any (set by
/// [`share_ids`]): ids are then taken from it, so that the processes of a
/// session (a parent and the children it forks after attaching) never
/// hand out one id for two formats. Points into a session mapping that is
/// kept for the rest of the process.
static SHARED_NEXT_ID: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

/// Makes this process take printk ids from `counter` from now on (ids it
/// already handed out stay below it). The counter is a session's shared
/// one; its owner keeps it mapped for the rest of the process, which the
/// `'static` states. Taking the counter, not the session, keeps this room
/// free of sessions.
pub(crate) fn share_ids(counter: &'static AtomicU32) {
    // Relaxed: ids order nothing; the table append publishes each site.
    counter.fetch_max(NEXT_ID.load(Ordering::Relaxed), Ordering::Relaxed);
    // Release: pairs with the Acquire load in `register`.
    SHARED_NEXT_ID.store(
        counter as *const AtomicU32 as *mut AtomicU32,
        Ordering::Release,
    );
}

/// Takes the next id from `counter` (ids 1 to `MAX_SITES - 1`).
fn next_id(counter: &AtomicU32) -> Result<u32, EncodeError> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            if n >= 1 && (n as usize) < MAX_SITES {
                Some(n + 1)
            } else {
                None
            }
        })
        .map_err(|_| EncodeError::NoFormatId { max: MAX_SITES })
}

impl Site {
    /// A new, unregistered site. `kinds` must be `arg_kinds(fmt)`; the macro
    /// guarantees it.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("hi", &[], "f.rs", 1);
    /// assert_eq!(S.format(), "hi");
    /// ```
    #[must_use]
    pub const fn new(
        fmt: &'static str,
        kinds: &'static [ArgKind],
        file: &'static str,
        line: u32,
    ) -> Site {
        Site {
            fmt,
            kinds,
            file,
            line,
            id: AtomicU32::new(0),
        }
    }

    /// The format text.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("%s!", &[ringtrace::printk::ArgKind::Str], "f.rs", 1);
    /// assert_eq!(S.format(), "%s!");
    /// ```
    pub fn format(&self) -> &'static str {
        self.fmt
    }

    /// Source file of the call site.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 3);
    /// assert_eq!((S.file(), S.line()), ("a.rs", 3));
    /// ```
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// Source line of the call site.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 9);
    /// assert_eq!(S.line(), 9);
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The storage kind of each argument.
    ///
    /// ```
    /// let b = ringtrace::bprintk!("%d %s", 1, "a");
    /// assert_eq!(b.site().kinds().len(), 2);
    /// ```
    pub fn kinds(&self) -> &'static [ArgKind] {
        self.kinds
    }

    /// The site's id, assigning it on first use. Async-signal-safe (atomics
    /// only); fails only when [`MAX_SITES`] sites exist.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 1);
    /// assert!(S.id().is_ok());
    /// ```
    #[inline]
    pub fn id(&'static self) -> Result<u32, EncodeError> {
        // The table slot stored before the id is visible to whoever reads
        // the records we write (`publish::assigned`'s Acquire).
        let id = publish::assigned(&self.id);
        if id != 0 {
            return Ok(id);
        }
        match register_site(self) {
            0 => Err(EncodeError::NoFormatId { max: MAX_SITES }),
            id => Ok(id),
        }
    }

    /// The id if already assigned (does not assign one).
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 1);
    /// assert_eq!(S.assigned_id(), None);
    /// ```
    pub fn assigned_id(&self) -> Option<u32> {
        match publish::assigned(&self.id) {
            0 => None,
            id => Some(id),
        }
    }
}

/// Assigns `site` its id on first use: 0 when all [`MAX_SITES`] ids are
/// taken.
///
/// `extern "C"` so that the compiler knows it cannot unwind (a panic in it
/// would abort; nothing here panics): `Site::id` is called while the ring
/// holds a reservation, and a callee that may unwind would make the record
/// path keep an unwind guard in memory.
#[cold]
extern "C" fn register_site(site: &'static Site) -> u32 {
    // Bounded: each failed CAS means another thread (or process) took
    // an id.
    // Acquire: pairs with the Release store in `share_ids`.
    let shared = SHARED_NEXT_ID.load(Ordering::Acquire);
    // SAFETY: a non-null pointer was made by `share_ids` from a counter
    // in a session mapping leaked there: valid for the whole process.
    let new = match unsafe { shared.as_ref() } {
        Some(counter) => match next_id(counter) {
            Ok(id) => {
                // `site_count` tells session links a site registered.
                NEXT_ID.fetch_max(id + 1, Ordering::Relaxed);
                id
            }
            Err(_) => return 0,
        },
        None => match next_id(&NEXT_ID) {
            Ok(id) => id,
            Err(_) => return 0,
        },
    };
    let Some(slot) = SITES.get(new as usize) else {
        return 0;
    };
    // Slot `new` is ours alone; filled before the id is published, so a
    // record never carries an id whose slot is still empty. Lost the race:
    // slot `new` stays pointing at us, but our id is the winner's, so
    // `site_by_id(new)` reports nothing.
    publish::assign_id(slot, &site.id, site as *const Site as *mut Site, new)
}

/// The site that owns `id`, if any.
///
/// ```
/// assert!(ringtrace::printk::site_by_id(0).is_none());
/// ```
pub fn site_by_id(id: u32) -> Option<&'static Site> {
    let p = publish::published(SITES.get(id as usize)?);
    // SAFETY: every non-null pointer in SITES was made from a `&'static Site`
    // in `Site::register` and is never written through, so it is valid for
    // shared access for the rest of the program.
    let site: &'static Site = unsafe { p.as_ref() }?;
    publish::owns_id(&site.id, id).then_some(site)
}

/// Number of site ids handed out so far plus one (the next id): a cheap
/// "did any site register since" check for session tracers.
#[inline(always)]
pub(crate) fn site_count() -> u32 {
    NEXT_ID.load(Ordering::Relaxed)
}

/// The format an imported site gets when two processes of a session used
/// one id for different formats (sites registered in both a parent and
/// its forked child after the fork): its records then say so instead of
/// being formatted with the wrong text.
pub const AMBIGUOUS_FORMAT: &str =
    "[printk format ambiguous: processes of the session used this id for different formats]";

/// Makes a site of another process known here under its `id`, so that
/// records carrying that id format here (the reader of a session imports
/// the writer's sites). The site's strings are leaked: a reader imports
/// each site once, from a bounded table. False when `id` is out of range,
/// or already known with a different format: the id then formats as
/// [`AMBIGUOUS_FORMAT`] (never with a wrong format).
///
/// ```
/// use ringtrace::printk::{import_site, site_by_id, AMBIGUOUS_FORMAT};
/// assert!(import_site(4000, "v=%d", "prog.rs", 7));
/// let s = site_by_id(4000).unwrap();
/// assert_eq!((s.format(), s.file(), s.line()), ("v=%d", "prog.rs", 7));
/// assert!(import_site(4000, "v=%d", "prog.rs", 7));
/// assert!(!import_site(4000, "other", "prog.rs", 7));
/// assert_eq!(site_by_id(4000).unwrap().format(), AMBIGUOUS_FORMAT);
/// ```
pub fn import_site(id: u32, fmt: &str, file: &str, line: u32) -> bool {
    if id == 0 || id as usize >= MAX_SITES {
        return false;
    }
    let leak = |fmt: &str| -> &'static Site {
        Box::leak(Box::new(Site {
            fmt: Box::leak(fmt.to_string().into_boxed_str()),
            kinds: &[],
            file: Box::leak(file.to_string().into_boxed_str()),
            line,
            id: AtomicU32::new(id),
        }))
    };
    if let Some(s) = site_by_id(id) {
        if s.fmt == fmt || s.fmt == AMBIGUOUS_FORMAT {
            return s.fmt == fmt;
        }
        // The old site stays valid (leaked or static), only no longer
        // found.
        publish::replace(
            &SITES[id as usize],
            leak(AMBIGUOUS_FORMAT) as *const Site as *mut Site,
        );
        return false;
    }
    let site = leak(fmt);
    // The site's fields are visible with the pointer (`publish_once`).
    let ok = publish::publish_once(&SITES[id as usize], site as *const Site as *mut Site).is_ok();
    if ok {
        // Later local sites take ids above the imported ones.
        NEXT_ID.fetch_max(id + 1, Ordering::Relaxed);
    }
    ok
}

/// The site whose `fmt` address is `addr`.
///
/// ```
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!("hello");
/// let mut buf = [0u8; 64];
/// b.encode(&Default::default(), &mut buf).unwrap();
/// let id = b.site().assigned_id().unwrap();
/// assert_eq!(ringtrace::printk::site_by_fmt_addr(ringtrace::printk::fmt_addr(id)).unwrap().format(), "hello");
/// ```
#[must_use]
pub fn site_by_fmt_addr(addr: u64) -> Option<&'static Site> {
    let off = addr.checked_sub(FMT_ADDR_BASE)?;
    if off & 0xf != 0 {
        return None;
    }
    site_by_id(u32::try_from(off >> 4).ok()?)
}

/// All sites that have an id, in id order.
///
/// ```
/// use ringtrace::event::Record;
/// let _ = ringtrace::bprintk!("x").encode(&Default::default(), &mut [0u8; 32]);
/// assert!(ringtrace::printk::sites().any(|(_, s)| s.format() == "x"));
/// ```
pub fn sites() -> impl Iterator<Item = (u32, &'static Site)> {
    (1..MAX_SITES as u32).filter_map(|id| site_by_id(id).map(|s| (id, s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::printk::{ArgList, Bprint, KindsSource};

    #[test]
    fn site_ids_are_unique_and_stable() {
        fn site_of<A: ArgList, K: KindsSource>(b: &Bprint<A, K>) -> &'static Site {
            b.site()
        }
        let mut ids = Vec::new();
        for _ in 0..3 {
            let a = crate::bprintk!("site a");
            let b = crate::bprintk!("site b");
            ids.push((site_of(&a).id().unwrap(), site_of(&b).id().unwrap()));
        }
        assert_ne!(ids[0].0, ids[0].1);
        assert!(ids.iter().all(|x| *x == ids[0]));
    }

    #[test]
    fn concurrent_first_use_agrees_on_one_id() {
        static RACE: Site = Site::new("race %d", &[ArgKind::Int32], "t.rs", 1);
        let ids: Vec<u32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| RACE.id().unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|&i| i == ids[0]));
        assert!(std::ptr::eq(site_by_id(ids[0]).unwrap(), &RACE));
    }
}
