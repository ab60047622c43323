//! `#[ringtrace::traced]` in process: the live view prints each function
//! record as its graph line, the trace.dat's kallsyms names each traced
//! function at the address its records carry, a panic unwinding through a
//! traced function still records its exit and restores the depth. (The
//! refusal of `async fn` is tested in `ringtrace-macros`.) (The graph checked
//! against the real `trace-cmd report` is `crates/cli/tests/funcgraph.rs`.)

use ringtrace::funcgraph::{func_addr, FUNCGRAPH_ENTRY_EVENT};

#[ringtrace::traced]
fn outer(n: u32) -> u32 {
    if n == 0 {
        return inner();
    }
    outer(n - 1) + 1
}

#[ringtrace::traced]
fn inner() -> u32 {
    // Three `outer` calls and this one entered, none returned.
    assert_eq!(ringtrace::funcgraph::depth(), 4);
    7
}

#[ringtrace::traced(name = "named::explicitly")]
fn renamed() {}

#[ringtrace::traced]
fn panics() {
    panic!("traced function panics on purpose");
}

/// The records of the default tracer (view, not consumed), as text lines
/// (the header's `#` lines left out).
fn lines() -> Vec<String> {
    let t = ringtrace::global().unwrap();
    t.view()
        .read_to_string()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

// One test: the default tracer is the process's, and the order of the
// records is what is checked.
#[test]
fn traced_functions_record_their_graph() {
    assert_eq!(outer(2), 9);
    let l = lines();
    let graph: Vec<&str> = l
        .iter()
        .filter_map(|l| l.split_once(" |  ").map(|(_, g)| g))
        .collect();
    assert_eq!(
        graph,
        [
            "outer() {",
            "  outer() {",
            "    outer() {",
            "      inner() {",
            "      }",
            "    }",
            "  }",
            "}",
        ],
        "{l:#?}"
    );
    assert!(l[0].contains(": funcgraph_entry:"), "{}", l[0]);
    assert!(
        l[4].contains(": funcgraph_exit:") && l[4].contains(" us "),
        "{}",
        l[4]
    );
    assert_eq!(ringtrace::funcgraph::depth(), 0);

    // A panic unwinding through a traced function records its exit.
    let before = lines().len();
    std::panic::set_hook(Box::new(|_| {}));
    assert!(std::panic::catch_unwind(panics).is_err());
    let _ = std::panic::take_hook();
    let after = lines();
    assert_eq!(after.len(), before + 2, "{after:#?}");
    assert!(after[before].ends_with("|  panics() {"));
    assert!(after[before + 1].ends_with("|  }"));
    assert_eq!(ringtrace::funcgraph::depth(), 0);

    // kallsyms names each function at the address of its records.
    renamed();
    let t = ringtrace::global().unwrap();
    let path = std::env::temp_dir().join(format!("ringtrace-fg-{}.dat", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    ringtrace::export::export_snapshot(t, f, Default::default()).unwrap();
    let r = ringtrace::tracedat::TraceDatReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    let info = r.info();
    assert!(info.events.iter().any(|e| e.system == "ftrace"
        && e.name == "funcgraph_entry"
        && u16::try_from(e.id).ok() == Some(FUNCGRAPH_ENTRY_EVENT.id)));
    let names: Vec<&str> = info
        .kallsyms
        .lines()
        .filter(|l| l.starts_with("fffffffff"))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    for want in ["outer", "inner", "panics", "named::explicitly"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let outer_line = info
        .kallsyms
        .lines()
        .find(|l| l.ends_with(" t outer"))
        .unwrap();
    let addr = u64::from_str_radix(outer_line.split(' ').next().unwrap(), 16).unwrap();
    assert_eq!(ringtrace::funcgraph::func_name(addr), Some("outer"));
    assert!((1..4096).any(|id| func_addr(id) == addr));
}
