//! Issue 25's stack-walk cost: a 16-frame walk by frame pointers, as the
//! record path does for stack traces on events (`TracerConfig::stacktrace`),
//! against the standard library's unwinder capturing the same thread's
//! stack (`Backtrace::force_capture`, DWARF unwinding, names resolved
//! lazily, so not counted), the peer a user would pick instead.
//!
//! The walk runs over a chain of 16 frame records laid out on this
//! thread's stack (`ringtrace::stack::walk_from`, the walk itself): the
//! bench crate is built without frame pointers, so its own frames hold no
//! chain to follow. Every step is the real one: the range checks against
//! the thread's stack bounds, the two loads, the monotonic check.
//! Target: at most 60 ns.
//!
//! Run: `cargo bench -p ringtrace-bench --bench stack` (add `-- --quick`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ringtrace::stack::{init_thread, thread_bounds, walk_from};

/// Frames in the chain walked.
const FRAMES: usize = 16;

fn stack_walk(c: &mut Criterion) {
    assert!(init_thread(), "no stack bounds for the bench thread");
    let bounds = thread_bounds();
    // 16 frame records (saved frame pointer, return address) and a
    // terminating null record, on this thread's stack.
    let mut chain = [0usize; 2 * FRAMES + 2];
    let base = chain.as_ptr() as usize;
    for i in 0..FRAMES {
        chain[2 * i] = base + 2 * (i + 1) * std::mem::size_of::<usize>();
        chain[2 * i + 1] = 0x40_0000 + 16 * i;
    }
    // The chain is read through raw addresses: keep its stores.
    black_box(&mut chain);
    let fp = chain.as_ptr() as usize;
    let sp = &bounds as *const _ as usize;
    let mut out = [0u64; FRAMES];
    assert_eq!(walk_from(fp, sp, &bounds, 0, &mut out), FRAMES);

    let mut g = c.benchmark_group("stack_walk_16_frames__ringtrace_vs_std_backtrace");
    g.bench_function("ringtrace_frame_pointers", |b| {
        b.iter(|| {
            walk_from(
                black_box(fp),
                sp,
                black_box(&bounds),
                0,
                black_box(&mut out),
            )
        })
    });
    g.bench_function("std_backtrace_force_capture", |b| {
        b.iter(|| black_box(std::backtrace::Backtrace::force_capture()))
    });
    g.finish();
    black_box(&chain);
}

criterion_group!(benches, stack_walk);
criterion_main!(benches);
