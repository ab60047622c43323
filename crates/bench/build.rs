//! Builds the LTTng-UST tracepoint provider when liblttng-ust-dev is
//! installed, and sets `cfg(ringtrace_lttng)`; without it the runner's table
//! says why LTTng was not measured. `RINGTRACE_BENCH_NO_LTTNG=1` skips it.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ringtrace_lttng)");
    println!("cargo::rerun-if-changed=csrc");
    println!("cargo::rerun-if-env-changed=RINGTRACE_BENCH_NO_LTTNG");
    if std::env::var_os("RINGTRACE_BENCH_NO_LTTNG").is_some() {
        return;
    }
    let found = Command::new("pkg-config")
        .args(["--exists", "lttng-ust"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        || Path::new("/usr/include/lttng/tracepoint.h").exists()
        || Path::new("/usr/include/x86_64-linux-gnu/lttng/tracepoint.h").exists();
    if !found {
        println!("cargo::warning=liblttng-ust-dev not found: the LTTng-UST comparison is skipped");
        return;
    }
    cc::Build::new()
        .file("csrc/ringtrace_bench_tp.c")
        .include("csrc")
        .warnings(false)
        .compile("ringtrace_bench_tp");
    println!("cargo::rustc-link-lib=lttng-ust");
    println!("cargo::rustc-link-lib=lttng-ust-common");
    println!("cargo::rustc-link-lib=dl");
    // The provider finds its tracepoints through the `__tracepoints_ptrs`
    // section, which only `__start_`/`__stop_` symbols refer to: the
    // linker's section garbage collection drops it (lttng-ust then logs
    // "registered a tracepoints section from 0x0 and having 0 tracepoints"
    // and the events are never enabled).
    println!("cargo::rustc-link-arg=-Wl,--no-gc-sections");
    let version = Command::new("pkg-config")
        .args(["--modversion", "lttng-ust"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=RINGTRACE_BENCH_LTTNG_UST_VERSION={version}");
    println!("cargo::rustc-cfg=ringtrace_lttng");
}
