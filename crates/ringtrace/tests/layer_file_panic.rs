//! The in-process guard writes its trace at the first panic, once: the
//! file is complete before the guard drops, recording stops after it, and
//! the drop does not write it again. (Its own test binary: the panic hook
//! is process-wide.)

use tracing_subscriber::prelude::*;

#[test]
fn a_panic_writes_the_trace_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panic.dat");
    let (layer, guard) = ringtrace::layer::file(&path).expect("file layer");
    let sub = tracing_subscriber::registry().with(layer);
    let caught = tracing::subscriber::with_default(sub, || {
        let r = std::panic::catch_unwind(|| {
            tracing::info!(n = 1u64, "before the panic");
            panic!("boom");
        });
        tracing::info!(n = 2u64, "after the panic");
        r
    });
    assert!(caught.is_err());
    // Written by the hook, before the guard dropped.
    let at_panic = std::fs::read(&path).unwrap();
    let mut r = ringtrace::tracedat::TraceDatReader::new(std::io::Cursor::new(&at_panic[..]))
        .expect("a whole trace.dat");
    let formats: Vec<String> = r.info().events.iter().map(|f| f.name.clone()).collect();
    assert!(
        formats.iter().any(|n| n == "before_the_panic"),
        "{formats:?}"
    );
    assert!(
        !formats.iter().any(|n| n == "after_the_panic"),
        "{formats:?}"
    );
    assert_eq!(r.records().count(), 1);
    drop(guard);
    assert_eq!(std::fs::read(&path).unwrap(), at_panic, "written once");
}
