//! The HTML export's encoding, without a browser: how spans are paired per
//! thread (an end closes the innermost open span of its id and name; an end
//! with no begin starts at its thread's first record; a begin with no end
//! lasts to the trace's end), what is counted, and that no name or text
//! from the trace can close the page's script elements.

use std::io::Cursor;

use ringtrace::export::html::{tracedat_to_html, HtmlOptions, HtmlStats};
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::span::{SpanBegin, SpanEnd};
use ringtrace::tracedat::{TraceDatReader, TraceDatVersion};

fn page(record: impl FnOnce(&ringtrace::Tracer)) -> (String, HtmlStats) {
    let t = ringtrace::TracerConfig::new()
        .max_contexts(1)
        .build()
        .unwrap();
    ringtrace::span::register();
    record(&t);
    let (dat, _) = export_snapshot(
        &t,
        Cursor::new(Vec::new()),
        ExportFormat::TraceDat(TraceDatVersion::V6),
    )
    .unwrap();
    let mut r = TraceDatReader::new(Cursor::new(dat.into_inner())).unwrap();
    let (out, stats) = tracedat_to_html(&mut r, Vec::new(), &HtmlOptions::default()).unwrap();
    (String::from_utf8(out).unwrap(), stats)
}

#[test]
fn spans_pair_per_thread_and_cut_ends_are_counted() {
    let (_, s) = page(|t| {
        ringtrace::trace_event!(
            t,
            SpanEnd {
                id: 9,
                name: "gone"
            }
        ); // begin not in the trace
        ringtrace::trace_event!(t, SpanBegin { id: 1, name: "a" });
        ringtrace::trace_event!(t, SpanBegin { id: 2, name: "b" });
        ringtrace::trace_event!(t, SpanEnd { id: 1, name: "a" }); // closes a under b
        ringtrace::trace_event!(t, SpanEnd { id: 1, name: "b" }); // wrong id: no b closed
        ringtrace::trace_event!(t, SpanBegin { id: 3, name: "c" }); // never ends
        t.marker("done");
    });
    assert_eq!(s.events, 7);
    assert_eq!(s.threads, 1);
    // gone (no begin), a, b's wrong-id end (no begin), b (no end), c (no end)
    assert_eq!(s.spans, 5);
    assert_eq!(s.spans_without_begin, 2);
    assert_eq!(s.spans_without_end, 2);
    assert_eq!((s.lost_markers, s.lost_events, s.undecodable), (0, 0, 0));
}

#[test]
fn trace_text_cannot_close_a_script_element() {
    let (html, s) = page(|t| {
        ringtrace::trace_event!(
            t,
            SpanBegin {
                id: 1,
                name: "</script><b>x"
            }
        );
        t.marker("</script><script>alert(1)</script>");
        ringtrace::trace_event!(
            t,
            SpanEnd {
                id: 1,
                name: "</script><b>x"
            }
        );
    });
    assert_eq!(s.spans, 1);
    let opened = html.matches("<script").count();
    let closed = html.matches("</script>").count();
    assert_eq!(opened, closed, "every script element closes once");
    // 16 columns, the detail text, the meta, the code.
    assert_eq!(opened, 19);
    assert!(
        html.contains("\\u003c/script>\\u003cb>x"),
        "the span name, escaped in the meta"
    );
}

#[test]
fn empty_trace_gives_a_page() {
    let (html, s) = page(|_| {});
    assert_eq!(s, HtmlStats::default());
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
}
