//! LTTng-UST, when it can run here: a session daemon started by the bench
//! (and stopped afterwards), a snapshot session (overwrite channel, no
//! consumer reading), and the tracepoint provider in `csrc/` built by
//! `build.rs` (only when liblttng-ust-dev is installed).

use crate::sinks::Sink;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(ringtrace_lttng)]
extern "C" {
    fn ringtrace_bench_lttng_u64(v: u64);
    fn ringtrace_bench_lttng_bytes(p: *const u8, len: usize);
    fn ringtrace_bench_lttng_enabled() -> std::os::raw::c_int;
}

/// A running LTTng session that has our tracepoints enabled.
#[derive(Debug)]
pub struct Lttng {
    session: String,
    sessiond: Option<Child>,
    _out: tempfile::TempDir,
    version: String,
}

fn lttng(args: &[&str]) -> Result<String, String> {
    let out = Command::new("lttng")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`lttng` not runnable: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`lttng {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn enabled() -> bool {
    #[cfg(ringtrace_lttng)]
    {
        // SAFETY: a plain C function without arguments.
        unsafe { ringtrace_bench_lttng_enabled() != 0 }
    }
    #[cfg(not(ringtrace_lttng))]
    {
        false
    }
}

impl Lttng {
    /// Starts a session daemon if none runs, creates a snapshot session with
    /// our events enabled and waits until this process sees them enabled.
    /// The error says exactly why LTTng cannot be measured.
    pub fn start() -> Result<Lttng, String> {
        if !cfg!(ringtrace_lttng) {
            return Err(
                "not built: liblttng-ust-dev was not installed when crates/bench was \
                 compiled (`apt-get install -y liblttng-ust-dev lttng-tools`, then rebuild)"
                    .into(),
            );
        }
        let version = Command::new("lttng-sessiond")
            .arg("--version")
            .output()
            .map_err(|e| format!("lttng-sessiond not runnable ({e}): install lttng-tools"))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let mut sessiond = None;
        if lttng(&["list"]).is_err() {
            let child = Command::new("lttng-sessiond")
                .arg("--no-kernel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start lttng-sessiond: {e}"))?;
            sessiond = Some(child);
            let start = Instant::now();
            while lttng(&["list"]).is_err() {
                if start.elapsed() > Duration::from_secs(10) {
                    stop_sessiond(&mut sessiond);
                    return Err("lttng-sessiond started but did not answer within 10 s".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let out = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
        let session = format!("ringtrace-bench-{}", std::process::id());
        let output = format!("--output={}", out.path().display());
        let mut me = Lttng {
            session,
            sessiond,
            _out: out,
            version,
        };
        lttng(&["create", &me.session, "--snapshot", &output])?;
        lttng(&["enable-event", "-u", "-s", &me.session, "ringtrace_bench:*"])?;
        lttng(&["start", &me.session])?;
        let start = Instant::now();
        while !enabled() {
            if start.elapsed() > Duration::from_secs(10) {
                let apps = lttng(&["list", "-u"]).unwrap_or_default();
                me.sessiond_note_failure();
                return Err(format!(
                    "session started but our tracepoints were not enabled within 10 s \
                     (the process did not register with the session daemon); `lttng list -u`: {}",
                    apps.trim().replace('\n', " ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    fn sessiond_note_failure(&mut self) {
        let _ = lttng(&["destroy", &self.session]);
        stop_sessiond(&mut self.sessiond);
    }

    /// How LTTng was set up, for the table.
    pub fn describe(&self) -> String {
        format!(
            "lttng-ust {}, lttng-sessiond {}, {} session daemon, snapshot session (overwrite channel, nothing consumed); reads its clock per event",
            option_env!("RINGTRACE_BENCH_LTTNG_UST_VERSION").unwrap_or("unknown"),
            self.version.trim_start_matches("lttng-sessiond ").trim_start_matches("lttng-sessiond (LTTng Trace Control) "),
            if self.sessiond.is_some() {
                "bench-started"
            } else {
                "already running"
            }
        )
    }

    /// A sink that fires the byte-array tracepoint of `N` bytes.
    pub fn bytes_sink<const N: usize>(&self) -> Option<LttngBytes> {
        if cfg!(ringtrace_lttng) && enabled() && matches!(N, 8 | 32 | 128) {
            Some(LttngBytes { _private: () })
        } else {
            None
        }
    }

    /// A sink that fires the u64 tracepoint.
    pub fn u64_sink(&self) -> Option<LttngU64> {
        if cfg!(ringtrace_lttng) && enabled() {
            Some(LttngU64 { _private: () })
        } else {
            None
        }
    }
}

fn stop_sessiond(sessiond: &mut Option<Child>) {
    if let Some(mut child) = sessiond.take() {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signals the daemon this process spawned, by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if start.elapsed() > Duration::from_secs(5) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Lttng {
    fn drop(&mut self) {
        let _ = lttng(&["stop", &self.session]);
        let _ = lttng(&["destroy", &self.session]);
        stop_sessiond(&mut self.sessiond);
    }
}

/// Fires the byte-array tracepoint.
#[derive(Debug)]
pub struct LttngBytes {
    _private: (),
}

/// Fires the u64 tracepoint with the time stamp.
#[derive(Debug)]
pub struct LttngU64 {
    _private: (),
}

// Only constructed when built with the provider; without it the bodies
// are empty (the sinks are never handed out).
impl<const N: usize> Sink<N> for LttngBytes {
    fn batch(&self) -> usize {
        4096
    }
    #[inline(always)]
    fn write(&mut self, _ts: u64, payload: &[u8; N]) {
        #[cfg(ringtrace_lttng)]
        // SAFETY: `payload` is valid for N bytes; the C side reads exactly
        // N bytes for N in {8, 32, 128} and nothing otherwise.
        unsafe {
            ringtrace_bench_lttng_bytes(payload.as_ptr(), N)
        }
        #[cfg(not(ringtrace_lttng))]
        let _ = payload;
    }
}

impl<const N: usize> Sink<N> for LttngU64 {
    fn batch(&self) -> usize {
        4096
    }
    #[inline(always)]
    fn write(&mut self, ts: u64, _payload: &[u8; N]) {
        #[cfg(ringtrace_lttng)]
        // SAFETY: a plain C function taking a u64.
        unsafe {
            ringtrace_bench_lttng_u64(ts)
        }
        #[cfg(not(ringtrace_lttng))]
        let _ = ts;
    }
}
