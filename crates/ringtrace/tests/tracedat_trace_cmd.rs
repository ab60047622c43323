//! Checks trace.dat files written by `ringtrace::tracedat` with the real
//! `trace-cmd` (Debian package `trace-cmd`, 3.1.6), and reads files that
//! trace-cmd itself wrote (`trace-cmd convert`) with our reader.
//!
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH: install
//! it with `apt-get install -y trace-cmd`.
mod tracedat_common;

use ringtrace::tracedat::{TraceDatReader, TraceDatVersion, TraceItem, Tsc2Nsec};
use std::path::{Path, PathBuf};
use tracedat_common::*;

fn write_tmp(dir: &Path, name: &str, version: TraceDatVersion) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, write_file(&meta(version), &sample())).unwrap();
    p
}

fn report(file: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["report"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-i", file.to_str().unwrap()]);
    trace_cmd_ok(&args)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// What trace-cmd 3.1.6 prints for the sample, default style (µs, print fmt).
/// - CPU 3 before CPU 1 at 5.000001: 5.0000005 s rounds up but is earlier.
/// - pids 201 and 301 have no cmdline: `<...>`.
/// - `delta=65531`: libtraceevent 1.7.1 does not sign-extend the 16-bit
///   `s16 delta = -5` for `%d`.
/// - lost events: `CPU:3 [7 EVENTS DROPPED]` (count stored) and
///   `CPU:3 [EVENTS DROPPED]` (flag only), before the page's first record.
const DEFAULT_REPORT: &[&str] = &[
    "cpus=4",
    "        writer-a-100   [000]     5.000000: demo_msg:             level=3 msg=hello world",
    "              w3-300   [003]     5.000001: demo_fixed:           seq=1 value=1 delta=0",
    "      worker two-200   [001]     5.000001: demo_fixed:           seq=1 value=11 delta=0",
    "        writer-a-100   [000]     5.000002: demo_fixed:           seq=7 value=4000000000 delta=65531",
    "        writer-a-100   [000]     5.000020: demo_big:             name=bigname seq=99",
    "CPU:3 [7 EVENTS DROPPED]",
    "              w3-300   [003]     5.000900: demo_fixed:           seq=9 value=9 delta=0",
    "CPU:3 [EVENTS DROPPED]",
    "           <...>-301   [003]     5.001900: demo_msg:             level=0 msg=after drops",
    "      worker two-200   [001]     5.750001: demo_msg:             level=-1 msg=after the gap",
    "           <...>-201   [001]     5.750003: demo_fixed:           seq=2 value=22 delta=1",
];

/// `report -t -R`: exact ns stamps (the time extend and the discarded
/// event's delta are applied) and raw fields. The `unsigned char blob[120]`
/// array prints as an empty string in raw mode.
const RAW_NS_REPORT: &[&str] = &[
    "cpus=4",
    "        writer-a-100   [000]     5.000000000: demo_msg:              msg=hello world level=3",
    "              w3-300   [003]     5.000000500: demo_fixed:            seq=1 value=1 delta=0",
    "      worker two-200   [001]     5.000001000: demo_fixed:            seq=1 value=11 delta=0",
    "        writer-a-100   [000]     5.000001500: demo_fixed:            seq=7 value=4000000000 delta=65531",
    "        writer-a-100   [000]     5.000020000: demo_big:              name=bigname seq=99 blob=",
    "CPU:3 [7 EVENTS DROPPED]",
    "              w3-300   [003]     5.000900000: demo_fixed:            seq=9 value=9 delta=0",
    "CPU:3 [EVENTS DROPPED]",
    "           <...>-301   [003]     5.001900000: demo_msg:              msg=after drops level=0",
    "      worker two-200   [001]     5.750001000: demo_msg:              msg=after the gap level=-1",
    "           <...>-201   [001]     5.750003000: demo_fixed:            seq=2 value=22 delta=1",
];

/// `trace-cmd report ARGS` of the sample, written as v6 and as v7, prints
/// `want` for both.
fn report_both_versions(args: &[&str], want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for (v, name) in [
        (TraceDatVersion::V6, "6.dat"),
        (TraceDatVersion::V7, "7.dat"),
    ] {
        let f = write_tmp(dir.path(), name, v);
        assert_eq!(report(&f, args), want, "{v:?}");
    }
}

#[test]
fn report_default_v6_and_v7() {
    report_both_versions(&[], DEFAULT_REPORT);
}

#[test]
fn report_raw_ns_v6_and_v7() {
    report_both_versions(&["-t", "-R"], RAW_NS_REPORT);
}

#[test]
fn report_single_cpu_and_empty_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_tmp(dir.path(), "c.dat", TraceDatVersion::V6);
    let cpu3: Vec<&str> = DEFAULT_REPORT
        .iter()
        .copied()
        .filter(|l| l.contains("[003]") || l.starts_with("CPU:3") || l.starts_with("cpus="))
        .collect();
    assert_eq!(report(&f, &["--cpu", "3"]), cpu3);
    assert_eq!(report(&f, &["--cpu", "2"]), ["cpus=4"]);
}

#[test]
fn metadata_options_and_validity() {
    let dir = tempfile::tempdir().unwrap();
    for (v, name) in [
        (TraceDatVersion::V6, "d6.dat"),
        (TraceDatVersion::V7, "d7.dat"),
    ] {
        let f = write_tmp(dir.path(), name, v);
        let fs = f.to_str().unwrap();
        assert_eq!(
            trace_cmd_ok(&["dump", "-v", "-i", fs]).trim(),
            format!("File {fs} is a valid trace-cmd file")
        );
        trace_cmd_ok(&["report", "--check-events", "-i", fs]);
        let uname = report(&f, &["--uname"]);
        assert!(
            uname
                .iter()
                .any(|l| l == "Linux testhost 6.1.0 #1 SMP x86_64"),
            "{uname:?}"
        );
        let version = report(&f, &["--version"]);
        assert!(
            version.iter().any(|l| l == "ringtrace-test 0.1"),
            "{version:?}"
        );
        let stat = report(&f, &["--stat"]).join("\n");
        for c in 0..4 {
            assert!(
                stat.contains(&format!("CPU: {c}\nentries: {c}\n")),
                "{stat}"
            );
        }
        let summary = trace_cmd_ok(&["dump", "--summary", "-i", fs]);
        assert!(summary.contains("4096\t[Page size, bytes]"), "{summary}");
        if v == TraceDatVersion::V7 {
            assert!(
                summary.contains("[buffer \"\", \"mono\" clock, 4096 page size, 4 cpus"),
                "{summary}"
            );
        }
    }
}

#[test]
fn tsc2nsec_option_scales_stamps_in_v6_and_v7() {
    let dir = tempfile::tempdir().unwrap();
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let mut m = meta(v);
        m.clock = "x86-tsc".into();
        // ns = ts * 3 >> 1; trace-cmd 3.1.6 stores but does not add the offset.
        m.tsc2nsec = Some(Tsc2Nsec {
            mult: 3,
            shift: 1,
            offset: 1000,
        });
        let p = dir.path().join(format!("tsc-{v:?}.dat"));
        std::fs::write(&p, write_file(&m, &sample())).unwrap();
        let lines = report(&p, &["-t"]);
        assert_eq!(
            lines[1],
            "        writer-a-100   [000]     7.500000000: demo_msg:             level=3 msg=hello world",
            "{v:?}"
        );
        assert_eq!(
            lines[2],
            "              w3-300   [003]     7.500000750: demo_fixed:           seq=1 value=1 delta=0",
            "{v:?}"
        );
        // Our reader applies the same conversion.
        let r = TraceDatReader::open(&p).unwrap();
        assert_eq!(r.info().ts_ns(T0 + 500), 7_500_000_750);
    }
}

/// A file whose TSC2NSEC shift is past 63 is corrupt: its stamps stay raw
/// (no overflowing shift, no panic).
#[test]
fn a_corrupt_tsc2nsec_shift_leaves_stamps_raw() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = meta(TraceDatVersion::V6);
    m.clock = "x86-tsc".into();
    m.tsc2nsec = Some(Tsc2Nsec {
        mult: 3,
        shift: 200,
        offset: 0,
    });
    let p = dir.path().join("tsc-corrupt.dat");
    std::fs::write(&p, write_file(&m, &sample())).unwrap();
    let r = TraceDatReader::open(&p).unwrap();
    assert_eq!(r.info().ts_ns(T0 + 500), T0 + 500);
}

#[test]
fn clock_name_decides_stamp_style() {
    // A clock outside trace-cmd's ns list (here `counter`) prints the raw
    // count as `%12u` right after the CPU column (no separating space).
    let dir = tempfile::tempdir().unwrap();
    let mut m = meta(TraceDatVersion::V6);
    m.clock = "counter".into();
    let p = dir.path().join("counter.dat");
    std::fs::write(&p, write_file(&m, &sample())).unwrap();
    let lines = report(&p, &[]);
    assert_eq!(
        lines[1],
        "        writer-a-100   [000]  5000000000: demo_msg:             level=3 msg=hello world"
    );
}

/// Our own render of the merged stream agrees with trace-cmd's line by line
/// on everything before the fields: comm, pid, CPU, µs stamp, event name,
/// and on the lost-events lines exactly.
#[test]
fn our_text_matches_trace_cmd_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_tmp(dir.path(), "e.dat", TraceDatVersion::V6);
    let theirs = report(&f, &[]);
    let mut r = TraceDatReader::open(&f).unwrap();
    let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
    let ours: Vec<String> = items.iter().map(|i| r.info().render(i).unwrap()).collect();
    assert_eq!(ours.len() + 1, theirs.len());
    for (o, t) in ours.iter().zip(&theirs[1..]) {
        if t.starts_with("CPU:") {
            assert_eq!(o, t);
        } else {
            // Up to and including "<event>:".
            let cut = |s: &str| {
                let first = s.find("]").unwrap();
                let second = s[first..].find(": ").unwrap() + first + 2;
                let third = s[second..].find(':').unwrap() + second + 1;
                s[..third].to_string()
            };
            assert_eq!(cut(o), cut(t));
        }
    }
}

/// `trace-cmd convert -i FROM -o TO OPTIONS`.
fn convert(from: &Path, to: &Path, options: &[&str]) {
    let (from, to) = (from.to_str().unwrap(), to.to_str().unwrap());
    trace_cmd_ok(&[&["convert", "-i", from, "-o", to], options].concat());
}

/// Files written by trace-cmd itself: `trace-cmd convert` rewrites our v6
/// file as v7 (and our v7 as v6); our reader must get the same records and
/// metadata from them.
#[test]
fn reader_reads_files_written_by_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let ours6 = write_tmp(dir.path(), "o6.dat", TraceDatVersion::V6);
    let ours7 = write_tmp(dir.path(), "o7.dat", TraceDatVersion::V7);
    let conv7 = dir.path().join("conv7.dat");
    let conv6 = dir.path().join("conv6.dat");
    convert(
        &ours6,
        &conv7,
        &["--file-version", "7", "--compression", "none"],
    );
    convert(&ours7, &conv6, &["--file-version", "6"]);
    assert_eq!(report(&conv7, &[]), DEFAULT_REPORT);
    assert_eq!(report(&conv6, &[]), DEFAULT_REPORT);

    let mut expected = s.records.clone();
    expected.sort_by_key(|e| (e.ts, e.cpu));
    for (path, version) in [(&conv7, 7), (&conv6, 6)] {
        let mut r = TraceDatReader::open(path).unwrap();
        let info = r.info().clone();
        assert_eq!(info.version, version);
        assert_eq!(info.clock.as_deref(), Some("mono"));
        assert_eq!(info.page_size, 4096);
        assert_eq!(info.long_size, 8);
        assert_eq!(info.comm(200), Some("worker two"));
        assert_eq!(
            info.uname.as_deref(),
            Some("Linux testhost 6.1.0 #1 SMP x86_64")
        );
        assert_eq!(info.writer_version.as_deref(), Some("ringtrace-test 0.1"));
        assert_eq!(info.trace_id, Some(0x1234_5678_9abc_def0));
        assert_eq!(info.cpu_stats.len(), 4);
        assert_eq!(
            info.printk,
            vec![(0xffff_0000_1000, "hello %d\\n".to_string())]
        );
        assert_eq!(info.events.len(), 3);
        assert_eq!(
            info.event_by_id(u32::from(ID_BIG)).unwrap().name,
            "demo_big"
        );
        // trace-cmd's v7 BUFFER option lists only CPUs with data.
        let with_data: Vec<u32> = info
            .cpus
            .iter()
            .filter(|c| c.size > 0)
            .map(|c| c.cpu)
            .collect();
        assert_eq!(with_data, [0, 1, 3]);

        let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
        let got = events_of(&items);
        assert_eq!(got, expected, "{path:?}");
        let lost: Vec<(u32, Option<u64>)> = items
            .iter()
            .filter_map(|i| match i {
                TraceItem::Lost { cpu, count, .. } => Some((*cpu, *count)),
                TraceItem::Event(_) => None,
            })
            .collect();
        assert_eq!(lost, [(3, Some(7)), (3, None)]);
    }
}
