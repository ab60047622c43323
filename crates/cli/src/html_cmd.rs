//! `ringtrace html [FILE] -o OUT.html`: a trace.dat as one self-contained
//! HTML page (timeline, detail, search, summary), written by
//! [`ringtrace::export::html`].

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ringtrace::export::html::{tracedat_to_html, HtmlError, HtmlOptions};
use ringtrace::tracedat::TraceDatReader;

use crate::CliError;

/// Arguments of `ringtrace html`.
#[derive(Debug, clap::Args)]
pub struct HtmlArgs {
    /// Input trace.dat (v6 or v7).
    #[arg(default_value = "trace.dat")]
    pub input: PathBuf,
    /// Output page (default: the input's name with `.html`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Writes the page; prints a one-line summary on stderr.
pub fn run(a: HtmlArgs) -> Result<(), CliError> {
    crate::check_finished(&a.input)?;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| a.input.with_extension("html"));
    if output == a.input {
        return Err(CliError::Usage(format!(
            "the output {} would overwrite the input: give another -o",
            output.display()
        )));
    }
    let input_name = a.input.display().to_string();
    let f = File::open(&a.input).map_err(|source| CliError::File {
        what: "opening",
        path: input_name.clone(),
        source,
    })?;
    let mut r = TraceDatReader::new(BufReader::new(f)).map_err(|source| CliError::TraceDat {
        path: input_name.clone(),
        source,
    })?;
    let out = File::create(&output).map_err(|source| CliError::File {
        what: "creating",
        path: output.display().to_string(),
        source,
    })?;
    let opts = HtmlOptions {
        title: title(&a.input),
    };
    let written = |source| CliError::File {
        what: "writing",
        path: output.display().to_string(),
        source,
    };
    let (out, stats) = tracedat_to_html(&mut r, out, &opts).map_err(|e| match e {
        HtmlError::TraceDat(source) => CliError::TraceDat {
            path: input_name.clone(),
            source,
        },
        HtmlError::Io(source) => written(source),
        other => CliError::Usage(other.to_string()),
    })?;
    out.sync_all().map_err(written)?;
    if let Some(note) = stats.skipped_note() {
        eprintln!("ringtrace: html {input_name}: {note}");
    }
    eprintln!(
        "ringtrace html: {} events, {} threads, {} CPUs, {} spans, {} lost-event markers ({} events lost) -> {}",
        stats.events,
        stats.threads,
        stats.cpus,
        stats.spans,
        stats.lost_markers,
        stats.lost_events,
        output.display()
    );
    Ok(())
}

fn title(input: &Path) -> String {
    input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
