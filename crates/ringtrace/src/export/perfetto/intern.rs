//! Interning: event names, categories and debug-annotation names get small
//! ids (iids) once per sequence; packets then carry the iid instead of the
//! string. New entries wait in [`Interner::pending`] until the writer emits
//! them in an `InternedData` packet, before the first packet that uses them.
//!
//! Perfetto's rules (reference facts, §5): iids are per (sequence, table),
//! iid 0 is reserved, and a packet that uses iids sets
//! `SEQ_NEEDS_INCREMENTAL_STATE`.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::encode::ProtoBuf;

/// `InternedData.event_categories`.
const EVENT_CATEGORIES: u32 = 1;
/// `InternedData.event_names`.
const EVENT_NAMES: u32 = 2;
/// `InternedData.debug_annotation_names`.
const DEBUG_ANNOTATION_NAMES: u32 = 3;
/// `iid` of an interned entry (`EventName`, `EventCategory`,
/// `DebugAnnotationName` all use 1 and 2).
const ENTRY_IID: u32 = 1;
/// `name` of an interned entry.
const ENTRY_NAME: u32 = 2;

/// One interning table: string to iid, iids from 1 in order of first use.
#[derive(Debug)]
struct Table {
    field: u32,
    /// Looked up once per event and field: hashed with foldhash, faster
    /// than the default SipHash on short strings, and seeded per table
    /// (the keys come from the file, which may be hostile).
    ids: HashMap<Box<str>, u64, RandomState>,
}

impl Table {
    fn new(field: u32) -> Self {
        Table {
            field,
            ids: HashMap::with_hasher(RandomState::default()),
        }
    }

    fn get(&mut self, s: &str, pending: &mut ProtoBuf) -> u64 {
        if let Some(&iid) = self.ids.get(s) {
            return iid;
        }
        let iid = self.ids.len() as u64 + 1;
        self.ids.insert(s.into(), iid);
        let m = pending.begin(self.field);
        pending.uint(ENTRY_IID, iid);
        pending.str(ENTRY_NAME, s);
        pending.end(m);
        iid
    }
}

/// The three tables of one sequence.
#[derive(Debug)]
pub struct Interner {
    names: Table,
    categories: Table,
    annotations: Table,
    /// The body of an `InternedData` message with the entries not yet
    /// emitted (empty when there are none).
    pending: ProtoBuf,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            names: Table::new(EVENT_NAMES),
            categories: Table::new(EVENT_CATEGORIES),
            annotations: Table::new(DEBUG_ANNOTATION_NAMES),
            pending: ProtoBuf::default(),
        }
    }
}

impl Interner {
    /// The iid of event name `s`.
    pub fn name(&mut self, s: &str) -> u64 {
        self.names.get(s, &mut self.pending)
    }

    /// The iid of category `s`.
    pub fn category(&mut self, s: &str) -> u64 {
        self.categories.get(s, &mut self.pending)
    }

    /// The iid of debug-annotation name `s`.
    pub fn annotation(&mut self, s: &str) -> u64 {
        self.annotations.get(s, &mut self.pending)
    }

    /// The `InternedData` body of the entries made since the last
    /// [`clear_pending`](Self::clear_pending), if any.
    pub fn pending(&self) -> Option<&[u8]> {
        (!self.pending.is_empty()).then(|| self.pending.bytes())
    }

    /// Marks the pending entries as emitted.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iids_start_at_one_per_table_and_only_new_entries_are_pending() {
        let mut i = Interner::default();
        assert_eq!(i.name("a"), 1);
        assert_eq!(i.name("b"), 2);
        assert_eq!(i.category("a"), 1);
        assert_eq!(i.annotation("x"), 1);
        assert!(i.pending().is_some());
        i.clear_pending();
        assert_eq!(i.name("a"), 1);
        assert!(i.pending().is_none());
        assert_eq!(i.name("c"), 3);
        // One EventName entry: tag 0x12, length, iid 3, name "c".
        assert_eq!(i.pending().unwrap(), [0x12, 5, 0x08, 3, 0x12, 1, b'c']);
    }
}
