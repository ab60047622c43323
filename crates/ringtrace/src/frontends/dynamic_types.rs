//! The event types front ends make at run time: each gets the next free
//! id of [`DYNAMIC_IDS`] (top down) and is registered in the global
//! [`Registry`]; events that got no type are counted here.

use std::sync::Mutex;

use crate::event::{EventType, Field, Registry};
use crate::span::DYNAMIC_IDS;
use crate::sync::{AtomicU64, Ordering};

/// The next id to try (ids below it were handed out or taken).
static NEXT_ID: Mutex<u16> = Mutex::new(*DYNAMIC_IDS.end());

/// Events (of all front ends) not recorded for want of an event type.
static NO_TYPE: AtomicU64 = AtomicU64::new(0);

/// Counts an event not recorded for want of an event type.
pub(crate) fn count_untyped() {
    NO_TYPE.fetch_add(1, Ordering::Relaxed);
}

/// Events counted by [`count_untyped`].
pub(crate) fn untyped() -> u64 {
    NO_TYPE.load(Ordering::Relaxed)
}

/// Gives the type the next free id of [`DYNAMIC_IDS`] (top down) and
/// registers it; `None` when no id is left.
pub(crate) fn register(
    system: &'static str,
    name: &'static str,
    fields: &'static [Field],
    print_fmt: &'static str,
) -> Option<&'static EventType> {
    let reg = Registry::global();
    let mut next = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
    while *next >= *DYNAMIC_IDS.start() {
        let id = *next;
        *next -= 1;
        if reg.get(id).is_some() {
            continue;
        }
        let ty: &'static EventType = Box::leak(Box::new(EventType {
            name,
            system,
            id,
            fields,
            print_fmt,
        }));
        if reg.register(ty).is_ok() {
            return Some(ty);
        }
    }
    None
}
