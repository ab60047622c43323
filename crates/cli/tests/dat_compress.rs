//! `ringtrace convert --compression` and `ringtrace record --compression`:
//! the compressed trace.dat they write is reported by `ringtrace report`
//! and by the real `trace-cmd report` exactly as the uncompressed one, and
//! `convert` turns it back; JSON with `--compression` is refused.
//! `report`, `dump` and `convert` read big-endian files and files of
//! 32-bit machines as the little-endian 64-bit one.
//!
//! Needs `trace-cmd` (FAILS, never skips, when it is not on PATH). The
//! Debian trace-cmd 3.1.6 has no zlib, so zlib output is checked through
//! ringtrace's reader only.
//!
//! `harness = false`: `main` runs the tests, or the traced program.

mod common;
mod harness;

use std::path::Path;

use common::{ok, record_ok, run, text};

fn prog(args: &[String]) {
    let n: u64 = args.first().map_or(3000, |a| a.parse().unwrap());
    for i in 0..n {
        ringtrace::trace!("compress i=%llu of %llu", i, n);
    }
}

fn report(file: &Path) -> String {
    text(&ok(&["report", "-i", file.to_str().unwrap()]).stdout)
}

fn trace_cmd_report(file: &Path) -> String {
    let out = std::process::Command::new("trace-cmd")
        .args(["report", "-i", file.to_str().unwrap()])
        .output()
        .expect("running trace-cmd (apt-get install -y trace-cmd)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn codec_of(file: &Path) -> Option<ringtrace::tracedat::Compression> {
    ringtrace::tracedat::TraceDatReader::open(file)
        .unwrap()
        .info()
        .compression
}

fn convert_compresses_and_decompresses() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.dat");
    ok(&[
        "demo",
        "-o",
        plain.to_str().unwrap(),
        "--threads",
        "2",
        "--iterations",
        "300",
    ]);
    let want = report(&plain);
    let want_tc = trace_cmd_report(&plain);
    assert!(want.lines().count() > 1000, "{}", want.lines().count());
    for codec in ["zstd", "zlib"] {
        let z = dir.path().join(format!("{codec}.dat"));
        let back = dir.path().join(format!("{codec}-back.dat"));
        ok(&[
            "convert",
            "-i",
            plain.to_str().unwrap(),
            "-o",
            z.to_str().unwrap(),
            "--compression",
            codec,
        ]);
        assert_eq!(codec_of(&z).map(|c| c.to_string()).as_deref(), Some(codec));
        assert!(
            std::fs::metadata(&z).unwrap().len() * 3 < std::fs::metadata(&plain).unwrap().len(),
            "{codec} output is smaller"
        );
        assert_eq!(report(&z), want, "{codec}");
        let dump = text(&ok(&["dump", "-i", z.to_str().unwrap()]).stdout);
        assert!(dump.contains(&format!("compression: {codec}\n")), "{dump}");
        if codec == "zstd" {
            assert_eq!(trace_cmd_report(&z), want_tc);
        }
        ok(&[
            "convert",
            "-i",
            z.to_str().unwrap(),
            "-o",
            back.to_str().unwrap(),
            "--compression",
            "none",
        ]);
        assert_eq!(codec_of(&back), None);
        assert_eq!(trace_cmd_report(&back), want_tc, "{codec} and back");
    }
    let json = dir.path().join("t.json");
    let out = run(&[
        "convert",
        "-i",
        plain.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
        "--compression",
        "zstd",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("JSON output is not compressed"),
        "{}",
        text(&out.stderr)
    );
}

fn record_compresses_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.dat");
    let z = dir.path().join("z.dat");
    record_ok(&["-o", plain.to_str().unwrap()], &["2000"]);
    record_ok(
        &["-o", z.to_str().unwrap(), "--compression", "zstd"],
        &["2000"],
    );
    assert_eq!(codec_of(&z), Some(ringtrace::tracedat::Compression::Zstd));
    assert!(!dir.path().join("z.dat.compressing").exists());
    // Same events (time stamps and pids differ between the two runs).
    let events = |f: &Path| -> Vec<String> {
        trace_cmd_report(f)
            .lines()
            .filter_map(|l| l.split_once(": ").map(|(_, e)| e.trim().to_string()))
            .filter_map(|l| l.split_once("compress").map(|(_, e)| e.to_string()))
            .collect()
    };
    let want = events(&plain);
    assert_eq!(want.len(), 2000);
    assert_eq!(events(&z), want);
}

/// One trace (a `trace!` printk event per CPU, and a lost count) written
/// as a machine of byte order `big` and `long`-byte longs would write it.
fn other_machine_file(big: bool, long: usize) -> Vec<u8> {
    use ringtrace::tracedat::{TraceDatMeta, TraceDatWriter};
    let int = |v: u64, n: usize| {
        let mut b = v.to_le_bytes()[..n].to_vec();
        if big {
            b.reverse();
        }
        b
    };
    let format = "name: tick\nID: 7\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:u64 n;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:int v;\toffset:16;\tsize:4;\tsigned:1;\n\n\
print fmt: \"n=%llu v=%d\", REC->n, REC->v\n";
    let page = |ts: u64, n: u64, lost: Option<u64>| {
        let mut data = Vec::new();
        // type_len 5 (20-byte payload), delta 3: C bit-fields flip with
        // the byte order.
        let word = if big { (5u64 << 27) | 3 } else { 5 | (3 << 5) };
        data.extend(int(word, 4));
        data.extend(int(7, 2));
        data.extend([0, 0]);
        data.extend(int(40 + n, 4));
        data.extend(int(n, 8));
        data.extend(int((-(n as i64) as i32) as u32 as u64, 4));
        let mut commit = data.len() as u64;
        if let Some(c) = lost {
            commit |= 3 << 30;
            data.extend(int(c, long));
        }
        let mut p = int(ts, 8);
        p.extend(int(commit, long));
        p.extend(data);
        p.resize(4096, 0);
        p
    };
    let mut m = TraceDatMeta::new(4096, 2, "mono");
    m.big_endian = big;
    m.long_size = long;
    m.events = vec![("demo".into(), vec![format.into()])];
    m.cmdlines = vec![(40, "forty".into()), (41, "forty-one".into())];
    let mut w = TraceDatWriter::new(std::io::Cursor::new(Vec::new()), &m).unwrap();
    w.write_cpu(0, [page(1_000_000_000, 0, None)]).unwrap();
    w.write_cpu(1, [page(1_000_000_500, 1, Some(9))]).unwrap();
    w.finish().unwrap().into_inner()
}

fn report_dump_and_convert_read_other_machines() {
    let dir = tempfile::tempdir().unwrap();
    let file = |big: bool, long: usize| {
        let p = dir.path().join(format!("{big}-{long}.dat"));
        std::fs::write(&p, other_machine_file(big, long)).unwrap();
        p
    };
    let base = file(false, 8);
    let want = report(&base);
    let want_raw = text(&ok(&["report", "-R", "-i", base.to_str().unwrap()]).stdout);
    assert!(
        want.contains("forty-one-41") && want.contains("[LOST 9 EVENTS]"),
        "{want}"
    );
    assert!(want_raw.contains("n=1 v=-1"), "{want_raw}");
    for (big, long) in [(true, 8), (false, 4), (true, 4)] {
        let f = file(big, long);
        assert_eq!(report(&f), want, "big {big} long {long}");
        let raw = text(&ok(&["report", "-R", "-i", f.to_str().unwrap()]).stdout);
        assert_eq!(raw, want_raw, "big {big} long {long}");
        let dump = text(&ok(&["dump", "-i", f.to_str().unwrap()]).stdout);
        let endian = if big { "big" } else { "little" };
        assert!(
            dump.contains(&format!("endian: {endian}"))
                && dump.contains(&format!("long size: {long}")),
            "{dump}"
        );
        assert!(dump.contains("lost 9"), "{dump}");
        let z = dir.path().join("z.dat");
        ok(&[
            "convert",
            "-i",
            f.to_str().unwrap(),
            "-o",
            z.to_str().unwrap(),
            "--compression",
            "zstd",
        ]);
        assert_eq!(report(&z), want, "big {big} long {long}, converted");
        assert_eq!(
            trace_cmd_report(&z),
            trace_cmd_report(&base),
            "big {big} long {long}"
        );
    }
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "convert_compresses_and_decompresses",
            convert_compresses_and_decompresses,
        ),
        ("record_compresses_its_output", record_compresses_its_output),
        (
            "report_dump_and_convert_read_other_machines",
            report_dump_and_convert_read_other_machines,
        ),
    ];
    harness::main_or_prog(prog, tests);
}
