//! The default tracer's latency trackers, one per section name, found by
//! [`crate::latency()`] without a lock.
//!
//! A tracker is made on a name's first section in ordinary code and lives
//! as long as the process (at most [`MAX_NAMES`] names; more are only
//! measured, never snapshotted, and said once on stderr). A section that
//! starts in a signal handler finds an existing tracker with loads only,
//! never makes one.
//!
//! Which names are snapshotted: those of `RINGTRACE_LATENCY`
//! (`NAME[>THRESHOLD],...`, set by `ringtrace record --latency`) when it is
//! set, with their thresholds; every name otherwise, on its max.

use std::sync::{Mutex, OnceLock};

use crate::sync::{AtomicBool, AtomicPtr, Ordering};
use crate::tracer::context::nested;

use super::{Latency, LatencyGuard, LatencySpec};

/// Most section names with a tracker in one process.
pub const MAX_NAMES: usize = 32;

/// Published trackers; null: free. A slot goes from null to a leaked
/// tracker once, under `MAKING`.
static SLOTS: [AtomicPtr<Latency>; MAX_NAMES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_NAMES];
/// Serializes the making of trackers (ordinary code only).
static MAKING: Mutex<()> = Mutex::new(());
/// `RINGTRACE_LATENCY`, read once.
static SPECS: OnceLock<Option<Vec<LatencySpec>>> = OnceLock::new();
/// Whether "too many names" was said.
static SAID_FULL: AtomicBool = AtomicBool::new(false);

/// Starts a section named `name` on the default tracer; it ends when the
/// guard is dropped. See [`crate::latency`](mod@crate::latency).
///
/// ```
/// {
///     let _g = ringtrace::latency("db_commit");
///     // ... the work measured ...
/// }
/// let max = ringtrace::latency::global_tracker("db_commit").unwrap().max_ns();
/// assert!(max > 0);
/// ```
pub fn latency(name: &str) -> LatencyGuard<'static> {
    LatencyGuard::new(tracker(name))
}

/// The default tracer's tracker of `name`, if one was made.
#[must_use]
pub fn global_tracker(name: &str) -> Option<&'static Latency> {
    find(name)
}

/// Every tracker of the default tracer.
pub fn global_trackers() -> impl Iterator<Item = &'static Latency> {
    SLOTS.iter().filter_map(load)
}

fn load(slot: &AtomicPtr<Latency>) -> Option<&'static Latency> {
    // Acquire: pairs with the Release store in `tracker`, so the tracker's
    // fields are seen initialised.
    let p = slot.load(Ordering::Acquire);
    // SAFETY: non-null pointers here come from `Box::leak` in `tracker`
    // and are never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn find(name: &str) -> Option<&'static Latency> {
    SLOTS.iter().filter_map(load).find(|l| l.name() == name)
}

/// The tracker of `name`, made on first use from ordinary code.
fn tracker(name: &str) -> Option<&'static Latency> {
    if let Some(l) = find(name) {
        return Some(l);
    }
    if nested() {
        return None;
    }
    let specs = SPECS.get_or_init(super::spec::from_env);
    let threshold = match specs {
        None => None,
        Some(list) => list.iter().find(|s| s.name == name)?.threshold,
    };
    let _g = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = find(name) {
        return Some(l);
    }
    let Some(free) = SLOTS.iter().find(|s| s.load(Ordering::Relaxed).is_null()) else {
        if !SAID_FULL.swap(true, Ordering::Relaxed) {
            eprintln!(
                "ringtrace: more than {MAX_NAMES} latency section names; \
                 {name:?} and later ones are not snapshotted"
            );
        }
        return None;
    };
    let tracer = crate::global().ok()?;
    let lat = match Latency::new(tracer, name, threshold) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ringtrace: {e}; the section runs unmeasured");
            return None;
        }
    };
    let p = Box::leak(Box::new(lat));
    // Release: pairs with the Acquire in `load`.
    free.store(p, Ordering::Release);
    Some(p)
}
