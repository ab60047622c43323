//! The one record loop of the trace.dat exporters (JSON, Perfetto, HTML):
//! it walks the file's records merged by time stamp, borrowed from their
//! pages ([`TraceDatReader::walk`]), hands each to the exporter, and
//! applies the policy they share, `trace-cmd report`'s: a damaged page or
//! a record that cannot be decoded is skipped and counted, and the export
//! goes on; only an error that leaves nothing to read past it (a damaged
//! file header, an I/O error) stops it.

use std::io::{Read, Seek};

use crate::tracedat::render::FileRenderer;
use crate::tracedat::{ItemRef, TraceDatError, TraceDatReader};

/// An exporter fed by [`export_items`].
pub(crate) trait ItemSink {
    /// The exporter's error; a reader error converts into it.
    type Error: From<TraceDatError>;

    /// Writes one item. A record that cannot be decoded must fail with a
    /// skippable [`TraceDatError`] (see [`Self::decode_error`]) before
    /// anything of it is written.
    fn item(&mut self, render: &FileRenderer<'_>, item: ItemRef<'_>) -> Result<(), Self::Error>;

    /// Counts a skipped damaged page (`page`) or undecodable record.
    fn skipped(&mut self, page: bool, why: &TraceDatError);

    /// The skippable decode error `e` is, if it is one; else `e` back.
    fn decode_error(e: Self::Error) -> Result<TraceDatError, Self::Error>;
}

/// Feeds every item of `reader` to `sink` (see the module docs).
pub(crate) fn export_items<R: Read + Seek, S: ItemSink>(
    reader: &mut TraceDatReader<R>,
    render: &FileRenderer<'_>,
    sink: &mut S,
) -> Result<(), S::Error> {
    let mut walk = reader.walk();
    while let Some(item) = walk.next() {
        let item = match item {
            Ok(item) => item,
            Err(e @ TraceDatError::Page { .. }) => {
                sink.skipped(true, &e);
                continue;
            }
            Err(e) if e.is_skippable() => {
                sink.skipped(false, &e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = sink.item(render, item) {
            match S::decode_error(e)? {
                e if e.is_skippable() => sink.skipped(false, &e),
                e => return Err(e.into()),
            }
        }
    }
    Ok(())
}
