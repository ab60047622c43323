//! The spans of a trace as the JSON export follows them: each span's
//! lifetime (creation record to `span_close`), its fields, the generation
//! that tells apart spans that reused a closed span's id, and each
//! thread's stack of entered spans (`span_begin` / `span_end`). It decides;
//! it writes nothing.
//!
//! # Identity
//!
//! `tracing` reuses the id of a closed span, so a span is its raw id and
//! the count of creations of that id seen so far (its generation): the
//! first span with id 5 is `5`, the second `"5#2"`. A span entered before
//! any creation of its id was seen (its creation was overwritten or
//! dropped, or it was recorded by other means than the layer) counts as a
//! first generation, so a later creation of that id makes the second. Ids
//! above 2^53 (JSON readers lose integer precision there) are strings
//! too: `"9007199254740993"`.
//!
//! # Orphans
//!
//! An end whose begin is not open on its thread, and a close whose
//! creation was not seen, are dropped and counted (a JSON `E` closes
//! whatever slice is innermost, so an orphan `E` would cut another span).

use std::collections::HashMap;

use crate::tracedat::FieldValue;

/// The largest integer a JSON reader's f64 holds exactly.
const MAX_EXACT: u64 = 1 << 53;

/// A span's identity in the JSON (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SpanId {
    /// A first-generation id a JSON number holds exactly.
    Num(u64),
    /// Any other id.
    Str(String),
}

impl SpanId {
    fn new(raw: u64, generation: u64) -> Self {
        match generation {
            1 if raw <= MAX_EXACT => SpanId::Num(raw),
            1 => SpanId::Str(raw.to_string()),
            g => SpanId::Str(format!("{raw}#{g}")),
        }
    }

    /// The id as a JSON value.
    pub(super) fn json(&self) -> serde_json::Value {
        match self {
            SpanId::Num(n) => serde_json::Value::from(*n),
            SpanId::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// One raw id's current span.
#[derive(Debug, Default)]
struct Life {
    /// Creations of this id seen so far.
    generation: u64,
    /// Created and not closed yet.
    alive: bool,
    /// The span's fields (without `span_id`), as last recorded.
    fields: Vec<(String, FieldValue)>,
}

/// A span entered on a thread, as the export needs it for the `B`.
#[derive(Debug)]
pub(super) struct Entered<'a> {
    /// The span's identity.
    pub id: SpanId,
    /// Whether its lifetime is open (its entry is also nested in it).
    pub alive: bool,
    /// Its fields.
    pub fields: &'a [(String, FieldValue)],
}

/// The span state of an export.
#[derive(Debug, Default)]
pub(super) struct Spans {
    lives: HashMap<u64, Life>,
    /// Each thread's entered spans (raw id, name), innermost last.
    open: HashMap<i32, Vec<(u64, String)>>,
    /// `span_end`s dropped: their `span_begin` was not open.
    pub orphan_ends: u64,
    /// `span_close`s dropped: their span's creation was not seen.
    pub orphan_closes: u64,
}

impl Spans {
    /// A span call site's record for `raw`: a creation when no span of
    /// that id is alive (returns its identity: a lifetime begins), else new
    /// values of the live span's fields (returns `None`; a field given no
    /// value, an empty string or 0, keeps its earlier value).
    pub(super) fn record(&mut self, raw: u64, fields: &[(&str, FieldValue)]) -> Option<SpanId> {
        let life = self.lives.entry(raw).or_default();
        if !life.alive {
            life.generation += 1;
            life.alive = true;
            life.fields = fields
                .iter()
                .map(|(n, v)| ((*n).to_string(), v.clone()))
                .collect();
            return Some(SpanId::new(raw, life.generation));
        }
        for (n, v) in fields {
            if is_unset(v) {
                continue;
            }
            match life.fields.iter_mut().find(|(k, _)| k == n) {
                Some((_, old)) => *old = v.clone(),
                None => life.fields.push(((*n).to_string(), v.clone())),
            }
        }
        None
    }

    /// The close of `raw`: its identity when its lifetime was open, else
    /// `None` (counted in `orphan_closes`).
    pub(super) fn close(&mut self, raw: u64) -> Option<SpanId> {
        match self.lives.get_mut(&raw) {
            Some(life) if life.alive => {
                life.alive = false;
                life.fields = Vec::new();
                Some(SpanId::new(raw, life.generation))
            }
            _ => {
                self.orphan_closes += 1;
                None
            }
        }
    }

    /// `raw` (named `name`) entered on thread `tid`.
    pub(super) fn enter(&mut self, tid: i32, raw: u64, name: &str) -> Entered<'_> {
        self.open
            .entry(tid)
            .or_default()
            .push((raw, name.to_string()));
        let life = self.lives.entry(raw).or_insert_with(|| Life {
            generation: 1,
            ..Life::default()
        });
        Entered {
            id: SpanId::new(raw, life.generation),
            alive: life.alive,
            fields: &life.fields,
        }
    }

    /// `raw` exited on thread `tid`: the spans whose slices end now,
    /// innermost first, with whether each lifetime is open and its name.
    /// `raw` is last; spans entered inside it whose exit was lost come
    /// before it. Empty when `raw` is not entered on `tid` (counted in
    /// `orphan_ends`).
    pub(super) fn exit(&mut self, tid: i32, raw: u64) -> Vec<(SpanId, bool, String)> {
        let stack = self.open.entry(tid).or_default();
        let Some(at) = stack.iter().rposition(|(r, _)| *r == raw) else {
            self.orphan_ends += 1;
            return Vec::new();
        };
        let ended: Vec<(u64, String)> = stack.drain(at..).rev().collect();
        ended
            .into_iter()
            .map(|(r, name)| {
                let life = self.lives.get(&r);
                let generation = life.map_or(1, |l| l.generation);
                let alive = life.is_some_and(|l| l.alive);
                (SpanId::new(r, generation), alive, name)
            })
            .collect()
    }
}

/// A field value a span record leaves unset (`Span::record` of another
/// field writes the call site's other fields as 0 or empty).
fn is_unset(v: &FieldValue) -> bool {
    match v {
        FieldValue::Str(s) => s.is_empty(),
        FieldValue::Unsigned(0) | FieldValue::Signed(0) | FieldValue::Float(0) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_ids_get_generations() {
        let mut s = Spans::default();
        assert_eq!(s.record(5, &[]), Some(SpanId::Num(5)));
        assert_eq!(s.record(5, &[("k", FieldValue::Unsigned(1))]), None);
        assert_eq!(s.close(5), Some(SpanId::Num(5)));
        assert_eq!(s.record(5, &[]), Some(SpanId::Str("5#2".into())));
        assert_eq!(s.close(7), None);
        assert_eq!(s.orphan_closes, 1);
        let big = MAX_EXACT + 1;
        assert_eq!(s.record(big, &[]), Some(SpanId::Str(big.to_string())));
    }

    #[test]
    fn exits_pair_with_entries_on_their_thread() {
        let mut s = Spans::default();
        assert_eq!(s.enter(1, 3, "a").id, SpanId::Num(3));
        s.enter(1, 4, "b");
        assert!(s.exit(2, 3).is_empty(), "another thread");
        let ended: Vec<(SpanId, String)> = s.exit(1, 3).into_iter().map(|e| (e.0, e.2)).collect();
        assert_eq!(
            ended,
            [(SpanId::Num(4), "b".into()), (SpanId::Num(3), "a".into())]
        );
        assert!(s.exit(1, 3).is_empty());
        assert_eq!(s.orphan_ends, 2);
        // Its creation was not seen: a creation now is the second span.
        assert_eq!(s.record(3, &[]), Some(SpanId::Str("3#2".into())));
    }
}
