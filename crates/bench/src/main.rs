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

/// The command line.
struct Args {
    settings: Settings,
    quick: bool,
    to_stdout: bool,
    /// Only this section (and print the report instead of writing it).
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        settings: Settings::full(),
        quick: false,
        to_stdout: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                a.settings = Settings {
                    kernel_time: Settings::quick().kernel_time.min(a.settings.kernel_time),
                    ..Settings::quick()
                };
                a.quick = true;
            }
            "--kernel-time" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--kernel-time needs milliseconds"));
                a.settings.kernel_time = Duration::from_millis(ms);
            }
            "--only" => a.only = args.next(),
            "--stdout" => a.to_stdout = true,
            "--bench" => {} // cargo bench passes it to every target.
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

/// Measures the sections `a` asks for into `results`.
fn measure(a: &Args, results: &mut Results) {
    let settings = &a.settings;
    // Whether section `name` runs; says so, numbered, when it does.
    let step = |name: &str, what: &str| {
        let run = a.only.as_deref().is_none_or(|o| o == name);
        if run {
            eprintln!("{what}");
        }
        run
    };
    if step(
        "write",
        "[1/7] write cost (starting LTTng if it can run here)",
    ) {
        let lttng = Lttng::start();
        if let Err(why) = &lttng {
            eprintln!("      LTTng-UST not measured: {why}");
        }
        results.write = Some(write_cost::run(settings, &lttng));
        drop(lttng); // Stops the session and the daemon we started.
    }
    if step("throughput", "[2/7] one writer, one reader") {
        results.throughput = Some(throughput::run(settings));
    }
    if step("scaling", "[3/7] scaling") {
        results.scaling = Some(scaling::run(settings));
    }
    if step("nesting", "[4/7] nesting under a 20 kHz timer signal") {
        results.nesting = Some(nesting::run(settings));
    }
    let kernel = format!(
        "[5/7] the kernel's benchmark, {} × {} ms",
        settings.kernel_reps,
        settings.kernel_time.as_millis()
    );
    if step("kernel", &kernel) {
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
    if step("drain", "[6/7] record's drain to tmpfs") {
        results.drain = Some(drain_rate::run_drain(settings));
    }
    if step("pipe", "[7/7] pipe's text formatting") {
        results.pipe = Some(drain_rate::run_pipe(settings));
    }
    if step("quiet", "[+] trace! with and without a reader draining") {
        results.quiet = Some(ringtrace_bench::quiet::run(settings));
    }
}

/// Prints the report and writes it to `docs/benchmarks.md` at the
/// workspace root; exits 1 when it cannot be written.
fn write_report(md: &str, wall_secs: f64) {
    println!("{md}");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root
        .canonicalize()
        .unwrap_or(root)
        .join("docs/benchmarks.md");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&path, md) {
        Ok(()) => eprintln!("wrote {} in {:.0} s", path.display(), wall_secs),
        Err(e) => {
            eprintln!("could not write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

fn main() {
    let a = parse_args();
    let started = Instant::now();
    let machine = Machine::read();
    eprintln!(
        "ringtrace-bench: {} on {} ({} CPUs)",
        machine.rustc, machine.cpu, machine.cores
    );
    let mut results = Results {
        machine,
        settings: a.settings,
        quick: a.quick,
        write: None,
        throughput: None,
        scaling: None,
        nesting: None,
        kernel: Vec::new(),
        drain: None,
        pipe: None,
        quiet: None,
        wall_secs: 0.0,
    };
    measure(&a, &mut results);
    results.wall_secs = started.elapsed().as_secs_f64();
    let md = results.markdown();
    if a.to_stdout || a.only.is_some() {
        println!("{md}");
        return;
    }
    write_report(&md, results.wall_secs);
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("error: {err}");
    }
    eprintln!(
        "usage: cargo run -p ringtrace-bench --release [-- --quick] [--kernel-time MS] [--only write|throughput|scaling|nesting|kernel|drain|pipe|quiet] [--stdout]"
    );
    std::process::exit(if err.is_empty() { 0 } else { 2 });
}
