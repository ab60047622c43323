//! `ringtrace report` on a trace.dat with records it cannot decode goes on
//! as `trace-cmd report` does: it prints every other record, skips those,
//! and says how many it skipped at the end. A damaged page costs only its
//! own records: everything else is printed, then the report fails naming
//! the page.
//!
//! Fails (never skips) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::trace_cmd;
use ringtrace::tracedat::{TraceDatReader, TraceItem};

fn ringtrace(args: &[&str]) -> Output {
    common::run(args)
}

/// Event lines of `trace-cmd report` (the `cpus=` header left out).
fn trace_cmd_lines(file: &Path) -> Vec<String> {
    let out = Command::new(trace_cmd())
        .args(["report", "-i"])
        .arg(file)
        .output()
        .expect("running trace-cmd");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("cpus="))
        .map(str::to_string)
        .collect()
}

/// The demo's trace.dat (one thread, no flight-recorder loss).
fn demo(dir: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join("demo.dat");
    let out = ringtrace(&[
        "demo",
        "--output",
        p.to_str().unwrap(),
        "--threads",
        "1",
        "--iterations",
        "300",
    ]);
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

/// File offsets of the `common_type` of the records of CPU table entry
/// `cpu` (the payload follows the event header, and the length word when
/// the header's type_len is 0).
fn common_type_offsets(file: &Path, bytes: &[u8], cpu: usize) -> Vec<usize> {
    let mut r = TraceDatReader::open(file).unwrap();
    r.cpu_records(cpu)
        .unwrap()
        .filter_map(|i| match i.unwrap() {
            TraceItem::Event(rec) => Some(rec.file_offset as usize),
            TraceItem::Lost { .. } => None,
        })
        .map(|at| {
            if bytes[at] & 0x1f == 0 {
                at + 8
            } else {
                at + 4
            }
        })
        .collect()
}

#[test]
fn report_skips_undecodable_records_counts_them_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (good, mut bytes) = demo(dir.path());
    let all = trace_cmd_lines(&good).len();
    let offsets = common_type_offsets(&good, &bytes, 0);
    assert!(offsets.len() > 10, "{offsets:?}");
    // Three records anywhere but first get an event id the file has no
    // format for.
    let picked = [
        offsets[1],
        offsets[offsets.len() / 2],
        offsets[offsets.len() - 1],
    ];
    for at in picked {
        bytes[at..at + 2].copy_from_slice(&1999u16.to_ne_bytes());
    }
    let bad = dir.path().join("unknown-ids.dat");
    std::fs::write(&bad, &bytes).unwrap();

    let theirs = trace_cmd_lines(&bad);
    assert_eq!(theirs.len(), all, "trace-cmd shows every record");
    let unknown = theirs
        .iter()
        .filter(|l| l.contains("[UNKNOWN EVENT]"))
        .count();
    assert_eq!(unknown, picked.len());

    let out = ringtrace(&["report", "-i", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let ours = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(ours + picked.len(), all, "{stderr}");
    assert!(
        stderr.contains("3 record(s) could not be decoded and were skipped")
            && stderr.contains("no format for event id 1999"),
        "{stderr}"
    );
    // The good file reports every record and no note.
    let out = ringtrace(&["report", "-i", good.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), all);
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// `report --json` and `convert` to JSON skip the same records, say how
/// many (naming the first), and write every other record: the JSON export
/// used to stop at the first record it could not decode.
#[test]
fn json_report_and_convert_skip_undecodable_records_and_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (good, mut bytes) = demo(dir.path());
    let events = |json: &[u8]| -> usize {
        let v: serde_json::Value = serde_json::from_slice(json).expect("the JSON parses");
        v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] != "M")
            .count()
    };
    let out = ringtrace(&["report", "--json", "-i", good.to_str().unwrap()]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let all = events(&out.stdout);
    let offsets = common_type_offsets(&good, &bytes, 0);
    assert!(offsets.len() > 10, "{offsets:?}");
    // Two records in the middle get an event id the file has no format for.
    for at in [offsets[offsets.len() / 3], offsets[2 * offsets.len() / 3]] {
        bytes[at..at + 2].copy_from_slice(&1999u16.to_ne_bytes());
    }
    let bad = dir.path().join("unknown-ids.dat");
    std::fs::write(&bad, &bytes).unwrap();

    let out = ringtrace(&["report", "--json", "-i", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert_eq!(events(&out.stdout) + 2, all, "{stderr}");
    assert!(
        stderr.contains("2 record(s) could not be decoded and were skipped")
            && stderr.contains("1999"),
        "{stderr}"
    );

    let json = dir.path().join("out.json");
    let out = ringtrace(&[
        "convert",
        "-i",
        bad.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert_eq!(events(&std::fs::read(&json).unwrap()) + 2, all, "{stderr}");
    assert!(
        stderr.contains("2 record(s) could not be decoded and were skipped"),
        "{stderr}"
    );
}

#[test]
fn report_prints_all_but_a_damaged_page_then_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (good, mut bytes) = demo(dir.path());
    let full =
        String::from_utf8(ringtrace(&["report", "-i", good.to_str().unwrap()]).stdout).unwrap();
    // The first page's commit made larger than a page.
    let cpu0 = TraceDatReader::open(&good).unwrap().info().cpus[0];
    let first_page = cpu0.offset as usize;
    let page_records = {
        let mut r = TraceDatReader::open(&good).unwrap();
        r.cpu_records(0)
            .unwrap()
            .filter(|i| matches!(i, Ok(TraceItem::Event(rec)) if rec.page == 0))
            .count()
    };
    bytes[first_page + 8..first_page + 16].copy_from_slice(&5000u64.to_le_bytes());
    let bad = dir.path().join("damaged.dat");
    std::fs::write(&bad, &bytes).unwrap();

    let out = ringtrace(&["report", "-i", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("ringtrace: error: "), "{stderr}");
    assert!(
        stderr.contains("CPU 0 page 0") && stderr.contains("1 damaged page(s) skipped"),
        "{stderr}"
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(page_records > 0);
    assert_eq!(
        printed.lines().count() + page_records,
        full.lines().count(),
        "{stderr}"
    );
    // `dump` counts the rest and the damaged page, then fails naming it.
    let out = ringtrace(&["dump", "-i", bad.to_str().unwrap()]);
    let dump_err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{dump_err}");
    assert!(
        dump_err.starts_with("ringtrace: error: ") && dump_err.contains("CPU 0 page 0"),
        "{dump_err}"
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.lines()
            .any(|l| l.starts_with("  cpu 0:") && l.contains(" damaged pages 1 (skipped)")),
        "{dump}"
    );
    // What was printed is the good report less that page, in its order.
    let mut rest = full.lines();
    for line in printed.lines() {
        assert!(rest.any(|l| l == line), "{line:?} out of order or unknown");
    }
}
