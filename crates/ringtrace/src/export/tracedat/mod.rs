//! trace-cmd's `trace.dat` files, versions 6 and 7 (v7 also compressed
//! with zstd or zlib; either byte order, 4- or 8-byte longs): a
//! streaming writer from raw ring-buffer pages, a bounded reader, an
//! independent page decoder and an ftrace `format` parser.
//!
//! This module owns the file format only. It works on page images (byte
//! slices in the kernel's `buffer_data_page` layout) and must not depend on
//! the ring-buffer crate. Format facts relied on, all from
//! the project reference `trace-dat-format.md` (checked against trace-cmd
//! 3.1.6) and kernel-ring-buffer.md §2:
//!
//! - File header: magic `17 08 44 "tracing"`, version text, endianness byte,
//!   `long` size byte, u32 page size (§1); v7 adds compression strings and
//!   the offset of the first OPTIONS section.
//! - v6 is one linear stream ending in a `flyrecord` CPU table and the CPU
//!   blocks (§2); v7 is a set of sections located by options (§4).
//! - `header_page` must be the kernel's text: its `commit` size is the long
//!   size the page reader uses (§3.1, pitfall 9.2).
//! - Pages: u64 `time_stamp`, `long commit` with `RB_MISSED_EVENTS` (bit 31)
//!   and `RB_MISSED_STORED` (bit 30), events from offset 16 (§5).
//! - Each CPU block starts at a multiple of `max(page size, 4096)` (§5.2).
//! - trace-cmd merges CPUs by time stamp, ties to the lower CPU (§6).
//!
//! Modules: [`write`](mod@write) (streaming writer, bounded memory: see its docs),
//! [`read`] (metadata, per-CPU and merged record iteration, field decoding,
//! simple text lines), [`page`] (page decoder), [`format`](mod@format) (`format` text
//! parser), [`convert`](mod@convert) (v6 <-> v7, compressed or not),
//! [`compress`] (the codecs and trace-cmd's block and chunk layouts), [`render`] (records as text lines and named values), [`error`]
//! (the error type).
//!
//! ```
//! use std::io::Cursor;
//! use ringtrace::tracedat::{TraceDatMeta, TraceDatReader, TraceDatWriter};
//!
//! let mut meta = TraceDatMeta::new(4096, 2, "mono");
//! meta.cmdlines.push((42, "demo".into()));
//! let mut page = vec![0u8; 4096];
//! page[0..8].copy_from_slice(&1_000u64.to_ne_bytes()); // time_stamp
//! page[8..16].copy_from_slice(&(8u64 | 1 << 31).to_ne_bytes()); // commit 8, events lost
//! page[16..20].copy_from_slice(&1u32.to_ne_bytes()); // type_len 1, delta 0
//! let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), &meta)?;
//! w.push_page(1, &page)?; // CPU 0 stays empty
//! let file = w.finish()?.into_inner();
//!
//! let mut r = TraceDatReader::new(Cursor::new(file))?;
//! assert_eq!(r.info().comm(42), Some("demo"));
//! let items: Vec<_> = r.records().collect::<Result<_, _>>()?;
//! assert_eq!(items.len(), 2); // the "lost events" marker, then the record
//!
//! // A truncated file is an error, never a panic.
//! let mut short = r.into_inner().into_inner();
//! short.truncate(100);
//! assert!(TraceDatReader::new(Cursor::new(short)).is_err());
//! # Ok::<(), ringtrace::tracedat::TraceDatError>(())
//! ```

pub mod compress;
pub mod convert;
pub mod error;
pub mod format;
mod layout;
#[doc(hidden)] // the file reader's page decoder; users read records through TraceDatReader
pub mod page;
mod plan;
mod processes;
pub mod read;
pub mod render;
pub mod stack_text;
pub mod walk;
pub mod write;

pub use compress::Compression;
pub use convert::{convert, convert_with, ConvertOptions};
pub use error::{EventFormatError, PageError, TraceDatError};
pub use format::{parse_format, EventFormat, FieldFormat, FieldKind};
pub use layout::FTRACE_SYSTEM;
pub use read::{
    CpuData, CpuRecords, DecodedRecord, FieldValue, MergedRecords, TraceDatInfo, TraceDatReader,
    TraceDatRecord, TraceItem,
};
pub use render::{EventView, FileRenderer, RenderOptions};
pub use walk::{ItemRef, RecordRef, Walk};
pub use write::{TraceDatMeta, TraceDatVersion, TraceDatWriter, Tsc2Nsec};
