//! The end of a `tracing` span's lifetime: the record the layer writes
//! when a span closes (its last handle dropped), the counterpart of the
//! span's creation record (its call site's record, whose first field is
//! `span_id`).
//!
//! ```text
//! system     name        fields                                   id
//! ringtrace  span_close  u64 id; __data_loc char[] name           one of DYNAMIC_IDS, at first use
//! ```
//!
//! A span's lifetime runs from its creation record to this record; its
//! entries (`span_begin` / `span_end`) happen inside it, once per poll for
//! an async task's span. `tracing` reuses the id of a closed span: a
//! reader tells the spans apart by counting creations of each id (see the
//! JSON export's span ids).

use std::sync::OnceLock;

use crate::event::{Array, EventType, Field};
use crate::frontends::frontend::RecordBuf;
use crate::tracer::Tracer;

/// The name of the event type.
pub(crate) const NAME: &str = "span_close";

static FIELDS: [Field; 2] = [
    Field {
        name: "id",
        c_type: "u64",
        offset: 8,
        size: 8,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "name",
        c_type: "__data_loc char[]",
        offset: 16,
        size: 4,
        signed: false,
        array: Array::None,
    },
];

/// The event type, registered at its first use; `None` when no id was
/// left (the closes are then not recorded, counted as untyped events).
fn event_type() -> Option<&'static EventType> {
    static TYPE: OnceLock<Option<&'static EventType>> = OnceLock::new();
    *TYPE.get_or_init(|| {
        crate::frontends::dynamic_types::register(
            crate::span::SYSTEM,
            NAME,
            &FIELDS,
            "\"id=%llu name=%s\", REC->id, __get_str(name)",
        )
    })
}

/// Records that span `id` named `name` closed.
pub(crate) fn record(t: &Tracer, id: u64, name: &str) {
    if !t.is_on() {
        return;
    }
    let Some(ty) = event_type() else {
        crate::frontends::dynamic_types::count_untyped();
        return;
    };
    let mut storage = crate::frontends::frontend::storage();
    let mut buf = RecordBuf::new(&mut storage, 20);
    buf.put_u64(8, id);
    buf.put_str(16, name);
    // Errors are counted by the tracer (see `TracerStats`).
    let _ = t.record(&buf.record_registered(ty));
}
