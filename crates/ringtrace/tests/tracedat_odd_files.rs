//! Files at the edges, checked with the real `trace-cmd` (3.1.6): traces
//! with no pages at all, and traces with records no reader can decode
//! among good ones.
//!
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH: install
//! it with `apt-get install -y trace-cmd`.
mod tracedat_common;

use std::path::Path;
use std::process::{Command, Output};

use ringtrace::tracedat::{
    FileRenderer, RenderOptions, TraceDatError, TraceDatMeta, TraceDatReader, TraceDatVersion,
    TraceDatWriter, TraceItem,
};
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
            let mut ours = 0;
            for item in r.records() {
                item.unwrap();
                ours += 1;
            }
            assert_eq!(lines, ours, "{name} {version:?}");
            if name != "full" {
                assert_eq!(ours, 0);
            }
        }
    }
}

/// Time stamps (µs after [`T0`], as both reports print them) of the
/// records of [`undecodable_trace`] that no format decodes.
const UNDECODABLE_US: [u64; 3] = [4, 6, 8];

/// Two CPUs of whole pages. CPU 0: good records around three that cannot
/// be decoded: one of an unknown type (at 4 µs), a `demo_fixed` cut short
/// (6 µs: 12 bytes, its fields need 24) and a `demo_msg` whose string lies
/// outside it (8 µs). CPU 1: good records. Returns the pages and the
/// number of good records.
fn undecodable_trace() -> (Vec<Vec<Vec<u8>>>, usize) {
    let mut good = 0;
    let mut p = PageBuilder::new(T0);
    let mut t = T0;
    let mut ev = |p: &mut PageBuilder, payload: &[u8]| {
        t += 1000;
        p.event(t, payload);
    };
    for seq in 0..3 {
        ev(&mut p, &fixed(100, seq, 1, 0));
        good += 1;
    }
    ev(&mut p, &unknown_type(100, 1999));
    ev(&mut p, &fixed(100, 3, 1, 0));
    good += 1;
    ev(&mut p, &fixed(100, 4, 1, 0)[..12]);
    ev(&mut p, &msg(100, 7, "fine"));
    good += 1;
    let mut bad_loc = msg(100, 8, "lost");
    bad_loc[8..12].copy_from_slice(&((5u32 << 16) | 200).to_le_bytes());
    ev(&mut p, &bad_loc);
    ev(&mut p, &fixed(100, 5, 1, 0));
    good += 1;
    let cpu0 = vec![p.finish()];
    let mut p = PageBuilder::new(T0 + 2500);
    for seq in 0..4 {
        p.event(T0 + 2500 + seq * 2000, &fixed(200, 10 + seq, 2, 0));
        good += 1;
    }
    (vec![cpu0, vec![p.finish()]], good)
}

/// A line of either report reduced to what both print alike: CPU, time,
/// event name and the sorted `field=value` pairs (trace-cmd orders them by
/// the print fmt, ringtrace by the format). `None` for trace-cmd's
/// `[UNKNOWN EVENT]` lines, which have none of these.
fn essentials(line: &str) -> Option<(String, String, String, Vec<String>)> {
    let open = line.find('[')?;
    let cpu = line[open..].split(']').next()?.trim_start_matches('[');
    if cpu.parse::<u32>().is_err() {
        return None;
    }
    let mut words = line[open..].split_whitespace().skip(1);
    let mut ts = words.next()?;
    if !ts.ends_with(':') {
        // ringtrace's flags column (`.....`) comes first.
        ts = words.next()?;
    }
    let name = words.next()?;
    let mut fields: Vec<String> = words.map(str::to_string).collect();
    fields.sort();
    Some((cpu.to_string(), ts.to_string(), name.to_string(), fields))
}

/// A file with records no format decodes among good ones reads as
/// `trace-cmd report` reads it: every good record, in the same order, with
/// the same values; the undecodable ones are skipped and counted (trace-cmd
/// prints them as `[UNKNOWN EVENT]` or with made-up values), and nothing
/// after them is lost. (The reader used to stop at the first of them.)
#[test]
fn undecodable_records_are_skipped_counted_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for version in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let (pages, good) = undecodable_trace();
        let mut m = meta(version);
        m.cpus = 2;
        m.cpu_stats.truncate(2);
        let f = dir.path().join(format!("undecodable-{version:?}.dat"));
        std::fs::write(&f, write_pages(&m, &pages)).unwrap();

        // Ours, as `ringtrace report` reads it.
        let mut r = TraceDatReader::open(&f).unwrap();
        let info = r.info().clone();
        let render = FileRenderer::new(&info);
        let (mut ours, mut skipped) = (Vec::new(), Vec::new());
        for item in r.records() {
            let TraceItem::Event(rec) = item.unwrap() else {
                panic!("no loss in this file")
            };
            let mut line = String::new();
            match render.write_line(&mut line, &rec, &RenderOptions::default()) {
                Ok(()) => ours.push(line.trim_end().to_string()),
                Err(e) => {
                    assert!(e.is_skippable(), "{e}");
                    assert!(matches!(&e, TraceDatError::Record { cpu: 0, .. }), "{e:?}");
                    skipped.push((rec.ts - T0) / 1000);
                }
            }
        }
        assert_eq!(ours.len(), good, "{ours:#?}");
        assert_eq!(skipped, UNDECODABLE_US, "{version:?}");

        // trace-cmd's.
        let out = trace_cmd_run(&["report"], &f);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let theirs: Vec<&str> = text.lines().filter(|l| !l.starts_with("cpus=")).collect();
        assert_eq!(
            theirs.len(),
            good + UNDECODABLE_US.len(),
            "trace-cmd shows every record: {text}"
        );
        let undecodable_ts: Vec<String> = UNDECODABLE_US
            .iter()
            .map(|us| format!("5.{us:06}:"))
            .collect();
        let theirs_good: Vec<_> = theirs
            .iter()
            .filter_map(|l| essentials(l))
            .filter(|(_, ts, _, _)| !undecodable_ts.contains(ts))
            .collect();
        let ours_essential: Vec<_> = ours.iter().map(|l| essentials(l).unwrap()).collect();
        assert_eq!(ours_essential, theirs_good, "{version:?}\n{text}");
    }
}

/// A page whose header claims more data than a page holds, and a page
/// whose event runs past its data, cost only their own records: the reader
/// yields one error for each, in its place (after the good records read
/// before the bad event), and goes on with the next page and CPU.
#[test]
fn damaged_pages_are_skipped_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for version in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let mut pages = Vec::new();
        for (i, seq) in [(0u64, 10u64), (1, 11), (2, 13), (3, 14)] {
            let ts = T0 + 10 * (i + 1);
            let mut p = PageBuilder::new(ts);
            p.event(ts, &fixed(200, seq, 2, 0));
            if i == 1 {
                p.event(ts + 5, &fixed(200, 12, 2, 0));
            }
            pages.push(p.finish());
        }
        // Page 1's second event header: type_len 28 (112 bytes), past
        // the page's data.
        let second = 16 + 4 + 24;
        pages[1][second..second + 4].copy_from_slice(&28u32.to_le_bytes());
        let mut p = PageBuilder::new(T0 + 100);
        p.event(T0 + 100, &fixed(300, 20, 3, 0));
        let cpu1 = vec![p.finish()];
        let mut m = meta(version);
        m.cpus = 2;
        m.cpu_stats.truncate(2);
        let mut bytes = write_pages(&m, &[pages, cpu1]);
        let f = dir.path().join(format!("damaged-{version:?}.dat"));
        std::fs::write(&f, &bytes).unwrap();
        // Page 2's commit made larger than a page (the writer checks the
        // pages it is given, so it is damaged in the file).
        let cpu0 = TraceDatReader::open(&f).unwrap().info().cpus[0];
        let at = (cpu0.offset + 2 * PAGE_SIZE as u64) as usize + 8;
        bytes[at..at + 8].copy_from_slice(&(PAGE_SIZE as u64).to_le_bytes());
        std::fs::write(&f, &bytes).unwrap();

        let mut r = TraceDatReader::open(&f).unwrap();
        let mut seen = Vec::new();
        for item in r.cpu_records(0).unwrap() {
            match item {
                Ok(TraceItem::Event(rec)) => seen.push(format!(
                    "seq {}",
                    u64::from_le_bytes(rec.data[8..16].try_into().unwrap())
                )),
                Ok(other) => panic!("{other:?}"),
                Err(TraceDatError::Page { cpu: 0, page, .. }) => seen.push(format!("page {page}")),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(
            seen,
            ["seq 10", "seq 11", "page 1", "page 2", "seq 14"],
            "{version:?}"
        );

        let mut merged = Vec::new();
        for item in r.records() {
            match item {
                Ok(i) => merged.push(format!("cpu {} at {}", i.cpu(), i.ts() - T0)),
                Err(e) => {
                    assert!(e.is_skippable(), "{e}");
                    merged.push("damaged".into());
                }
            }
        }
        assert_eq!(
            merged,
            [
                "cpu 0 at 10",
                "cpu 0 at 20",
                "damaged",
                "damaged",
                "cpu 0 at 40",
                "cpu 1 at 100"
            ],
            "{version:?}"
        );
    }
}

/// A cmdline whose pid is not a number, or a printk line whose address is
/// not hex, is an error naming the section, the file offset of its text and
/// the line, in v6 and v7.
#[test]
fn bad_cmdline_and_printk_lines_are_named() {
    let find = |file: &[u8], s: &str| {
        file.windows(s.len())
            .position(|w| w == s.as_bytes())
            .unwrap_or_else(|| panic!("{s:?} in the file"))
    };
    for version in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let good = write_file(&meta(version), &sample());
        // (text's first line, line patched, patched, section, reason's start)
        for (first, from, to, section, reason) in [
            (
                "100 writer-a\n",
                "200 worker two",
                "2x0 worker two",
                "cmdlines",
                "bad cmdline \"2x0 worker two\"",
            ),
            (
                "0xffff00001000 :",
                "0xffff00001000 :",
                "0xfffg00001000 :",
                "printk formats",
                "bad printk line \"0xfffg00001000 : ",
            ),
        ] {
            let at = find(&good, from);
            let mut bad = good.clone();
            bad[at..at + to.len()].copy_from_slice(to.as_bytes());
            let err = TraceDatReader::new(std::io::Cursor::new(bad))
                .map(|_| ())
                .unwrap_err();
            let TraceDatError::Invalid {
                section: sec,
                offset,
                reason: why,
            } = &err
            else {
                panic!("{version:?} {to:?}: {err}");
            };
            assert_eq!(*sec, section, "{err}");
            assert!(why.starts_with(reason), "{err}");
            assert_eq!(*offset, find(&good, first) as u64, "{err}");
        }
    }
}
