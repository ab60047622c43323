//! A small tour of the tracing core: the default tracer, several threads,
//! a SIGALRM timer whose handler also records, the merged pipe and the
//! per-context stats. Run with `cargo run --release --example tracer_demo`.
//! Under `ringtrace record -o t.dat -- tracer_demo` the rings are `record`'s
//! to read: the demo says so, prints its stats, and the events are in
//! `t.dat`.

use std::time::Duration;

use ringtrace::text::Style;
use ringtrace::TracerConfig;

ringtrace::declare_event! {
    /// A unit of work done by a worker.
    pub struct Job: "demo" / "job" = 1500 { worker: u32, id: u64, cost_ns: u64 }
}

extern "C" fn on_alarm(_sig: libc::c_int) {
    let _scope = ringtrace::signal_scope();
    ringtrace::trace!("timer tick on tid %d", ringtrace::context::current_tid());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tracer = ringtrace::init(
        TracerConfig::new()
            .max_contexts(8)
            .bytes_per_context(64 << 10),
    )?;
    tracer.register(Job::EVENT_TYPE)?;
    ringtrace::trace_marker("demo start");

    // SAFETY: the handler only records (async-signal-safe).
    unsafe {
        ringtrace::signal::install(
            libc::SIGALRM,
            ringtrace::signal::Handler::Plain(on_alarm),
            libc::SA_RESTART,
        )?;
    }
    set_timer(2_000);
    run_workers();
    set_timer(0);
    ringtrace::trace_marker("demo end");

    print!("{}", tracer.header_text(Style::default()));
    let lines = read_lines(tracer)?;
    for l in lines.iter().take(8) {
        print!("{l}");
    }
    println!("  ... {} lines in all ...", lines.len());
    for l in lines.iter().filter(|l| l.starts_with("CPU:")) {
        print!("{l}");
    }
    for l in lines.iter().filter(|l| l.contains(" ..h")).take(3) {
        print!("{l}");
    }
    for l in lines.iter().skip(lines.len().saturating_sub(4)) {
        print!("{l}");
    }
    for ring in 0..tracer.used_contexts() {
        println!("\n# context {ring} (tid {:?}):", tracer.context_tid(ring));
        print!("{}", tracer.stats_text(ring)?);
    }
    println!("\n{:?}", tracer.stats());
    Ok(())
}

/// Arms the process's `ITIMER_REAL` to fire SIGALRM every `usec`
/// microseconds, or stops it (0).
fn set_timer(usec: libc::suseconds_t) {
    let tick = libc::timeval {
        tv_sec: 0,
        tv_usec: usec,
    };
    let v = libc::itimerval {
        it_interval: tick,
        it_value: tick,
    };
    // SAFETY: a valid itimerval; the old value is not asked for.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &v, std::ptr::null_mut()) };
}

/// Three workers record a `Job` per unit of work and a `trace!` every
/// 500th, while the timer interrupts them.
fn run_workers() {
    std::thread::scope(|s| {
        for w in 0..3u32 {
            std::thread::Builder::new()
                .name(format!("worker{w}"))
                .spawn_scoped(s, move || {
                    for id in 0..2_000u64 {
                        let start = std::time::Instant::now();
                        std::thread::sleep(Duration::from_micros(20));
                        let cost_ns = start.elapsed().as_nanos() as u64;
                        ringtrace::trace_event!(Job {
                            worker: w,
                            id,
                            cost_ns
                        });
                        if id % 500 == 0 {
                            ringtrace::trace!("worker %u at job %llu", w, id);
                        }
                    }
                })
                .map(|_| ())
                .unwrap_or_else(|e| eprintln!("spawn failed: {e}"));
        }
    });
}

/// The merged trace's lines; none, said once on stderr, when another
/// consuming reader has the rings: under `ringtrace record`, that is
/// `record`, and the events go to its output.
fn read_lines(tracer: &ringtrace::Tracer) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut pipe = tracer.pipe();
    let mut lines = Vec::new();
    loop {
        match pipe.next_line() {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => return Ok(lines),
            Err(e @ ringtrace_ring::ReadError::ReaderHeld { .. }) => {
                eprintln!("tracer_demo: the trace is not printed here: {e}");
                return Ok(lines);
            }
            Err(e) => return Err(e.into()),
        }
    }
}
