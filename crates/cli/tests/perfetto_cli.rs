//! `--format perfetto` and the `.perfetto-trace` / `.pftrace` extensions
//! end to end: the demo's trace converted to Perfetto protobuf is at most
//! half the trace.dat's size (and smaller than the JSON), decodes with
//! Perfetto's own message types, and holds one track event per trace.dat
//! event with a track per demo thread.

mod common;

use std::collections::HashSet;
use std::io::Read as _;
use std::path::Path;

use perfetto_protos::trace::Trace;
use perfetto_protos::trace_packet::TracePacket;
use protobuf::Message as _;

/// `ringtrace ARGS`, which must succeed: its stdout.
fn ok(args: &[&str]) -> String {
    String::from_utf8(common::ok(args).stdout).expect("utf-8")
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Track events and thread names of a Perfetto file (compressed batches
/// inflated).
fn decode(p: &Path) -> (u64, HashSet<String>) {
    fn walk(packets: &[TracePacket], events: &mut u64, threads: &mut HashSet<String>) {
        for p in packets {
            if p.has_compressed_packets() {
                let mut raw = Vec::new();
                flate2::read::ZlibDecoder::new(p.compressed_packets())
                    .read_to_end(&mut raw)
                    .unwrap();
                walk(
                    &Trace::parse_from_bytes(&raw).unwrap().packet,
                    events,
                    threads,
                );
            }
            if p.has_track_event() && p.track_event().has_name_iid() {
                *events += 1;
            }
            if let Some(t) = p.track_descriptor().thread.as_ref() {
                threads.insert(t.thread_name().to_string());
            }
        }
    }
    let bytes = std::fs::read(p).unwrap();
    let trace = Trace::parse_from_bytes(&bytes).expect("a perfetto.protos.Trace");
    let (mut events, mut threads) = (0, HashSet::new());
    walk(&trace.packet, &mut events, &mut threads);
    (events, threads)
}

/// Events and losses of a trace.dat, from `ringtrace dump`'s total line.
fn dat_counts(dat: &Path) -> (u64, u64) {
    let out = ok(&["dump", "-i", dat.to_str().unwrap()]);
    let total = out
        .lines()
        .find(|l| l.starts_with("total: events "))
        .unwrap();
    let f: Vec<&str> = total.split_whitespace().collect();
    (f[2].parse().unwrap(), f[4].parse().unwrap())
}

#[test]
fn demo_as_perfetto_is_at_most_half_the_trace_dat_and_keeps_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("t.dat");
    ok(&["demo", "-o", dat.to_str().unwrap()]);
    let pf = dir.path().join("t.pftrace");
    let json = dir.path().join("t.json");
    ok(&[
        "convert",
        "-i",
        dat.to_str().unwrap(),
        "-o",
        pf.to_str().unwrap(),
    ]);
    ok(&[
        "convert",
        "-i",
        dat.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    let (d, p, j) = (size(&dat), size(&pf), size(&json));
    assert!(
        2 * p <= d,
        "perfetto {p} bytes, trace.dat {d}: more than half"
    );
    assert!(p < j, "perfetto {p} bytes, JSON {j}");
    let (events, lost) = dat_counts(&dat);
    assert_eq!(lost, 0, "the demo's default run loses nothing");
    let (got, threads) = decode(&pf);
    assert_eq!(got, events, "one track event per trace.dat event");
    let want: HashSet<String> = (0..4).map(|w| format!("demo-w{w}")).collect();
    assert_eq!(threads, want);
}

#[test]
fn perfetto_by_extension_and_by_format() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("a.perfetto-trace", &[][..]),
        ("b.pftrace", &[][..]),
        ("c.trace", &["--format", "perfetto"][..]),
    ] {
        let p = dir.path().join(name);
        let mut args = vec!["demo", "-o", p.to_str().unwrap()];
        args.extend_from_slice(&["--threads", "2", "--iterations", "100"]);
        args.extend_from_slice(extra);
        ok(&args);
        let (events, threads) = decode(&p);
        assert!(events > 400, "{name}: {events} events");
        let want: HashSet<String> = ["demo-w0", "demo-w1"].map(String::from).into();
        assert_eq!(threads, want, "{name}");
    }
}
