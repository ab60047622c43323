//! `ringtrace`: the command line.
//!
//! ```text
//! ringtrace demo --output FILE [--format dat|dat7|json|perfetto] record a demo trace and export it
//! ringtrace report [FILE] [--cpu 0,2-3] [-e GLOB] [-F FILTER] [--pid P] [--comm C] [--stat]
//!                  [-R] [-t] [--raw-ts] [--json]              print a trace.dat like the live reader
//! ringtrace dump [FILE]                                    summary: sections, CPUs, counts, losses
//! ringtrace convert [FILE] -o OUT [--format F] [--compression C]  trace.dat -> JSON, Perfetto, v6 <-> v7, zstd/zlib
//!   (FILE, or -i FILE, defaults to trace.dat as in trace-cmd)
//! ringtrace html [FILE] [-o OUT.html]                      trace.dat -> self-contained HTML timeline
//! ringtrace record [-b KB] [--mode M] [--clock C] [-o FILE] -- PROGRAM ARGS...
//! ringtrace recover FILE                                   write a killed record's output
//! ringtrace list | pipe S | show S | stat S | extract S -o F | snapshot S -o F | clear S | remove S
//! ringtrace start S | stop S | reset S                    recording on / off; empty and on
//! ```
//!
//! Every failure prints `ringtrace: error: ...` naming what and where
//! (section, file offset, CPU, page) and exits with status 1; nothing panics
//! on bad input. `record` exits with its program's status (128+N when
//! signal N killed it).
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod contexts_cmd;
mod cpulist;
mod dat_convert;
mod demo;
mod files;
mod filter;
mod html_cmd;
mod kernel_cmd;
mod progress;
mod report_stat;
mod session_cmds;
mod signals;
mod wall;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringtrace::export::{ExportError, ExportFormat};
use ringtrace::json::JsonError;
use ringtrace::tracedat::{TraceDatError, TraceDatVersion};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// trace.dat version 6 (trace-cmd's default).
    Dat,
    /// trace.dat version 7.
    Dat7,
    /// Chrome trace-event JSON (Perfetto UI, chrome://tracing).
    Json,
    /// Native Perfetto protobuf (Perfetto UI, trace_processor).
    Perfetto,
}

impl Format {
    /// The export format.
    pub fn export(self) -> ExportFormat {
        match self {
            Format::Dat => ExportFormat::TraceDat(TraceDatVersion::V6),
            Format::Dat7 => ExportFormat::TraceDat(TraceDatVersion::V7),
            Format::Json => ExportFormat::Json,
            Format::Perfetto => ExportFormat::Perfetto,
        }
    }

    /// The format named by `path`'s extension (`.dat`, `.json`,
    /// `.perfetto-trace`, `.pftrace`), else
    /// `given`, else an error.
    pub fn resolve(path: &Path, given: Option<Format>) -> Result<Format, CliError> {
        if let Some(f) = given {
            return Ok(f);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("dat") => Ok(Format::Dat),
            Some("json") => Ok(Format::Json),
            Some("perfetto-trace" | "pftrace") => Ok(Format::Perfetto),
            _ => Err(CliError::Usage(format!(
                "cannot tell the format of {}: use a .dat, .json, .perfetto-trace or .pftrace name or --format",
                path.display()
            ))),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "ringtrace",
    version,
    about = "Record, report and convert ringtrace traces"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Record a demo trace (threads, a signal handler writing nested events,
    /// binary printk with strings, typed events); show the merged trace's
    /// first and last lines, its lost-event lines and every context's
    /// stats, or export it with --output.
    Demo {
        /// Output file (the format comes from its extension or --format);
        /// without it the trace and the stats are printed.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Output format (overrides the extension).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Worker threads.
        #[arg(long, default_value_t = 4)]
        threads: u32,
        /// Loop iterations per worker (each records several events).
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// Print the events of a trace.dat file as the live reader prints them.
    #[command(after_help = files::REPORT_HELP)]
    Report(files::ReportArgs),
    /// Summarise a trace.dat file: header, sections, CPUs, event counts,
    /// lost events, clock, page size, version.
    Dump(files::InputArg),
    /// Convert a trace.dat file to Chrome JSON or to another trace.dat
    /// version (`--format dat` for v6, `dat7` for v7).
    Convert(files::ConvertArgs),
    /// Write a trace.dat file as one self-contained HTML page: a timeline
    /// (lanes per CPU and thread, spans, events, losses) with zoom, pan,
    /// detail, search and a summary; it loads nothing from the network.
    #[command(after_help = "Example:
  ringtrace html trace.dat -o trace.html")]
    Html(html_cmd::HtmlArgs),
    /// Run a program in a new session (shared-memory rings), read its
    /// events live and write them to a trace.dat or JSON file when it ends.
    #[command(after_help = "Examples:
  ringtrace record -o trace.dat -- ./myprog --its-args
  ringtrace record -b 1024 --mode overwrite --clock tsc -o t.json -- ./myprog
  ringtrace record --flight-recorder 8 -o last.dat -- ./server   (kill -USR1 <ringtrace pid> dumps)
  ringtrace record -- ./myprog          (no -o: the session is kept; read it with pipe/show/extract)
  ringtrace record --shm-dir /mnt/big -o t.dat -- ./myprog   (when /dev/shm is too small)

The program attaches by itself when it uses the ringtrace library: the
RINGTRACE_SESSION environment variable names the session file. Sessions live
in /dev/shm, or in RINGTRACE_SHM_DIR (or --shm-dir) when set; their memory is
reserved up front, so a program never faults on a full /dev/shm. A program
that never attaches gives an empty trace and a warning (not an error).

The output is created before the program starts; what is read goes to disk
next to it as it is read (OUT.meta, OUT.cpuN), and becomes OUT when the
program ends. If record is killed first, `ringtrace recover OUT` writes OUT.

SIGINT, SIGTERM and SIGHUP sent to record are forwarded to the program
(Ctrl-C reaches both already); record then reads what is left and writes
the file. A second one stops waiting for the program. The exit status is
the program's, or 128+N when signal N killed it; 1 (or the program's
failure status) when the trace could not be written, the session then
being kept with the `ringtrace extract` command that saves it.")]
    Record(session_cmds::RecordArgs),
    /// Write the output of a recording that was stopped before it wrote it
    /// (`ringtrace record` killed, or a full disk), from the files spooled
    /// next to it (OUT.meta, OUT.cpuN), and delete them.
    #[command(after_help = "Example:
  ringtrace recover trace.dat
  ringtrace report -i trace.dat")]
    Recover {
        /// The output the recording was writing (-o of `ringtrace record`).
        output: PathBuf,
        /// Output format (overrides the extension).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// List the sessions on this machine: pid, state, size, owner.
    #[command(after_help = "Example:
  ringtrace list")]
    List,
    /// Read a session's events live (consuming), as text with lost-event
    /// lines, until Ctrl-C or until its program ends.
    #[command(
        after_help = "Order: by time stamp across threads; while the program writes, an event of a \
thread that was idle may follow up to 64 later events of other threads.

Examples:
  ringtrace pipe myprog
  ringtrace pipe /dev/shm/ringtrace-4242-myprog | grep worker"
    )]
    Pipe(session_cmds::SessionArg),
    /// Print every event a session holds, merged by time, without consuming
    /// them (reads a private copy).
    #[command(after_help = "Examples:
  ringtrace show myprog
  ringtrace show 4242          (by the pid in the file name)")]
    Show {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// Per-context counters of a session (the kernel's per_cpu stats lines),
    /// its state and its writer processes.
    #[command(after_help = "Example:
  ringtrace stat myprog")]
    Stat {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// Drain a session (consuming) to trace.dat or JSON; after its program
    /// died, the events it committed, with in-flight ones counted as lost.
    #[command(after_help = "Examples:
  ringtrace extract myprog -o crash.dat
  trace-cmd report crash.dat")]
    Extract(session_cmds::SessionOutArg),
    /// Write what a session holds now to trace.dat or JSON without
    /// consuming it.
    #[command(after_help = "Example:
  ringtrace snapshot myprog -o now.json")]
    Snapshot(session_cmds::SessionOutArg),
    /// Show or change which contexts of a session record (the kernel's
    /// `tracing_cpumask`), live: the others' events are refused and
    /// counted as masked.
    #[command(after_help = "Examples:
  ringtrace contexts myprog          (show)
  ringtrace contexts myprog 0,2-3    (only contexts 0, 2 and 3 record)")]
    Contexts {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
        /// The contexts that record, as a CPU list (0,2-3).
        list: Option<String>,
    },
    /// Empty a session's rings.
    #[command(after_help = "Example:
  ringtrace clear myprog")]
    Clear {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// Turn a session's recording on (the kernel's `tracing_on`), in every
    /// writer process.
    #[command(after_help = "Example:
  ringtrace start myprog")]
    Start {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// Turn a session's recording off: what its writers record meanwhile
    /// is not recorded, and not counted as lost (never attempted, as with
    /// the kernel's `tracing_on` at 0).
    #[command(after_help = "Example:
  ringtrace stop myprog")]
    Stop {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// What `trace-cmd reset` does, for a session: its rings emptied (as
    /// `clear`), then recording back on.
    #[command(after_help = "Example:
  ringtrace reset myprog")]
    Reset {
        /// Session: a path, its name, the creator's pid, or the file name.
        session: String,
    },
    /// Delete a session file (refused while its program runs, unless --force).
    #[command(after_help = "Example:
  ringtrace remove myprog")]
    Remove(session_cmds::SessionArg),
    /// Run the kernel's ring-buffer benchmark (`ring_buffer_benchmark.c`):
    /// a producer writes 10-byte events into a 1,000,000-byte overwrite ring
    /// for the given time while a consumer alternately reads events and
    /// whole pages; prints the kernel's lines.
    #[command(after_help = "Example:
  ringtrace bench --seconds 10 --runs 3")]
    Bench {
        /// Producer run time of each run, in seconds (the kernel uses 10).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Runs (each printed).
        #[arg(long, default_value_t = 1)]
        runs: u32,
    },
}

/// Everything the command line reports as an error (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A file could not be opened or written.
    #[error("{what} {path}: {source}")]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing to stdout failed.
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    /// The trace.dat file is bad.
    #[error("{path}: {source}")]
    TraceDat {
        /// The file.
        path: String,
        /// What is wrong and where.
        #[source]
        source: TraceDatError,
    },
    /// The export failed.
    #[error("export: {0}")]
    Export(#[from] ExportError),
    /// The JSON output failed.
    #[error("{path}: {source}")]
    Json {
        /// The input file.
        path: String,
        /// What went wrong.
        #[source]
        source: JsonError,
    },
    /// The demo tracer could not be built or used.
    #[error("demo: {0}")]
    Demo(String),
    /// A session command failed.
    #[error(transparent)]
    Session(#[from] session_cmds::SessionCmdError),
    /// The benchmark could not run.
    #[error("bench: {0}")]
    Bench(#[from] ringtrace::kernel_bench::KernelBenchError),
}

/// Refuses to read the placeholder of an unfinished recording as a trace,
/// naming the command that recovers it.
fn check_finished(input: &Path) -> Result<(), CliError> {
    if ringtrace::export::is_unfinished(input) {
        return Err(CliError::Usage(format!(
            "{} is an unfinished recording (`ringtrace record` was stopped before it wrote \
             the file): write it with `ringtrace recover {}`",
            input.display(),
            input.display()
        )));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.cmd {
        Cmd::Record(a) => Ok(session_cmds::record(a)?),
        Cmd::Recover { output, format } => {
            let format = Format::resolve(&output, format)?;
            let r = ringtrace::export::recover(&output, format.export())?;
            eprintln!(
                "ringtrace: recovered {} events ({} pages, {} lost before them) -> {}{}{}",
                r.events,
                r.pages,
                r.lost_events,
                output.display(),
                if r.bad_pages > 0 || r.partial_bytes > 0 {
                    format!(
                        "; skipped {} damaged page(s) and {} byte(s) of a page cut short",
                        r.bad_pages, r.partial_bytes
                    )
                } else {
                    String::new()
                },
                if r.undecodable > 0 {
                    format!(
                        "; {} record(s) could not be decoded for JSON and were skipped",
                        r.undecodable
                    )
                } else {
                    String::new()
                }
            );
            Ok(0)
        }
        cmd => run_other(cmd).map(|()| 0),
    }
}

fn run_other(cmd: Cmd) -> Result<(), CliError> {
    match cmd {
        Cmd::Record(_) | Cmd::Recover { .. } => Ok(()),
        Cmd::Demo {
            output,
            format,
            threads,
            iterations,
        } => {
            let output = match output {
                Some(path) => {
                    let format = Format::resolve(&path, format)?;
                    Some((path, format))
                }
                None => None,
            };
            demo::run(output, threads, iterations)
        }
        Cmd::Report(a) => {
            let input = a.input.path()?;
            check_finished(&input)?;
            files::report(&input, &a)
        }
        Cmd::Dump(a) => {
            let input = a.path()?;
            check_finished(&input)?;
            files::dump(&input)
        }
        Cmd::Convert(a) => {
            let input = a.input.path()?;
            check_finished(&input)?;
            let format = Format::resolve(&a.output, a.format)?;
            let codec = a.compression.and_then(|c| c.codec());
            match (format, codec) {
                (Format::Json, Some(c)) => Err(CliError::Usage(format!(
                    "--compression {c}: JSON output is not compressed"
                ))),
                (_, None) => files::convert(&input, &a.output, format),
                (_, Some(c)) => {
                    dat_convert::convert_dat(&input, &a.output, TraceDatVersion::V7, Some(c))
                }
            }
        }
        Cmd::Html(a) => html_cmd::run(a),
        Cmd::List => Ok(session_cmds::list()?),
        Cmd::Pipe(a) => Ok(session_cmds::pipe(a)?),
        Cmd::Show { session } => Ok(session_cmds::show(&session)?),
        Cmd::Stat { session } => Ok(session_cmds::stat(&session)?),
        Cmd::Extract(a) => Ok(session_cmds::extract(a)?),
        Cmd::Snapshot(a) => Ok(session_cmds::snapshot(a)?),
        Cmd::Clear { session } => Ok(session_cmds::clear(&session)?),
        Cmd::Contexts { session, list } => contexts_cmd::contexts(&session, list.as_deref()),
        Cmd::Remove(a) => Ok(session_cmds::remove(a)?),
        Cmd::Start { session } => Ok(session_cmds::set_recording(&session, true)?),
        Cmd::Stop { session } => Ok(session_cmds::set_recording(&session, false)?),
        Cmd::Reset { session } => Ok(session_cmds::reset(&session)?),
        Cmd::Bench { seconds, runs } => {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
                return Err(CliError::Usage(format!(
                    "--seconds {seconds}: give a time from above 0 to 3600"
                )));
            }
            let time = std::time::Duration::from_secs_f64(seconds);
            let mut out = std::io::stdout().lock();
            for run in 1..=runs {
                let report = ringtrace::kernel_bench::run(time)?;
                if runs > 1 {
                    writeln!(out, "--- run {run} of {runs}").map_err(CliError::Output)?;
                }
                writeln!(out, "{report}").map_err(CliError::Output)?;
                if !report.ok() {
                    return Err(CliError::Usage(
                        "the benchmark's counts do not add up (see ERROR above)".into(),
                    ));
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // Every error's text includes its cause.
            eprintln!("ringtrace: error: {e}");
            ExitCode::FAILURE
        }
    }
}
