//! The one error type of [`crate::tracedat`]: every failure names what is
//! wrong and where (section, byte offset, CPU, page index).

use std::io;

/// A page that cannot be decoded. Offsets are from the start of the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// The page is shorter than its own header.
    #[error("page of {len} bytes is shorter than its {header}-byte header")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Header size (8 + long size).
        header: usize,
    },
    /// `commit` (flags masked) claims more data than the page holds.
    #[error("commit {commit} exceeds the page's data capacity {capacity}")]
    CommitTooLarge {
        /// Committed data bytes claimed by the page header.
        commit: usize,
        /// Bytes available after the header.
        capacity: usize,
    },
    /// `RB_MISSED_STORED` is set but the stored count does not fit in the page.
    #[error("lost-event count at data offset {offset} does not fit in the page")]
    LostCountOutOfPage {
        /// Data offset where the count should be.
        offset: usize,
    },
    /// An event header or its length word lies past `commit`.
    #[error("event at data offset {offset} (type_len {type_len}) runs past commit {commit}")]
    EventOverrun {
        /// Data offset of the event header.
        offset: usize,
        /// The event's type_len.
        type_len: u32,
        /// Committed data bytes.
        commit: usize,
    },
    /// A `type_len` 0 event whose length word is below 4 (it counts itself).
    #[error("event at data offset {offset}: length word {length} is below 4")]
    BadLength {
        /// Data offset of the event header.
        offset: usize,
        /// The `array[0]` value.
        length: u32,
    },
    /// The compressed chunk holding (part of) the page cannot be
    /// decompressed.
    #[error("compressed chunk {chunk} at file offset {offset}: {reason}")]
    BadChunk {
        /// Index of the chunk in its CPU's data.
        chunk: usize,
        /// File offset of the chunk's header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A time extend or absolute stamp that is not followed by a data event.
    #[error("time extend at data offset {offset} is not followed by an event")]
    DanglingTimeExtend {
        /// Data offset of the time extend.
        offset: usize,
    },
}

/// An ftrace `format` text that cannot be parsed.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct EventFormatError {
    /// 1-based line number in the format text.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Everything that can go wrong while reading or writing a `trace.dat` file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceDatError {
    /// An I/O error from the underlying file or stream.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The first 10 bytes are not `17 08 44 "tracing"`.
    #[error("not a trace.dat file: bad magic at offset 0")]
    BadMagic,
    /// A version other than 6 or 7.
    #[error("unsupported trace.dat version {0:?} (supported: 6 and 7)")]
    UnsupportedVersion(String),
    /// A field needs more bytes than the file has.
    #[error("truncated file in {section}: {needed} bytes needed at offset {offset}, file is {file_len} bytes")]
    Truncated {
        /// Section being read.
        section: &'static str,
        /// Offset where the read started.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// Total file length.
        file_len: u64,
    },
    /// A value in the file is out of range or inconsistent.
    #[error("invalid {section} at offset {offset}: {reason}")]
    Invalid {
        /// Section being read.
        section: &'static str,
        /// File offset of the offending value.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The file header names a codec this reader does not know.
    #[error("unsupported trace.dat compression {0:?} (supported: zstd, zlib, none)")]
    Compressed(String),
    /// A compressed block (a v7 section's body) is corrupt or does not
    /// match its header.
    #[error("corrupt compressed block of {section} at file offset {offset}: {reason}")]
    Decompress {
        /// The section the block belongs to.
        section: String,
        /// File offset of the block's header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An error inside a compressed section: the offsets of `source` are
    /// within the section's decompressed body.
    #[error("in the compressed {section} section at file offset {offset} (offsets below are within its decompressed body): {source}")]
    InCompressed {
        /// The section.
        section: &'static str,
        /// File offset of the section's block.
        offset: u64,
        /// The error within the body.
        #[source]
        source: Box<TraceDatError>,
    },
    /// An event format text does not parse.
    #[error("event format #{index} of system {system:?} (file offset {offset}): {source}")]
    Format {
        /// The event system.
        system: String,
        /// Index of the format within its system.
        index: usize,
        /// File offset of the format text.
        offset: u64,
        /// The parse error.
        #[source]
        source: EventFormatError,
    },
    /// A page in a CPU's data cannot be decoded.
    #[error("CPU {cpu} page {page} (file offset {offset}): {source}")]
    Page {
        /// CPU number.
        cpu: u32,
        /// Page index within the CPU's data.
        page: u64,
        /// File offset of the page.
        offset: u64,
        /// The page error.
        #[source]
        source: PageError,
    },
    /// A record does not match its event format.
    #[error("record of event {event:?} on CPU {cpu} at {ts}: {reason}")]
    Record {
        /// Event name (or `#id` when unknown).
        event: String,
        /// CPU number.
        cpu: u32,
        /// Raw time stamp of the record.
        ts: u64,
        /// What is wrong.
        reason: String,
    },
    /// The writer was used against its contract (bad page size, CPUs out of
    /// order, unknown CPU ...).
    #[error("trace.dat writer: {0}")]
    Usage(String),
}

impl TraceDatError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| TraceDatError::Io { context, source }
    }

    /// Whether reading goes on after this error: a damaged page
    /// ([`TraceDatError::Page`]) costs only its own records (the record
    /// iterators yield the error, then go on with the next page), and a
    /// record that does not match its format ([`TraceDatError::Record`])
    /// only itself. Any other error ends the read.
    ///
    /// ```
    /// use ringtrace::tracedat::{PageError, TraceDatError};
    /// let page = TraceDatError::Page {
    ///     cpu: 0, page: 1, offset: 4096,
    ///     source: PageError::TooShort { len: 3, header: 16 },
    /// };
    /// assert!(page.is_skippable());
    /// assert!(!TraceDatError::BadMagic.is_skippable());
    /// ```
    #[must_use]
    pub fn is_skippable(&self) -> bool {
        matches!(
            self,
            TraceDatError::Page { .. } | TraceDatError::Record { .. }
        )
    }

    pub(crate) fn invalid(section: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        TraceDatError::Invalid {
            section,
            offset,
            reason: reason.into(),
        }
    }
}
