//! ringtrace's benchmark suite: the ring side by side with the crates and
//! tracers a user would pick instead, measured in the same run on the same
//! machine, and the kernel's own `ring_buffer_benchmark.c` re-created.
//!
//! - `benches/write.rs` (criterion): the write cost against rtrb and
//!   `memcpy`.
//! - `benches/export.rs` (criterion): the export throughput (GB/s of
//!   page data into a trace.dat file) against `cp` of the same bytes.
//! - `src/main.rs` (`cargo run -p ringtrace-bench --release`): every table,
//!   written to `docs/benchmarks.md`.
//! - [`kernel_bench::run`]: the kernel's benchmark, for `ringtrace bench`.
//! - [`drain_rate`]: the reader side's targets, `record`'s drain to
//!   tmpfs and `pipe`'s text formatting (`-- --only drain`, `--only pipe`);
//!   `examples/pipe_profile.rs` is a small run of the pipe's work for
//!   callgrind.
//!
//! Figures on a shared 2-core machine are noisy: every table reports the
//! median of several repetitions with min and max, and ratios against
//! ringtrace measured in the same run.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod drain_rate;
pub mod layer_setup;
/// The kernel's benchmark lives in `ringtrace` (the `ringtrace bench`
/// command runs it); re-exported for the report.
pub use ringtrace::kernel_bench;
pub mod lttng;
pub mod machine;
pub mod nesting;
pub mod quiet;
pub mod record;
pub mod report;
pub mod scaling;
pub mod sinks;
pub mod stats;
pub mod throughput;
pub mod write_cost;

/// How long and how often the runner measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Repetitions per figure (at least 7); each figure is their median.
    pub reps: usize,
    /// Timed duration of one single-thread repetition.
    pub rep_time: std::time::Duration,
    /// Duration of one multi-thread repetition.
    pub thread_rep_time: std::time::Duration,
    /// Producer time of one run of the kernel's benchmark.
    pub kernel_time: std::time::Duration,
    /// Repetitions of the kernel's benchmark.
    pub kernel_reps: usize,
}

impl Settings {
    /// The default run (about 2 to 3 minutes).
    pub fn full() -> Settings {
        use std::time::Duration;
        Settings {
            reps: 9,
            rep_time: Duration::from_millis(100),
            thread_rep_time: Duration::from_millis(250),
            kernel_time: Duration::from_secs(1),
            kernel_reps: 7,
        }
    }

    /// `--quick` (about 20 seconds).
    pub fn quick() -> Settings {
        use std::time::Duration;
        Settings {
            reps: 7,
            rep_time: Duration::from_millis(10),
            thread_rep_time: Duration::from_millis(40),
            kernel_time: Duration::from_millis(200),
            kernel_reps: 7,
        }
    }
}

/// A producer/consumer tracer of `contexts` contexts of `bytes` each,
/// recording with `clock`: the shape the drain and pipe figures read (a
/// full ring refuses new events, so nothing stored is overwritten).
pub fn pc_tracer(
    contexts: usize,
    bytes: usize,
    clock: ringtrace::clock::Clock,
) -> ringtrace::Tracer {
    ringtrace::TracerConfig::new()
        .max_contexts(contexts)
        .bytes_per_context(bytes)
        .mode(ringtrace::Mode::ProducerConsumer)
        .clock(clock)
        .build()
        .expect("tracer")
}
