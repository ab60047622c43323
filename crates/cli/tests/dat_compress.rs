//! `ringtrace convert --compression` and `ringtrace record --compression`:
//! the compressed trace.dat they write is reported by `ringtrace report`
//! and by the real `trace-cmd report` exactly as the uncompressed one, and
//! `convert` turns it back; JSON with `--compression` is refused.
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

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "convert_compresses_and_decompresses",
            convert_compresses_and_decompresses,
        ),
        ("record_compresses_its_output", record_compresses_its_output),
    ];
    harness::main_or_prog(prog, tests);
}
