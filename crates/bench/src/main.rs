//! The benchmark runner: measures every table and writes
//! `docs/benchmarks.md` at the workspace root.
//!
//! `cargo run -p ringtrace-bench --release` (about 2 to 3 minutes), or
//! `-- --quick` (about 20 seconds), or `-- --kernel-time MS` to change the
//! producer time of the kernel's benchmark (1000 ms by default), or
//! `-- --stdout` to print the report instead of writing the file.

use ringtrace_bench::lttng::Lttng;
use ringtrace_bench::machine::Machine;
use ringtrace_bench::report::Results;
use ringtrace_bench::{
    drain_rate, kernel_bench, nesting, scaling, throughput, write_cost, Settings,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let mut settings = Settings::full();
    let mut quick = false;
    let mut to_stdout = false;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => {
                settings = Settings {
                    kernel_time: Settings::quick().kernel_time.min(settings.kernel_time),
                    ..Settings::quick()
                };
                quick = true;
            }
            "--kernel-time" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--kernel-time needs milliseconds"));
                settings.kernel_time = Duration::from_millis(ms);
            }
            "--only" => only = args.next(),
            "--stdout" => to_stdout = true,
            "--bench" => {} // cargo bench passes it to every target.
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let wants = |name: &str| only.as_deref().map_or(true, |o| o == name);
    let started = Instant::now();
    let machine = Machine::read();
    eprintln!(
        "ringtrace-bench: {} on {} ({} CPUs)",
        machine.rustc, machine.cpu, machine.cores
    );

    let mut results = Results {
        machine,
        settings,
        quick,
        write: None,
        throughput: None,
        scaling: None,
        nesting: None,
        kernel: Vec::new(),
        drain: None,
        pipe: None,
        wall_secs: 0.0,
    };
    if wants("write") {
        eprintln!("[1/7] write cost (starting LTTng if it can run here)");
        let lttng = Lttng::start();
        if let Err(why) = &lttng {
            eprintln!("      LTTng-UST not measured: {why}");
        }
        results.write = Some(write_cost::run(&settings, &lttng));
        drop(lttng); // Stops the session and the daemon we started.
    }
    if wants("throughput") {
        eprintln!("[2/7] one writer, one reader");
        results.throughput = Some(throughput::run(&settings));
    }
    if wants("scaling") {
        eprintln!("[3/7] scaling");
        results.scaling = Some(scaling::run(&settings));
    }
    if wants("nesting") {
        eprintln!("[4/7] nesting under a 20 kHz timer signal");
        results.nesting = Some(nesting::run(&settings));
    }
    if wants("kernel") {
        eprintln!(
            "[5/7] the kernel's benchmark, {} × {} ms",
            settings.kernel_reps,
            settings.kernel_time.as_millis()
        );
        results.kernel = match (0..settings.kernel_reps)
            .map(|_| kernel_bench::run(settings.kernel_time))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(runs) => runs,
            Err(e) => {
                eprintln!("ringtrace-bench: the kernel's benchmark failed: {e}");
                std::process::exit(1);
            }
        };
    }
    if wants("drain") {
        eprintln!("[6/7] record's drain to tmpfs");
        results.drain = Some(drain_rate::run_drain(&settings));
    }
    if wants("pipe") {
        eprintln!("[7/7] pipe's text formatting");
        results.pipe = Some(drain_rate::run_pipe(&settings));
    }
    results.wall_secs = started.elapsed().as_secs_f64();
    let md = results.markdown();
    if to_stdout || only.is_some() {
        println!("{md}");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root
        .canonicalize()
        .unwrap_or(root)
        .join("docs/benchmarks.md");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, &md) {
        Ok(()) => {
            println!("{md}");
            eprintln!("wrote {} in {:.0} s", path.display(), results.wall_secs);
        }
        Err(e) => {
            println!("{md}");
            eprintln!("could not write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("error: {err}");
    }
    eprintln!(
        "usage: cargo run -p ringtrace-bench --release [-- --quick] [--kernel-time MS] [--only write|throughput|scaling|nesting|kernel|drain|pipe] [--stdout]"
    );
    std::process::exit(if err.is_empty() { 0 } else { 2 });
}
