//! Rewriting a `trace.dat` file as another version (v6 <-> v7), keeping its
//! metadata and copying its pages unchanged (each page header checked on
//! the way, as [`TraceDatWriter::push_pages`] checks it).
//!
//! Limits: the writer writes 64-bit pages in this machine's byte order, so
//! files with 4-byte longs or the other byte order are refused; event
//! formats are regenerated from their parsed form
//! ([`EventFormat::format_text`](super::EventFormat::format_text)); options
//! this crate does not interpret and other buffer instances are dropped.

use std::io::{Read, Seek, SeekFrom, Write};

use super::error::TraceDatError;
use super::read::{TraceDatInfo, TraceDatReader};
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

/// Writes the file `reader` reads as `version` to `out`; returns `out`.
pub fn convert<R: Read + Seek, W: Write + Seek>(
    reader: &mut TraceDatReader<R>,
    out: W,
    version: TraceDatVersion,
) -> Result<W, TraceDatError> {
    let info = reader.info().clone();
    if info.long_size != 8 || info.big_endian != cfg!(target_endian = "big") {
        return Err(TraceDatError::Usage(format!(
            "cannot rewrite pages with {}-byte longs in {}-endian order \
             (the writer writes 8-byte longs in this machine's order)",
            info.long_size,
            if info.big_endian { "big" } else { "little" }
        )));
    }
    let cpus = info.cpus.iter().map(|c| c.cpu + 1).max().unwrap_or(0);
    let mut meta = meta_of(&info, cpus);
    meta.version = version;
    let mut w = TraceDatWriter::new(out, &meta)?;
    let mut table = info.cpus.clone();
    table.sort_by_key(|c| c.cpu);
    let ps = u64::from(info.page_size);
    let mut buf = vec![0u8; BATCH.max(info.page_size as usize)];
    let batch = (buf.len() as u64 / ps) * ps;
    let src = reader.source_mut();
    for c in table {
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
        src.seek(SeekFrom::Start(c.offset))
            .map_err(TraceDatError::io("seeking to CPU data"))?;
        let mut left = c.size;
        while left > 0 {
            let n = left.min(batch) as usize;
            src.read_exact(&mut buf[..n])
                .map_err(TraceDatError::io("reading CPU data"))?;
            w.push_pages(c.cpu, &buf[..n])?;
            left -= n as u64;
        }
    }
    w.finish()
}
