//! Rewriting a `trace.dat` file as another version (v6 <-> v7), compressed
//! or not, keeping its metadata and copying its pages unchanged (each page
//! header checked on the way, as [`TraceDatWriter::push_pages`] checks it;
//! compressed input is decompressed, compressed output compressed).
//!
//! The output keeps the input's byte order and long size, as
//! `trace-cmd convert` does, so big-endian files and files of 32-bit
//! machines convert without touching a page.
//!
//! Limits: event formats are regenerated from their parsed form
//! ([`EventFormat::format_text`](super::EventFormat::format_text)); options
//! this crate does not interpret and other buffer instances are dropped.

use std::io::{Read, Seek, Write};

use super::compress::Compression;
use super::error::TraceDatError;
use super::read::{CpuData, TraceDatInfo, TraceDatReader};
use super::write::{TraceDatMeta, TraceDatVersion, TraceDatWriter};

/// Bytes read per batch.
const BATCH: usize = 1 << 20;

/// The metadata of a read file, for writing it again with `cpus` CPUs:
/// everything but the pages and the version (v6); per-CPU stats only when
/// they fit `cpus`.
#[doc(hidden)]
pub fn meta_of(info: &TraceDatInfo, cpus: u32) -> TraceDatMeta {
    let mut meta = TraceDatMeta::new(
        info.page_size,
        cpus,
        info.clock.clone().unwrap_or_else(|| "local".to_string()),
    );
    let mut systems: Vec<(String, Vec<String>)> = Vec::new();
    for e in &info.events {
        match systems.iter_mut().find(|(s, _)| *s == e.system) {
            Some((_, v)) => v.push(e.format_text()),
            None => systems.push((e.system.clone(), vec![e.format_text()])),
        }
    }
    meta.events = systems;
    meta.kallsyms = info.kallsyms.clone();
    meta.printk = info.printk.clone();
    meta.cmdlines = info.cmdlines.clone();
    meta.tsc2nsec = info.tsc2nsec;
    meta.big_endian = info.big_endian;
    meta.long_size = info.long_size;
    meta.trace_id = info.trace_id;
    meta.wall_start = info.wall_start;
    meta.processes = info.processes.clone();
    meta.uname = info.uname.clone();
    meta.writer_version = info.writer_version.clone();
    if info.cpu_stats.len() <= cpus as usize {
        meta.cpu_stats = info.cpu_stats.clone();
    }
    meta
}

/// How [`convert_with`] writes its output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// The output's version.
    pub version: TraceDatVersion,
    /// Compress the output (needs [`TraceDatVersion::V7`]).
    pub compression: Option<Compression>,
}

/// Writes the file `reader` reads as `version` to `out`; returns `out`.
pub fn convert<R: Read + Seek, W: Write + Seek>(
    reader: &mut TraceDatReader<R>,
    out: W,
    version: TraceDatVersion,
) -> Result<W, TraceDatError> {
    let opts = ConvertOptions {
        version,
        compression: None,
    };
    convert_with(reader, out, opts, |_, _| {})
}

/// Writes the file `reader` reads to `out` as `opts` says, in the input's
/// byte order and long size, and returns `out`. `progress(done, total)`
/// is called with the pages copied so far out of all the input's pages:
/// once before the first and after each batch.
pub fn convert_with<R: Read + Seek, W: Write + Seek>(
    reader: &mut TraceDatReader<R>,
    out: W,
    opts: ConvertOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<W, TraceDatError> {
    let info = reader.info().clone();
    let cpus = info.cpus.iter().map(|c| c.cpu + 1).max().unwrap_or(0);
    let mut meta = meta_of(&info, cpus);
    meta.version = opts.version;
    meta.compression = opts.compression;
    let mut w = TraceDatWriter::new(out, &meta)?;
    let mut table: Vec<(usize, CpuData)> = info.cpus.iter().copied().enumerate().collect();
    table.sort_by_key(|(_, c)| c.cpu);
    let ps = u64::from(info.page_size);
    let mut buf = vec![0u8; BATCH.max(info.page_size as usize)];
    let batch = (buf.len() as u64 / ps) * ps;
    let total = table.iter().map(|(_, c)| c.size / ps).sum();
    let mut done = 0;
    progress(done, total);
    for (index, c) in table {
        if c.size % ps != 0 {
            return Err(TraceDatError::invalid(
                "CPU data",
                c.offset,
                format!(
                    "CPU {} data of {} bytes is not whole {ps}-byte pages",
                    c.cpu, c.size
                ),
            ));
        }
        let Some((mut bytes, src)) = reader.cpu_bytes(index) else {
            continue;
        };
        let mut at = 0;
        while at < c.size {
            let n = (c.size - at).min(batch) as usize;
            bytes.read(src, at, &mut buf[..n])?;
            w.push_pages(c.cpu, &buf[..n])?;
            at += n as u64;
            done += n as u64 / ps;
            progress(done, total);
        }
    }
    w.finish()
}
