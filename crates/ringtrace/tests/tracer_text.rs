//! The text output against hand-written expected lines (the kernel's
//! `trace` header and `trace_pipe` line format), with the deterministic
//! `counter` clock. One test in this binary, so nothing else advances the
//! process-wide counter.

mod common;

use ringtrace::clock::Clock;
use ringtrace::text::Style;
use ringtrace_ring::Mode;

ringtrace::declare_event! {
    /// A typed event with a string.
    pub struct Sample<'a>: "demo" / "sample" = 3001 { cpu: u32, value: u64, label: &'a str }
}

const HEADER: &str = concat!(
    "# tracer: nop\n",
    "#\n",
    "# entries-in-buffer/entries-written: 6/6   #P:2\n",
    "#\n",
    "#                                _-----=> irqs-off/BH-disabled\n",
    "#                               / _----=> need-resched\n",
    "#                              | / _---=> hardirq/softirq\n",
    "#                              || / _--=> preempt-depth\n",
    "#                              ||| / _-=> migrate-disable\n",
    "#                              |||| /     delay\n",
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n",
    "#              | |         |   |||||     |         |\n",
);

// TID_A / TID_B stand for the thread ids, padded to 7 columns; LINE_n for
// the source lines of the calls.
const EXPECTED: &str = concat!(
    "          golden-TID_A   [000] .....            1: crates/ringtrace/tests/tracer_text.rs:LINE_1: a=1 b=2\n",
    "          golden-TID_A   [000] .....            2: tracing_mark_write: hello world\n",
    "          golden-TID_A   [000] .....            3: sample: cpu=1 value=7 label=x y\n",
    "          golden-TID_A   [000] ..h1.            4: crates/ringtrace/tests/tracer_text.rs:LINE_2: in handler -3\n",
    "          golden-TID_A   [000] ..Z2.            5: tracing_mark_write: deep\n",
    "a-much-longer-thread-name-TID_B   [001] .....            6: crates/ringtrace/tests/tracer_text.rs:LINE_3: second thread\n",
);

// Overwrite mode, two 4 KiB pages: the first 127 events are lost.
const EXPECTED_LOST_HEAD: &str = concat!(
    "CPU:0 [LOST 127 EVENTS]\n",
    "a-much-longer-thread-name-TID_B   [000] .....          134: crates/ringtrace/tests/tracer_text.rs:LINE_4: overwritten 127\n",
    "a-much-longer-thread-name-TID_B   [000] .....          135: crates/ringtrace/tests/tracer_text.rs:LINE_4: overwritten 128\n",
);
const EXPECTED_LOST_TAIL: &str =
    "a-much-longer-thread-name-TID_B   [000] .....          406: crates/ringtrace/tests/tracer_text.rs:LINE_4: overwritten 399\n";

#[test]
fn pipe_text_matches_kernel_format() {
    let t = common::tracer(2, 256 * 1024, Mode::Overwrite, Some(Clock::counter()));
    let t2 = common::tracer(1, 8192, Mode::Overwrite, Some(Clock::counter()));
    let mut lines = [0u32; 4];
    let (tid_a, tid_b) = std::thread::scope(|s| {
        let a = std::thread::Builder::new()
            .name("golden".into())
            .spawn_scoped(s, || {
                let l1 = line!();
                ringtrace::trace!(tracer: &t, "a=%llu b=%llu\n", 1u64, 2u64);
                t.marker("hello world");
                ringtrace::trace_event!(
                    &t,
                    Sample {
                        cpu: 1,
                        value: 7,
                        label: "x y"
                    }
                );
                let l2;
                {
                    let _h = ringtrace::signal_scope();
                    l2 = line!();
                    ringtrace::trace!(tracer: &t, "in handler %d", -3);
                    let _h2 = ringtrace::signal_scope();
                    t.marker("deep");
                }
                (ringtrace::context::current_tid(), l1 + 1, l2 + 1)
            })
            .unwrap()
            .join()
            .unwrap();
        let b = std::thread::Builder::new()
            .name("a-much-longer-thread-name".into())
            .spawn_scoped(s, || {
                let l3 = line!();
                ringtrace::trace!(tracer: &t, "second thread");
                let l4 = line!();
                for i in 0..400u32 {
                    ringtrace::trace!(tracer: &t2, "overwritten %u", i);
                }
                (ringtrace::context::current_tid(), l3 + 1, l4 + 2)
            })
            .unwrap()
            .join()
            .unwrap();
        lines = [a.1, a.2, b.1, b.2];
        (a.0, b.0)
    });
    let fill = |s: &str| {
        s.replace("TID_A  ", &format!("{tid_a:<7}"))
            .replace("TID_B  ", &format!("{tid_b:<7}"))
            .replace("LINE_1", &lines[0].to_string())
            .replace("LINE_2", &lines[1].to_string())
            .replace("LINE_3", &lines[2].to_string())
            .replace("LINE_4", &lines[3].to_string())
    };

    assert_eq!(t.header_text(Style::default()), HEADER);
    let got = t.pipe().read_to_string().unwrap();
    let want = fill(EXPECTED);
    for (g, w) in got.lines().zip(want.lines()) {
        assert_eq!(g, w);
    }
    assert_eq!(got, want);
    // After reading, the kernel's header counts only unread + overwritten.
    assert!(t
        .header_text(Style::default())
        .contains("entries-written: 0/0 "));

    let got2 = t2.pipe().read_to_string().unwrap();
    assert!(got2.starts_with(&fill(EXPECTED_LOST_HEAD)), "{got2}");
    assert!(got2.ends_with(&fill(EXPECTED_LOST_TAIL)), "{got2}");
    assert_eq!(got2.lines().count(), 1 + (400 - 127));
    assert_eq!(t2.ring_stats(0).unwrap().overrun, 127);

    // Stats text in the kernel's format (raw clock: time stamps as counts).
    let stats = t2.stats_text(0).unwrap();
    let mut it = stats.lines();
    assert_eq!(it.next(), Some("entries: 0"));
    assert_eq!(it.next(), Some("overrun: 127"));
    assert_eq!(it.next(), Some("commit overrun: 0"));
    assert_eq!(it.next(), Some("bytes: 0"));
    assert_eq!(it.next(), Some("oldest event ts: 0"));
    assert!(it.next().unwrap().starts_with("now ts: "));
    assert_eq!(it.next(), Some("dropped events: 0"));
    assert_eq!(it.next(), Some("read events: 273"));
}
