//! Files at the edges, checked with the real `trace-cmd` (3.1.6): traces
//! with no pages at all, and traces with records no reader can decode
//! among good ones.
//!
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH: install
//! it with `apt-get install -y trace-cmd`.
mod tracedat_common;

use std::path::Path;
use std::process::{Command, Output};

use ringtrace::tracedat::{TraceDatMeta, TraceDatReader, TraceDatVersion, TraceDatWriter};
use tracedat_common::*;

fn trace_cmd_run(args: &[&str], file: &Path) -> Output {
    Command::new(trace_cmd())
        .args(args)
        .arg("-i")
        .arg(file)
        .output()
        .expect("running trace-cmd")
}

/// `trace-cmd dump -v` on `file`: its verdict line, or the failure.
fn dump_verdict(file: &Path) -> Result<String, String> {
    let out = trace_cmd_run(&["dump", "-v"], file);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{}: {text}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn write_pages(meta: &TraceDatMeta, pages: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut w = TraceDatWriter::new(std::io::Cursor::new(Vec::new()), meta).unwrap();
    for (cpu, p) in pages.iter().enumerate() {
        w.write_cpu(cpu as u32, p).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// An empty trace (no page on any CPU, also no CPU at all) and a full one,
/// in v6 and v7: `trace-cmd dump -v` calls each valid, and both readers
/// read them. (An empty v6 once ended right after the trace clock,
/// without the padding to the data's alignment that trace-cmd expects.)
#[test]
fn empty_and_full_traces_pass_trace_cmd_dump() {
    let dir = tempfile::tempdir().unwrap();
    for version in [TraceDatVersion::V6, TraceDatVersion::V7] {
        for (name, cpus, pages) in [
            ("empty", 4u32, vec![Vec::new(); 4]),
            ("no-cpus", 0, Vec::new()),
            ("full", 4, sample().pages),
        ] {
            let mut m = meta(version);
            m.cpus = cpus;
            m.cpu_stats.truncate(cpus as usize);
            let f = dir.path().join(format!("{name}-{version:?}.dat"));
            std::fs::write(&f, write_pages(&m, &pages)).unwrap();
            let fs = f.to_str().unwrap();
            assert_eq!(
                dump_verdict(&f),
                Ok(format!("File {fs} is a valid trace-cmd file")),
                "{name} {version:?}"
            );
            let out = trace_cmd_run(&["report"], &f);
            assert!(out.status.success(), "{name} {version:?}: {out:?}");
            let lines = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("cpus="))
                .count();
            let mut r = TraceDatReader::open(&f).unwrap();
            let ours = r.records().map(|i| i.unwrap()).count();
            assert_eq!(lines, ours, "{name} {version:?}");
            if name != "full" {
                assert_eq!(ours, 0);
            }
        }
    }
}
