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
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
        let tick = libc::timeval {
            tv_sec: 0,
            tv_usec: 2_000,
        };
        let v = libc::itimerval {
            it_interval: tick,
            it_value: tick,
        };
        libc::setitimer(libc::ITIMER_REAL, &v, std::ptr::null_mut());
    }

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
    // SAFETY: stops the timer.
    unsafe {
        let zero = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let v = libc::itimerval {
            it_interval: zero,
            it_value: zero,
        };
        libc::setitimer(libc::ITIMER_REAL, &v, std::ptr::null_mut());
    }
    ringtrace::trace_marker("demo end");

    print!("{}", tracer.header_text(Style::default()));
    let mut pipe = tracer.pipe();
    let mut lines = Vec::new();
    loop {
        match pipe.next_line() {
            Ok(Some(l)) => lines.push(l),
            Ok(None) => break,
            // Another consuming reader has the rings: under `ringtrace
            // record`, that is `record`, and the events go to its output.
            Err(e @ ringtrace_ring::ReadError::ReaderHeld { .. }) => {
                eprintln!("tracer_demo: the trace is not printed here: {e}");
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    drop(pipe);
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
