//! trace.dat to trace.dat: `ringtrace convert` to another version or
//! compression, and `record --compression`, which compresses the file it
//! wrote.
//!
//! Contract: progress is shown on stderr (when it is a terminal) as pages
//! copied out of the input's pages, a known end. A compressed output is
//! version 7 (v6 has no place to name a codec). `record` keeps its
//! uncompressed file when compressing fails, and says so: a written trace
//! is never lost.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use ringtrace::tracedat::{
    convert_with, Compression, ConvertOptions, TraceDatError, TraceDatReader, TraceDatVersion,
};

use crate::CliError;

/// `--compression`: how a trace.dat output is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Zstandard (what `trace-cmd convert --compression any` picks).
    Zstd,
    /// zlib.
    Zlib,
    /// No compression.
    None,
}

impl CompressionArg {
    /// The codec, `None` for no compression.
    pub fn codec(self) -> Option<Compression> {
        match self {
            CompressionArg::Zstd => Some(Compression::Zstd),
            CompressionArg::Zlib => Some(Compression::Zlib),
            CompressionArg::None => None,
        }
    }
}

/// A page progress bar on stderr when it is a terminal.
fn page_bar(msg: &'static str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} {pos}/{len} pages {bar:30} {eta}") {
            b.set_style(style);
        }
        b.set_message(msg);
        b
    })
}

/// Writes the trace.dat `input` as `output` in `version` (v7 when
/// compressed), with page progress on stderr.
pub fn convert_dat(
    input: &Path,
    output: &Path,
    version: TraceDatVersion,
    compression: Option<Compression>,
) -> Result<(), CliError> {
    let bad = |source| CliError::TraceDat {
        path: input.display().to_string(),
        source,
    };
    let written = |source| CliError::File {
        what: "writing",
        path: output.display().to_string(),
        source,
    };
    let f = File::open(input).map_err(|source| CliError::File {
        what: "opening",
        path: input.display().to_string(),
        source,
    })?;
    let mut r = TraceDatReader::new(BufReader::new(f)).map_err(bad)?;
    let out = File::create(output).map_err(|source| CliError::File {
        what: "creating",
        path: output.display().to_string(),
        source,
    })?;
    let bar = page_bar("converting");
    let f = convert_pages(&mut r, out, version, compression, bar.as_ref());
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match f {
        Ok(f) => f.sync_all().map_err(written),
        Err(ConvertFail::Read(e)) => Err(bad(e)),
        Err(ConvertFail::Write(e)) => Err(written(e)),
    }
}

/// Why a conversion failed: the input, or writing the output.
enum ConvertFail {
    Read(TraceDatError),
    Write(std::io::Error),
}

/// Converts the pages of `r` into `out`, showing them on `bar`.
fn convert_pages(
    r: &mut TraceDatReader<BufReader<File>>,
    out: File,
    version: TraceDatVersion,
    compression: Option<Compression>,
    bar: Option<&ProgressBar>,
) -> Result<File, ConvertFail> {
    let opts = ConvertOptions {
        version: if compression.is_some() {
            TraceDatVersion::V7
        } else {
            version
        },
        compression,
    };
    let w = convert_with(r, BufWriter::new(out), opts, |done, total| {
        if let Some(b) = bar {
            b.set_length(total);
            b.set_position(done);
        }
    })
    .map_err(ConvertFail::Read)?;
    w.into_inner()
        .map_err(|e| ConvertFail::Write(e.into_error()))
}

/// Compresses the trace.dat at `path` in place (through a file beside it,
/// renamed over it once complete); on failure `path` is left as it was.
pub fn compress_in_place(path: &Path, codec: Compression) -> Result<(), String> {
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".compressing");
    let r = convert_dat(path, &tmp, TraceDatVersion::V7, Some(codec))
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Refuses `--compression` for an output that is not trace.dat.
pub fn check_compression(
    format: Option<crate::Format>,
    compression: Option<CompressionArg>,
) -> Result<(), String> {
    match (format, compression.and_then(CompressionArg::codec)) {
        (Some(crate::Format::Json), Some(c)) => {
            Err(format!("--compression {c}: JSON output is not compressed"))
        }
        (None, Some(c)) => Err(format!("--compression {c} needs an output (-o)")),
        _ => Ok(()),
    }
}

/// `record --compression`: compresses the trace.dat `record` wrote at
/// `out`; when that fails, keeps it uncompressed and says so.
pub fn compress_recorded(out: &Path, compression: Option<CompressionArg>) {
    let Some(codec) = compression.and_then(CompressionArg::codec) else {
        return;
    };
    if let Err(e) = compress_in_place(out, codec) {
        eprintln!(
            "ringtrace: warning: {} could not be compressed ({e}): it is kept uncompressed",
            out.display()
        );
    }
}
