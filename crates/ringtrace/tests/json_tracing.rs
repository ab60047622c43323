//! The JSON of a `tracing` program: what the layer records (levels, call
//! sites, span fields, span lifetimes) reaches the JSON, written by the
//! in-process guard (`ringtrace::layer::file`); and in overwrite mode,
//! where span begins are lost, the JSON has no orphan `E` and counts what
//! it dropped.

use std::collections::{HashMap, HashSet};

use ringtrace::layer::RingtraceLayer;
use ringtrace::ring::Mode;
use serde_json::Value;
use tracing_subscriber::prelude::*;

/// Every event of a Chrome JSON document.
fn events(json: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(json).expect("valid JSON");
    v["traceEvents"].as_array().expect("traceEvents").clone()
}

/// Checks that every `E` ends the innermost open `B` of its thread (by
/// name) and every async `e` the innermost open `b` of its id; returns the
/// `B` / `E` count.
fn assert_well_nested(evs: &[Value]) -> usize {
    let mut threads: HashMap<i64, Vec<String>> = HashMap::new();
    let mut asyncs: HashMap<String, Vec<String>> = HashMap::new();
    let mut slices = 0;
    for e in evs {
        let name = e["name"].as_str().unwrap_or("").to_string();
        let tid = e["tid"].as_i64().unwrap_or(0);
        let id = e["id"].to_string();
        match e["ph"].as_str() {
            Some("B") => threads.entry(tid).or_default().push(name),
            Some("E") => {
                let open = threads.entry(tid).or_default().pop();
                assert_eq!(open.as_deref(), Some(name.as_str()), "orphan E: {e}");
                slices += 1;
            }
            Some("b") => asyncs.entry(id).or_default().push(name),
            Some("e") => {
                let open = asyncs.entry(id).or_default().pop();
                assert_eq!(open.as_deref(), Some(name.as_str()), "orphan e: {e}");
            }
            _ => {}
        }
    }
    slices
}

/// A program with levels, span fields, an async-like span entered three
/// times, and spans closed and made again (ids reused by `tracing`).
fn program() -> u32 {
    let line = line!() + 1;
    tracing::warn!(bytes = 4096u64, ratio = 0.25f64, "disk almost full");
    let conn = tracing::info_span!("conn", peer = "10.0.0.1", port = 6379u64);
    for poll in 0..3u64 {
        let _e = conn.enter();
        tracing::debug!(poll, "polled");
    }
    drop(conn);
    for i in 0..4u64 {
        let s = tracing::trace_span!("short", i);
        let _e = s.enter();
    }
    tracing::info!(name: "explicit_name", n = 1u64);
    line
}

#[test]
fn layer_file_json_keeps_levels_call_sites_span_fields_and_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    let (layer, guard) = ringtrace::layer::file(&path).expect("file layer");
    let sub = tracing_subscriber::registry().with(layer);
    let line = tracing::subscriber::with_default(sub, program);
    drop(guard);
    let evs = events(&std::fs::read(&path).unwrap());
    assert_eq!(assert_well_nested(&evs), 3 + 4, "every entry a B/E slice");
    // The real pid, named after the program.
    let pid = std::process::id();
    let process = evs
        .iter()
        .find(|e| e["name"] == "process_name")
        .expect("process_name");
    assert_eq!(process["pid"], pid);
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_str().unwrap();
    assert_eq!(process["args"]["name"], exe);
    assert!(
        evs.iter().all(|e| e["pid"] == pid),
        "every event in the process"
    );

    // The event's name is the message's first words; level, target,
    // module, file and line are args; the f64 field is a number.
    let warn = evs
        .iter()
        .find(|e| e["name"] == "disk_almost_full")
        .expect("event named by its message's first words");
    let args = &warn["args"];
    assert_eq!(args["level"], "WARN");
    assert_eq!(args["target"], module_path!());
    assert_eq!(args["module_path"], module_path!());
    assert_eq!(args["file"], file!());
    assert_eq!(args["line"], line);
    assert_eq!(args["ratio"], 0.25);
    assert_eq!(args["bytes"], 4096);
    assert_eq!(args["message"], "disk almost full");
    let named = evs.iter().find(|e| e["name"] == "explicit_name").unwrap();
    assert_eq!(named["args"]["level"], "INFO");
    let polled: Vec<&Value> = evs.iter().filter(|e| e["name"] == "polled").collect();
    assert_eq!(polled.len(), 3);
    assert_eq!(polled[2]["args"]["level"], "DEBUG");
    assert_eq!(polled[2]["args"]["poll"], 2);

    // The span's fields are on its B slices; its lifetime is one async
    // slice, with its three entries nested inside it.
    let begins: Vec<&Value> = evs
        .iter()
        .filter(|e| e["ph"] == "B" && e["name"] == "conn")
        .collect();
    assert_eq!(begins.len(), 3);
    for b in &begins {
        assert_eq!(b["args"]["peer"], "10.0.0.1");
        assert_eq!(b["args"]["port"], 6379);
    }
    let conn_id = &begins[0]["args"]["id"];
    let life: Vec<&str> = evs
        .iter()
        .filter(|e| e["id"] == *conn_id && (e["ph"] == "b" || e["ph"] == "e"))
        .map(|e| e["ph"].as_str().unwrap())
        .collect();
    assert_eq!(life, ["b", "b", "e", "b", "e", "b", "e", "e"]);
    let created = evs
        .iter()
        .find(|e| e["ph"] == "b" && e["id"] == *conn_id)
        .unwrap();
    assert_eq!(created["args"]["level"], "INFO");
    assert_eq!(created["args"]["peer"], "10.0.0.1");

    // Every lifetime has its own id, also where `tracing` reused one; ids
    // a JSON number cannot hold exactly are strings.
    let lifetimes: Vec<&Value> = evs
        .iter()
        .filter(|e| e["ph"] == "b" && e["args"].get("level").is_some())
        .map(|e| &e["id"])
        .collect();
    assert_eq!(lifetimes.len(), 1 + 4);
    let unique: HashSet<String> = lifetimes.iter().map(|v| v.to_string()).collect();
    assert_eq!(unique.len(), lifetimes.len(), "{lifetimes:?}");
    for id in lifetimes {
        if let Some(n) = id.as_u64() {
            assert!(n <= 1 << 53, "{n} must be a string");
        }
    }
}

/// Threads placed in their processes (`JsonOptions::processes`) get their
/// own process track, named; the others stay in `pid`.
#[test]
fn threads_of_other_processes_get_their_own_process() {
    let t = ringtrace::TracerConfig::new()
        .max_contexts(2)
        .build()
        .unwrap();
    t.marker("parent");
    let child_tid = std::thread::scope(|s| {
        s.spawn(|| {
            t.marker("child");
            ringtrace::context::current_tid()
        })
        .join()
        .unwrap()
    });
    let mut drain = t.drain();
    let mut opts = ringtrace::json::JsonOptions::default();
    opts.processes
        .insert(child_tid, (4242, "forked".to_string()));
    drain.json_options(opts);
    let (json, _) = drain.finish_json_counted(Vec::new()).unwrap();
    let evs = events(&json);
    let pid_of = |text: &str| {
        evs.iter()
            .find(|e| e["args"]["message"] == text)
            .map(|e| e["pid"].clone())
    };
    assert_eq!(pid_of("child"), Some(4242.into()));
    assert_eq!(pid_of("parent"), Some(1.into()));
    let names: Vec<(&Value, &Value)> = evs
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| (&e["pid"], &e["args"]["name"]))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&(&4242.into(), &"forked".into())),
        "{names:?}"
    );
}

#[test]
fn unknown_extensions_are_refused_by_name() {
    let err = ringtrace::layer::file("trace.txt").unwrap_err().to_string();
    assert!(
        err.contains("trace.txt: unknown trace file extension \"txt\""),
        "{err}"
    );
    assert!(!std::path::Path::new("trace.txt").exists());
}

#[test]
fn overwritten_span_begins_leave_no_orphan_end() {
    let t: &'static ringtrace::Tracer = Box::leak(Box::new(
        ringtrace::TracerConfig::new()
            .max_contexts(1)
            .page_size(4096)
            .bytes_per_context(4 * 4096)
            .mode(Mode::Overwrite)
            .build()
            .unwrap(),
    ));
    let sub = tracing_subscriber::registry().with(RingtraceLayer::new(t));
    tracing::subscriber::with_default(sub, || {
        let outer = tracing::info_span!("outer", k = 1u64);
        let _o = outer.enter();
        // Enough to overwrite the ring several times: outer's creation and
        // begin are gone.
        for i in 0..5000u64 {
            tracing::info!(i, "filler");
        }
        let inner = tracing::info_span!("inner");
        let _i = inner.enter();
        tracing::info!("inside");
    });
    let (json, stats) = t
        .drain()
        .finish_json_counted(Vec::new())
        .expect("json export");
    let evs = events(&json);
    assert_well_nested(&evs);
    // inner: kept whole; outer: its end and its close dropped, counted.
    let names: Vec<(&str, &str)> = evs
        .iter()
        .filter(|e| ["B", "E", "b", "e"].contains(&e["ph"].as_str().unwrap_or("")))
        .map(|e| (e["ph"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("b", "inner"),
            ("B", "inner"),
            ("b", "inner"),
            ("e", "inner"),
            ("E", "inner"),
            ("e", "inner")
        ]
    );
    assert_eq!(
        (stats.orphan_ends, stats.orphan_closes),
        (1, 1),
        "{stats:?}"
    );
    let note = stats.skipped_note().expect("a note");
    assert!(
        note.contains("1 span end(s) and 1 span close(s) were dropped"),
        "{note}"
    );
}
