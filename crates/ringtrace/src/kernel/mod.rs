//! Kernel events beside the program's own: a tracefs instance of
//! ringtrace's (`instance.rs`), the events enabled in it with trace-cmd's
//! `-e` syntax and kernel filters (`events.rs`), its per-CPU
//! `trace_pipe_raw` pages read while the program runs (`reader.rs`), and
//! one trace.dat holding both (`merge.rs`).
//!
//! # Lifecycle
//!
//! ```text
//! KernelRecording::start   remove stale ringtrace-* instances (dead owners)
//!                          mkdir instances/ringtrace-<pid>-<tag>, tracing_on 0
//!                          trace_clock = the session's clock (mono / x86-tsc)
//!                          buffer_subbuf_size_kb, buffer_size_kb, set_event_pid
//!                          events enabled (+ filters), reader thread, tracing_on 1
//!   ... the program runs ...
//! KernelRecording::stop    tracing_on 0, last drain, files closed,
//!                          per_cpu/cpuN/stats read, events off, rmdir
//! ```
//!
//! Dropping a [`KernelRecording`] (an error path, a panic unwinding) does
//! the same minus the drain: the instance never outlives its owner unless
//! the owner is killed outright, and then the next `start` removes it.
//!
//! # Clock
//!
//! The instance's `trace_clock` is the one that counts like the session's:
//! `mono` for [`ClockKind::Mono`] (CLOCK_MONOTONIC ns), `x86-tsc` for
//! [`ClockKind::Tsc`] (raw TSC cycles); the two rings' time stamps are then
//! the same numbers and merge by value. Other clocks are refused.

mod events;
mod instance;
mod merge;
mod reader;

use std::path::{Path, PathBuf};

use crate::clock::ClockKind;

pub use events::{resolve, EnabledEvent, EventSpec};
pub use instance::{check_tracefs, remove_stale, tracefs_root, Instance, PREFIX, TRACEFS};
pub use merge::{kernel_cpus, merge_into, KERNEL_CPU_TAG};
pub use reader::CpuPages;
use reader::PageReader;

/// Why kernel events could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// No tracefs at the mount point.
    #[error("no tracefs at {0} (is it mounted? `mount -t tracefs nodev /sys/kernel/tracing`)")]
    NoTracefs(PathBuf),
    /// tracefs is there but not ours to write.
    #[error("not permitted to make a tracefs instance in {path} ({source}): run as root")]
    NotPermitted {
        /// The directory refused.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An event name matched no kernel event.
    #[error("unknown kernel event {0:?} (see /sys/kernel/tracing/available_events)")]
    UnknownEvent(String),
    /// The kernel refused a filter.
    #[error("kernel filter {filter:?} for {event}: {why}")]
    BadFilter {
        /// The event it was given for.
        event: String,
        /// The expression.
        filter: String,
        /// The kernel's parse error.
        why: String,
    },
    /// Something the kernel or the session cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// A tracefs or spool file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: String,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the merged trace.dat failed.
    #[error("merging the kernel events into {}: {source}", path.display())]
    Merge {
        /// The trace.dat.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: crate::tracedat::TraceDatError,
    },
}

/// What to record from the kernel.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// The events, each with its filter.
    pub events: Vec<EventSpec>,
    /// The session's clock: the instance's is set to match it.
    pub clock: ClockKind,
    /// The page size, the session's (the instance's sub-buffer size).
    pub page_size: usize,
    /// Buffer of each CPU in KiB.
    pub buffer_kb: usize,
    /// Trace only this process and its children (`set_event_pid` with
    /// `options/event-fork`).
    pub pid: Option<u32>,
    /// The tag in the instance's name (the session's name).
    pub tag: String,
}

/// The instance's `trace_clock` for a session clock.
pub fn trace_clock_for(clock: ClockKind) -> Result<&'static str, KernelError> {
    match clock {
        ClockKind::Mono => Ok("mono"),
        ClockKind::Tsc => Ok("x86-tsc"),
        other => Err(KernelError::Unsupported(format!(
            "clock {other:?} has no kernel trace_clock counting alike: record with mono or tsc"
        ))),
    }
}

/// A kernel recording in progress: the instance and its reader.
#[derive(Debug)]
pub struct KernelRecording {
    // Field order is drop order: the reader closes its files before the
    // instance is removed.
    reader: Option<PageReader>,
    instance: Instance,
    events: Vec<EnabledEvent>,
    specs: Vec<EventSpec>,
    cpus: Vec<u32>,
    page_size: usize,
}

/// What a kernel recording gave: per CPU pages and stats, the formats of
/// its events, and the kernel's thread names and symbols.
#[derive(Debug)]
pub struct KernelCapture {
    /// The instance's name.
    pub instance: String,
    /// Each CPU's pages, in CPU order.
    pub cpus: Vec<CpuPages>,
    /// Each CPU's `per_cpu/cpuN/stats` text, in the same order.
    pub stats: Vec<String>,
    /// The formats of the events enabled.
    pub events: Vec<EnabledEvent>,
    /// `saved_cmdlines`: `(pid, comm)`.
    pub cmdlines: Vec<(i32, String)>,
    /// `/proc/kallsyms` when readable, else empty.
    pub kallsyms: String,
    /// The page size.
    pub page_size: usize,
}

impl KernelCapture {
    /// Events the kernel lost, summed over the CPUs' `overrun` and
    /// `dropped events` counts.
    pub fn lost(&self) -> u64 {
        self.stats.iter().map(|s| stat_lost(s)).sum()
    }
}

/// `overrun` + `dropped events` of one `stats` text.
pub fn stat_lost(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "overrun" | "dropped events")
                .then(|| v.trim().parse::<u64>().ok())?
        })
        .sum()
}

impl KernelRecording {
    /// Makes the instance, enables the events and starts reading; the
    /// instance records from here on ([`prepare`](Self::prepare) then
    /// [`begin`](Self::begin) with `cfg.pid`).
    pub fn start(root: &Path, cfg: &KernelConfig) -> Result<KernelRecording, KernelError> {
        let mut rec = Self::prepare(root, cfg)?;
        rec.begin(cfg.pid)?;
        Ok(rec)
    }

    /// Makes the instance (its clock, page and buffer sizes) and starts
    /// reading it, events not yet enabled: [`begin`](Self::begin) enables
    /// them once the pid to trace is known.
    pub fn prepare(root: &Path, cfg: &KernelConfig) -> Result<KernelRecording, KernelError> {
        check_tracefs(root)?;
        for name in remove_stale(root)? {
            eprintln!("ringtrace: removed the tracefs instance {name} left by a killed recording");
        }
        let clock = trace_clock_for(cfg.clock)?;
        let instance = Instance::create(root, &cfg.tag)?;
        instance.set_clock(clock)?;
        instance.set_page_size(cfg.page_size)?;
        instance.set_buffer_kb(cfg.buffer_kb)?;
        // Resolved now, so that a bad name fails before the program starts.
        for spec in &cfg.events {
            events::resolve(&instance.dir().join("events"), &spec.name)?;
        }
        // The reader thread before any pid filter: spawned after it, it
        // would be traced itself (event-fork follows threads too).
        let cpus = instance.cpus()?;
        let reader = PageReader::start(instance.dir(), &cpus, cfg.page_size)?;
        Ok(KernelRecording {
            reader: Some(reader),
            instance,
            events: Vec::new(),
            specs: cfg.events.clone(),
            cpus,
            page_size: cfg.page_size,
        })
    }

    /// Sets the pid filter (`pid` and what it forks; `None`: every task),
    /// enables the events with their filters and turns recording on. The
    /// pid list is written once, before any event is on.
    pub fn begin(&mut self, pid: Option<u32>) -> Result<(), KernelError> {
        if let Some(pid) = pid {
            self.instance.set_event_pid(pid)?;
        }
        self.events = events::enable(self.instance.dir(), &self.specs)?;
        self.instance.set_tracing_on(true)
    }

    /// The instance's name.
    pub fn instance_name(&self) -> String {
        self.instance.name()
    }

    /// Stops recording, reads what is left, removes the instance and
    /// returns what was recorded.
    pub fn stop(mut self) -> Result<KernelCapture, KernelError> {
        self.instance.set_tracing_on(false)?;
        let reader = self.reader.take();
        let cpus = match reader {
            Some(r) => r.finish()?,
            None => Vec::new(),
        };
        let dir = self.instance.dir().to_path_buf();
        let stats = self
            .cpus
            .iter()
            .map(|c| {
                instance::read_file(&dir.join(format!("per_cpu/cpu{c}/stats"))).unwrap_or_default()
            })
            .collect();
        let name = self.instance.name();
        let root = dir
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(tracefs_root);
        let page_size = self.page_size;
        let events = std::mem::take(&mut self.events);
        self.instance.remove()?;
        Ok(KernelCapture {
            instance: name,
            cpus,
            stats,
            events,
            cmdlines: saved_cmdlines(&root),
            kallsyms: std::fs::read_to_string("/proc/kallsyms").unwrap_or_default(),
            page_size,
        })
    }
}

/// The global `saved_cmdlines` (`PID COMM` lines), empty when unreadable.
fn saved_cmdlines(root: &Path) -> Vec<(i32, String)> {
    std::fs::read_to_string(root.join("saved_cmdlines"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, comm) = l.split_once(' ')?;
            Some((pid.parse().ok()?, comm.to_string()))
        })
        .collect()
}
