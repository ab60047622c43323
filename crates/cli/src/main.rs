//! `ringtrace`: the command line.
//!
//! ```text
//! ringtrace demo --output FILE [--format dat|dat7|json]   record a demo trace and export it
//! ringtrace report -i FILE [--cpu N]... [-R] [-t] [--json] print a trace.dat like the live reader
//! ringtrace dump -i FILE                                   summary: sections, CPUs, counts, losses
//! ringtrace convert -i FILE -o OUT [--format F]            trace.dat -> JSON, v6 <-> v7
//! ```
//!
//! Every failure prints `ringtrace: error: ...` naming what and where
//! (section, file offset, CPU, page) and exits with status 1; nothing panics
//! on bad input.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod demo;
mod files;

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
}

impl Format {
    /// The export format.
    pub fn export(self) -> ExportFormat {
        match self {
            Format::Dat => ExportFormat::TraceDat(TraceDatVersion::V6),
            Format::Dat7 => ExportFormat::TraceDat(TraceDatVersion::V7),
            Format::Json => ExportFormat::Json,
        }
    }

    /// The format named by `path`'s extension (`.dat`, `.json`), else
    /// `given`, else an error.
    pub fn resolve(path: &Path, given: Option<Format>) -> Result<Format, CliError> {
        if let Some(f) = given {
            return Ok(f);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("dat") => Ok(Format::Dat),
            Some("json") => Ok(Format::Json),
            _ => Err(CliError::Usage(format!(
                "cannot tell the format of {}: use a .dat or .json name or --format",
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
    /// binary printk with strings, typed events) and export it.
    Demo {
        /// Output file; the format comes from its extension or --format.
        #[arg(short, long)]
        output: PathBuf,
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
    Report {
        /// Input trace.dat (v6 or v7).
        #[arg(short, long)]
        input: PathBuf,
        /// Only these CPUs (contexts); repeatable.
        #[arg(long = "cpu")]
        cpus: Vec<u32>,
        /// Raw fields: `name=value` of every field, binary printk included.
        #[arg(short = 'R', long)]
        raw: bool,
        /// Time stamps in nanoseconds.
        #[arg(short = 't')]
        ns: bool,
        /// Write Chrome JSON to stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a trace.dat file: header, sections, CPUs, event counts,
    /// lost events, clock, page size, version.
    Dump {
        /// Input trace.dat (v6 or v7).
        #[arg(short, long)]
        input: PathBuf,
    },
    /// Convert a trace.dat file to Chrome JSON or to another trace.dat
    /// version (`--format dat` for v6, `dat7` for v7).
    Convert {
        /// Input trace.dat (v6 or v7).
        #[arg(short, long)]
        input: PathBuf,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Output format (overrides the extension).
        #[arg(long, value_enum)]
        format: Option<Format>,
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
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.cmd {
        Cmd::Demo {
            output,
            format,
            threads,
            iterations,
        } => {
            let format = Format::resolve(&output, format)?;
            demo::run(&output, format, threads, iterations)
        }
        Cmd::Report {
            input,
            cpus,
            raw,
            ns,
            json,
        } => files::report(&input, &cpus, raw, ns, json),
        Cmd::Dump { input } => files::dump(&input),
        Cmd::Convert {
            input,
            output,
            format,
        } => files::convert(&input, &output, Format::resolve(&output, format)?),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // Every error's text includes its cause.
            eprintln!("ringtrace: error: {e}");
            ExitCode::FAILURE
        }
    }
}
