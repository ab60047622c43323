//! Which contexts record: the kernel's `tracing_cpumask`, over contexts.
//!
//! A bit set, one bit per context, **set when the context does not
//! record** (so that a new session file's zeros mean "all record"). It is
//! in the tracer's own memory (heap flavor) or in the session's header
//! (shared flavor), so that `ringtrace contexts SESSION LIST` reaches
//! every writer process of a live session.
//!
//! Contract: the record path reads one word with one Relaxed load (a
//! switch, ordering nothing: a record racing a change is recorded or not,
//! never torn). A record of a masked-off context is refused before it
//! reaches the ring and counted in `TracerStats::refused_masked` (and the
//! session's counter): not an attempt on the ring, but never lost
//! silently.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use super::storage::SharedStorage;

/// Bits per word of the mask.
const BITS: usize = 64;

/// A tracer's context mask; see the module docs.
pub(crate) struct ContextMask {
    /// Points at `own` or into `storage`'s memory, both held by `self`.
    words: NonNull<[AtomicU64]>,
    /// The heap flavor's words (an `Arc`, not a `Box`, as for `Switch`:
    /// pointers into it stay valid when it is moved).
    _own: Option<Arc<[AtomicU64]>>,
    /// Keeps the shared flavor's memory mapped.
    _storage: Option<Arc<dyn SharedStorage>>,
}

// SAFETY: `words` points at atomics (Send and Sync) kept alive by `self`
// (its own `Arc`, or the storage it holds); only shared references to
// them are made.
unsafe impl Send for ContextMask {}
// SAFETY: as for Send.
unsafe impl Sync for ContextMask {}

impl ContextMask {
    /// The mask of a tracer of `contexts` contexts on `storage`, or its
    /// own (every context recording) when `None`.
    pub(crate) fn new(contexts: usize, storage: Option<Arc<dyn SharedStorage>>) -> ContextMask {
        match storage {
            Some(s) => ContextMask {
                words: NonNull::from(s.context_mask_off()),
                _own: None,
                _storage: Some(s),
            },
            None => {
                let own: Arc<[AtomicU64]> = (0..contexts.div_ceil(BITS))
                    .map(|_| AtomicU64::new(0))
                    .collect();
                ContextMask {
                    words: NonNull::from(&*own),
                    _own: Some(own),
                    _storage: None,
                }
            }
        }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the pointee lives as long as `self` (see the fields).
        unsafe { self.words.as_ref() }
    }

    /// Whether context `ring` records: the record path's one load.
    #[inline(always)]
    pub(crate) fn allows(&self, ring: usize) -> bool {
        allows(self.words(), ring)
    }

    /// Makes exactly the contexts for which `records(ring)` holds record,
    /// among `0..contexts`.
    pub(crate) fn set(&self, contexts: usize, records: impl Fn(usize) -> bool) {
        set(self.words(), contexts, records);
    }
}

/// Whether context `ring` records under the mask `words`. A context past
/// the words records (a mask covers every context its tracer may have).
#[inline(always)]
pub(crate) fn allows(words: &[AtomicU64], ring: usize) -> bool {
    words
        .get(ring / BITS)
        .is_none_or(|w| w.load(Ordering::Relaxed) & (1 << (ring % BITS)) == 0)
}

/// Sets the mask `words` so that exactly the contexts for which
/// `records(ring)` holds record, among `0..contexts`; the others do not.
pub(crate) fn set(words: &[AtomicU64], contexts: usize, records: impl Fn(usize) -> bool) {
    for (i, w) in words.iter().enumerate() {
        let off = (0..BITS)
            .map(|b| i * BITS + b)
            .filter(|&r| r < contexts && !records(r))
            .fold(0u64, |acc, r| acc | 1 << (r % BITS));
        w.store(off, Ordering::Relaxed);
    }
}

impl fmt::Debug for ContextMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off: u32 = self
            .words()
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones())
            .sum();
        f.debug_struct("ContextMask")
            .field("masked_off", &off)
            .finish()
    }
}
