//! `ringtrace record -e EVENT [-f FILTER] ... [--kernel-pid-only]`: kernel
//! events recorded beside the program's own, into the same trace.dat
//! (`ringtrace::kernel` does the work; this file is the command line's
//! part: the options, pairing each `-f` with the `-e` before it, and the
//! messages).
//!
//! Contract: kernel events never stop the program from being traced. When
//! they cannot be recorded (no tracefs, not permitted, an unknown event,
//! a refused filter) `record` says so in one line and records the program
//! alone. When they were recorded but cannot be merged into the output,
//! the output keeps the program's events and the line says so.

use std::path::Path;

use clap::Args;
use ringtrace::clock::ClockKind;
use ringtrace::kernel::{
    kernel_cpus, tracefs_root, EventSpec, KernelCapture, KernelConfig, KernelRecording,
};
use ringtrace::tracedat::TraceDatInfo;

use crate::Format;

/// The kernel options of `record`.
#[derive(Debug, Args)]
pub struct KernelArgs {
    /// Record this kernel event too, with trace-cmd's syntax:
    /// `sched:sched_switch`, `sched` (a whole system), `irq:*`, or a bare
    /// event name. Repeat for more. Needs a trace.dat output and root.
    #[arg(short = 'e', long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Kernel filter for the -e before it (the kernel's syntax:
    /// `prev_pid != 0 && next_comm ~ "worker*"`).
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Kernel events of the program and the processes it forks only
    /// (set_event_pid with options/event-fork), not of the whole machine.
    #[arg(long)]
    pub kernel_pid_only: bool,
}

/// Which `-e`/`-f` (and their long forms) an argument is, and its value
/// when it carries one (`-esched`, `--event=sched`).
fn flag_of(arg: &str) -> Option<(char, Option<&str>)> {
    for (short, long, kind) in [("-e", "--event", 'e'), ("-f", "--filter", 'f')] {
        if arg == short || arg == long {
            return Some((kind, None));
        }
        if let Some(v) = arg.strip_prefix(long).and_then(|v| v.strip_prefix('=')) {
            return Some((kind, Some(v)));
        }
        if let Some(v) = arg
            .strip_prefix(short)
            .filter(|v| !v.is_empty() && !arg.starts_with("--"))
        {
            return Some((kind, Some(v.strip_prefix('=').unwrap_or(v))));
        }
    }
    None
}

/// Pairs each filter with the event before it, from `argv` (clap keeps no
/// order between two options): the first `events.len()` `-e` and the first
/// `filters.len()` `-f` of the command line are clap's (the program's own
/// arguments come after them), and must be the values clap parsed.
fn pair(argv: &[String], events: &[String], filters: &[String]) -> Result<Vec<EventSpec>, String> {
    let mut specs: Vec<EventSpec> = Vec::new();
    let mut filters_seen = 0;
    let mut it = argv.iter();
    while specs.len() < events.len() || filters_seen < filters.len() {
        let Some(arg) = it.next() else { break };
        let Some((kind, inline)) = flag_of(arg) else {
            continue;
        };
        let Some(value) = inline.map(str::to_string).or_else(|| it.next().cloned()) else {
            break;
        };
        match kind {
            'e' if specs.len() < events.len() => specs.push(EventSpec {
                name: value,
                filter: None,
            }),
            'f' if filters_seen < filters.len() => {
                filters_seen += 1;
                match specs.last_mut() {
                    Some(s) if s.filter.is_none() => s.filter = Some(value),
                    Some(s) => {
                        return Err(format!("two -f for the event {}: give one filter", s.name))
                    }
                    None => return Err(format!("-f {value:?} comes before any -e")),
                }
            }
            _ => {}
        }
    }
    let names: Vec<&String> = specs.iter().map(|s| &s.name).collect();
    let given: Vec<&String> = specs.iter().filter_map(|s| s.filter.as_ref()).collect();
    if names != events.iter().collect::<Vec<_>>() || given != filters.iter().collect::<Vec<_>>() {
        return Err(
            "cannot tell which -e each -f belongs to: give -e EVENT -f FILTER pairs".into(),
        );
    }
    Ok(specs)
}

/// Checks the kernel options before anything starts: events need a
/// trace.dat output.
pub fn check(k: &KernelArgs, output: Option<&Path>, format: Option<Format>) -> Result<(), String> {
    if k.events.is_empty() {
        if !k.filters.is_empty() || k.kernel_pid_only {
            return Err("-f and --kernel-pid-only need kernel events (-e EVENT)".into());
        }
        return Ok(());
    }
    match (output, format) {
        (Some(_), Some(Format::Dat | Format::Dat7)) => Ok(()),
        _ => Err(
            "kernel events (-e) are written to a trace.dat output: give -o FILE.dat \
             (convert it to JSON or Perfetto afterwards with `ringtrace convert`)"
                .into(),
        ),
    }
}

/// Starts recording the kernel events of `k`, or says in one line why
/// they will not be recorded (the program is still traced).
pub fn start(
    k: &KernelArgs,
    tag: &str,
    clock: ClockKind,
    page_size: usize,
    buffer_kb: usize,
) -> Option<KernelRecording> {
    if k.events.is_empty() {
        return None;
    }
    let argv: Vec<String> = std::env::args().collect();
    let r = pair(&argv, &k.events, &k.filters).and_then(|events| {
        let cfg = KernelConfig {
            events,
            clock,
            page_size,
            buffer_kb,
            // --kernel-pid-only: set by `program_started`, once the
            // program's pid is known.
            pid: None,
            tag: tag.to_string(),
        };
        let mut rec = KernelRecording::prepare(&tracefs_root(), &cfg).map_err(|e| e.to_string())?;
        if !k.kernel_pid_only {
            rec.begin(None).map_err(|e| e.to_string())?;
        }
        Ok(rec)
    });
    match r {
        Ok(rec) => Some(rec),
        Err(e) => {
            eprintln!(
                "ringtrace: kernel events not recorded: {e}; the program is traced without them"
            );
            None
        }
    }
}

/// `--kernel-pid-only`: enables the kernel events for the program (and
/// what it forks) once it runs; its first instructions (before its pid
/// is known) are not covered. On failure, says so and drops the kernel
/// recording.
pub fn program_started(rec: &mut Option<KernelRecording>, k: &KernelArgs, pid: u32) {
    if !k.kernel_pid_only {
        return;
    }
    if let Some(r) = rec {
        if let Err(e) = r.begin(Some(pid)) {
            eprintln!(
                "ringtrace: kernel events not recorded: {e}; the program is traced without them"
            );
            *rec = None;
        }
    }
}

/// Stops the kernel recording (when there is one) once the program ended:
/// what it read, or a line saying it was lost.
pub fn stop(rec: Option<KernelRecording>) -> Option<KernelCapture> {
    match rec?.stop() {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("ringtrace: kernel events lost: {e}");
            None
        }
    }
}

/// Merges what the kernel recording read into the trace.dat at `out`
/// (`written`: the output was written whole); says what was recorded and
/// what the kernel lost, per CPU.
pub fn merge(cap: Option<KernelCapture>, out: Option<&Path>, written: bool) {
    let Some(mut cap) = cap else { return };
    let pages: u64 = cap.cpus.iter().map(|c| c.pages).sum();
    let Some(out) = out.filter(|_| written) else {
        eprintln!(
            "ringtrace: kernel events not written ({pages} pages read): the output was not \
             written whole"
        );
        return;
    };
    match ringtrace::kernel::merge_into(out, &mut cap) {
        Ok(()) => {
            let lost = cap.lost();
            let per_cpu: Vec<String> = cap
                .cpus
                .iter()
                .zip(&cap.stats)
                .map(|(c, s)| format!("cpu{} {}", c.cpu, ringtrace::kernel::stat_lost(s)))
                .collect();
            eprintln!(
                "ringtrace: kernel events: {pages} pages from {} CPUs added to {}; lost by the \
                 kernel: {lost}{}",
                cap.cpus.len(),
                out.display(),
                if lost > 0 {
                    format!(" ({}; raise -b)", per_cpu.join(", "))
                } else {
                    String::new()
                }
            );
        }
        Err(e) => eprintln!(
            "ringtrace: kernel events not written: {e}; {} holds the program's events only",
            out.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::pair;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn each_filter_goes_to_the_event_before_it() {
        let argv = s(&[
            "ringtrace",
            "record",
            "-e",
            "sched:sched_switch",
            "-f",
            "prev_pid != 0",
            "-esched_wakeup",
            "--event=irq:*",
            "--filter",
            "irq > 3",
            "-o",
            "t.dat",
            "--",
            "prog",
            "-e",
            "x",
            "-f",
            "y",
        ]);
        let p = pair(
            &argv,
            &s(&["sched:sched_switch", "sched_wakeup", "irq:*"]),
            &s(&["prev_pid != 0", "irq > 3"]),
        )
        .unwrap();
        let got: Vec<(&str, Option<&str>)> = p
            .iter()
            .map(|e| (e.name.as_str(), e.filter.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("sched:sched_switch", Some("prev_pid != 0")),
                ("sched_wakeup", None),
                ("irq:*", Some("irq > 3")),
            ]
        );
        let bad = s(&["ringtrace", "record", "-f", "x", "-e", "sched", "p"]);
        assert!(pair(&bad, &s(&["sched"]), &s(&["x"]))
            .unwrap_err()
            .contains("before any -e"));
    }
}

/// `report --kernel-only` / `--user-only`: which side of a file recorded
/// with `record -e` to show (the kernel's CPUs are told by their stats,
/// see `ringtrace::kernel::kernel_cpus`).
#[derive(Debug, Args)]
pub struct Side {
    /// Only the kernel's events (of a file recorded with `record -e`).
    #[arg(long, conflicts_with = "user_only")]
    pub kernel_only: bool,
    /// Only the program's own events (not the kernel's).
    #[arg(long)]
    pub user_only: bool,
}

impl Side {
    /// The CPUs to show: `asked` (`--cpu`; empty for all) narrowed to the
    /// side chosen. Never empty when a side is chosen: a file without that
    /// side is an error.
    pub fn cpus(&self, info: &TraceDatInfo, asked: Vec<u32>) -> Result<Vec<u32>, String> {
        if !self.kernel_only && !self.user_only {
            return Ok(asked);
        }
        let kernel: Vec<u32> = kernel_cpus(info).into_iter().map(|(f, _)| f).collect();
        let all = info.cpus.iter().map(|c| c.cpu);
        let side: Vec<u32> = all
            .filter(|c| kernel.contains(c) == self.kernel_only)
            .filter(|c| asked.is_empty() || asked.contains(c))
            .collect();
        if side.is_empty() {
            return Err(if kernel.is_empty() && self.kernel_only {
                "--kernel-only: the file has no kernel events (record them with `ringtrace \
                 record -e EVENT`)"
                    .into()
            } else {
                format!(
                    "--{}-only: no CPU of that side is left (kernel CPUs: {kernel:?})",
                    if self.kernel_only { "kernel" } else { "user" }
                )
            });
        }
        Ok(side)
    }
}
