//! `report`'s function-graph leaf merge, as `trace-cmd report` does it: a
//! `funcgraph_entry` whose next record (in the merged time order) is its
//! own exit prints once, as `name();` with the duration; the exit is then
//! consumed. Every other record passes through unchanged.

use ringtrace::tracedat::{FileRenderer, TraceDatError, TraceDatRecord, TraceItem};

/// One record of the report, and the exit merged into it when it is a
/// leaf entry.
pub type WithLeaf = (Result<TraceItem, TraceDatError>, Option<TraceDatRecord>);

/// The records of `inner` with leaf entries paired with their exits (when
/// `on`; off, each record alone, as when filters could hide one of a pair).
pub struct Leaves<'r, I> {
    inner: I,
    render: &'r FileRenderer<'r>,
    on: bool,
    /// A record read to look at and not yet given out.
    peeked: Option<Result<TraceItem, TraceDatError>>,
}

impl<'r, I> Leaves<'r, I> {
    pub fn new(inner: I, render: &'r FileRenderer<'r>, on: bool) -> Self {
        Leaves {
            inner,
            render,
            on,
            peeked: None,
        }
    }
}

impl<I: Iterator<Item = Result<TraceItem, TraceDatError>>> Iterator for Leaves<'_, I> {
    type Item = WithLeaf;

    fn next(&mut self) -> Option<WithLeaf> {
        let item = self.peeked.take().or_else(|| self.inner.next())?;
        if !self.on {
            return Some((item, None));
        }
        if let Ok(TraceItem::Event(entry)) = &item {
            match self.inner.next() {
                Some(Ok(TraceItem::Event(next))) if self.render.is_leaf_pair(entry, &next) => {
                    return Some((item, Some(next)));
                }
                other => self.peeked = other,
            }
        }
        Some((item, None))
    }
}
