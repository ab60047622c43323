//! One trace.dat holding the program's events and the kernel's.
//!
//! # Layout: one buffer set
//!
//! The kernel's CPUs are added to the top buffer as extra CPUs after the
//! program's contexts: with U contexts, kernel CPU N is the file's CPU
//! U + N. Its pages are the kernel's, copied unchanged from
//! `trace_pipe_raw`; both sides use the same clock (`mono` or `x86-tsc`),
//! so `trace-cmd report`, KernelShark and ringtrace's own reader merge
//! them by time stamp as they merge any two CPUs. Chosen over an instance
//! buffer (a BUFFER option and a second flyrecord block) because every
//! reader of trace.dat, KernelShark's loader and ringtrace's reader and
//! converters included, reads the top buffer, while instance buffers are
//! skipped by tools that read one buffer only.
//!
//! Which file CPUs are the kernel's is written in their per-CPU stats
//! (the CPUSTAT option, which `trace-cmd report --stat` prints and every
//! conversion keeps): their text starts with [`KERNEL_CPU_TAG`] and the
//! kernel CPU number, then the kernel's own `per_cpu/cpuN/stats` (its
//! `overrun` and `dropped events` are the kernel side's losses).
//!
//! The file also gets the kernel events' `format` texts (under their own
//! systems), the kernel's `saved_cmdlines` (pids the program's table does
//! not name) and `/proc/kallsyms` when it shows addresses. Event ids are
//! one namespace in trace.dat: a kernel event whose id is one of the
//! program's event types is refused, naming both.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::tracedat::convert::meta_of;
use crate::tracedat::{
    parse_format, TraceDatError, TraceDatInfo, TraceDatMeta, TraceDatReader, TraceDatVersion,
    TraceDatWriter,
};

use super::{KernelCapture, KernelError};

/// How the per-CPU stats text of a kernel CPU starts:
/// `"kernel CPU: N\n"`.
pub const KERNEL_CPU_TAG: &str = "kernel CPU: ";

/// Bytes of pages copied per batch.
const BATCH: usize = 1 << 20;

/// The kernel CPUs of a file: `(file CPU, kernel CPU)`, from the stats
/// tag (see the module docs); empty for a file without kernel events.
pub fn kernel_cpus(info: &TraceDatInfo) -> Vec<(u32, u32)> {
    info.cpu_stats
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let n = s
                .strip_prefix(KERNEL_CPU_TAG)?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()?;
            Some((i as u32, n))
        })
        .collect()
}

/// The metadata of the merged file: the program's, plus the kernel's
/// formats, thread names, symbols and per-CPU stats.
fn merged_meta(
    info: &TraceDatInfo,
    user_cpus: u32,
    cap: &KernelCapture,
) -> Result<TraceDatMeta, String> {
    let total = user_cpus + cap.cpus.len() as u32;
    let mut meta = meta_of(info, total);
    meta.version = if info.version >= 7 {
        TraceDatVersion::V7
    } else {
        TraceDatVersion::V6
    };
    meta.compression = info.compression;
    for ev in &cap.events {
        let parsed = parse_format(&ev.system, &ev.format)
            .map_err(|e| format!("the kernel's format of {}:{}: {e}", ev.system, ev.name))?;
        if let Some(user) = info.events.iter().find(|u| u.id == parsed.id) {
            if user.system == ev.system && user.name == ev.name {
                continue; // the same event (ftrace's print, bprint)
            }
            return Err(format!(
                "kernel event {}:{} has id {}, the id of the program's event {}:{}: \
                 declare the program's event types with ids the kernel does not use",
                ev.system, ev.name, parsed.id, user.system, user.name
            ));
        }
        match meta.events.iter_mut().find(|(s, _)| *s == ev.system) {
            Some((_, v)) => v.push(ev.format.clone()),
            None => meta
                .events
                .push((ev.system.clone(), vec![ev.format.clone()])),
        }
    }
    for (pid, comm) in &cap.cmdlines {
        if !meta.cmdlines.iter().any(|(p, _)| p == pid) {
            meta.cmdlines.push((*pid, comm.replace('\n', " ")));
        }
    }
    if kallsyms_has_addresses(&cap.kallsyms) {
        if !meta.kallsyms.is_empty() && !meta.kallsyms.ends_with('\n') {
            meta.kallsyms.push('\n');
        }
        meta.kallsyms.push_str(&cap.kallsyms);
    }
    meta.cpu_stats.resize(user_cpus as usize, String::new());
    for (c, stats) in cap.cpus.iter().zip(&cap.stats) {
        meta.cpu_stats.push(format!(
            "{KERNEL_CPU_TAG}{}\ninstance: {}\n{stats}",
            c.cpu, cap.instance
        ));
    }
    Ok(meta)
}

/// Whether a kallsyms text shows real addresses (not all zero, as it is
/// for a reader `kptr_restrict` hides them from).
fn kallsyms_has_addresses(text: &str) -> bool {
    text.lines().take(64).any(|l| {
        l.split(' ')
            .next()
            .is_some_and(|a| a.bytes().any(|b| b != b'0'))
    })
}

/// Rewrites the trace.dat at `path` with the kernel's CPUs of `cap` added
/// (see the module docs), in the file's version and compression, through
/// a file beside it renamed over it once complete: on failure `path` is
/// left as it was.
pub fn merge_into(path: &Path, cap: &mut KernelCapture) -> Result<(), KernelError> {
    let err = |source| KernelError::Merge {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".kernel");
    let r = write_merged(path, &tmp, cap).map_err(err);
    let r = r.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| KernelError::Io {
            what: "renaming the merged trace over".into(),
            path: path.to_path_buf(),
            source,
        })
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn write_merged(path: &Path, tmp: &Path, cap: &mut KernelCapture) -> Result<(), TraceDatError> {
    let f = File::open(path).map_err(TraceDatError::io("opening the recorded trace"))?;
    let mut r = TraceDatReader::new(BufReader::new(f))?;
    let info = r.info().clone();
    if info.page_size as usize != cap.page_size {
        return Err(TraceDatError::Usage(format!(
            "the trace's pages are {} bytes, the kernel's {}",
            info.page_size, cap.page_size
        )));
    }
    let user_cpus = info.cpus.iter().map(|c| c.cpu + 1).max().unwrap_or(0);
    let meta = merged_meta(&info, user_cpus, cap).map_err(TraceDatError::Usage)?;
    let out = File::create(tmp).map_err(TraceDatError::io("creating the merged trace"))?;
    let mut w = TraceDatWriter::new(BufWriter::new(out), &meta)?;
    copy_user_pages(&mut r, &info, &mut w)?;
    let ps = cap.page_size;
    let mut buf = vec![0u8; (BATCH / ps).max(1) * ps];
    for (i, c) in cap.cpus.iter_mut().enumerate() {
        let file_cpu = user_cpus + i as u32;
        c.file
            .seek(SeekFrom::Start(0))
            .map_err(TraceDatError::io("rewinding a kernel spool"))?;
        let mut left = c.pages * ps as u64;
        while left > 0 {
            let n = (left.min(buf.len() as u64)) as usize;
            c.file
                .read_exact(&mut buf[..n])
                .map_err(TraceDatError::io("reading a kernel spool"))?;
            w.push_pages(file_cpu, &buf[..n])?;
            left -= n as u64;
        }
    }
    let out = w.finish()?;
    let f = out
        .into_inner()
        .map_err(|e| TraceDatError::io("flushing the merged trace")(e.into_error()))?;
    f.sync_all()
        .map_err(TraceDatError::io("syncing the merged trace"))
}

/// Copies the program's pages, CPU by CPU, unchanged.
fn copy_user_pages<W: std::io::Write + Seek>(
    r: &mut TraceDatReader<BufReader<File>>,
    info: &TraceDatInfo,
    w: &mut TraceDatWriter<W>,
) -> Result<(), TraceDatError> {
    let ps = u64::from(info.page_size);
    let mut table: Vec<(usize, u32, u64)> = info
        .cpus
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.cpu, c.size))
        .collect();
    table.sort_by_key(|t| t.1);
    let mut buf = vec![0u8; (BATCH / ps as usize).max(1) * ps as usize];
    for (index, cpu, size) in table {
        let Some((mut bytes, src)) = r.cpu_bytes(index) else {
            continue;
        };
        let mut at = 0;
        while at + ps <= size {
            let n = (size - at).min(buf.len() as u64) / ps * ps;
            bytes.read(src, at, &mut buf[..n as usize])?;
            w.push_pages(cpu, &buf[..n as usize])?;
            at += n;
        }
    }
    Ok(())
}
