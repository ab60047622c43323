//! A tracefs instance of ringtrace's own: `instances/ringtrace-<pid>-<tag>`
//! under the tracefs mount, made with `mkdir` and removed with `rmdir`.
//!
//! Contract: only files inside the instance are written (`trace_clock`,
//! `buffer_size_kb`, `buffer_subbuf_size_kb`, `set_event_pid`,
//! `options/event-fork`, `tracing_on`, `events/...`); never the global
//! buffer's, never another tool's instance, never `set_ftrace_*` or
//! `ftrace_enabled` (they are EPERM on the project's machines, and the
//! event path does not need them). Dropping an [`Instance`] turns it off
//! and removes it; an instance left by a process that was killed first is
//! removed by the next [`remove_stale`].
//!
//! The `<pid>` in the name is the owning process: [`remove_stale`] removes
//! only instances whose owner is dead.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::KernelError;

/// Where tracefs is mounted on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The prefix of every instance ringtrace makes.
pub const PREFIX: &str = "ringtrace-";

/// One tracefs instance owned by this process.
#[derive(Debug)]
pub struct Instance {
    dir: PathBuf,
    removed: bool,
}

/// Writes `text` to the tracefs file `path` (one write, truncating, as
/// `echo text > path`), naming the file in the error.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), KernelError> {
    let r = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    r.map_err(|source| KernelError::Io {
        what: format!("writing {text:?} to"),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the tracefs file `path`, naming it in the error. Large reads:
/// some tracefs files make their text anew on each `read` (a filter's
/// parse error is gone by the second), so the first read must take it all.
pub(crate) fn read_file(path: &Path) -> Result<String, KernelError> {
    let err = |source| KernelError::Io {
        what: "reading".into(),
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(err)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The tracefs mount: [`TRACEFS`], or `RINGTRACE_TRACEFS` when set (a
/// test's or an unusual mount point).
pub fn tracefs_root() -> PathBuf {
    std::env::var_os("RINGTRACE_TRACEFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(TRACEFS))
}

/// Checks tracefs is there and ours to use: [`KernelError::NoTracefs`]
/// when the mount point has no `instances` directory,
/// [`KernelError::NotPermitted`] when it cannot be written.
pub fn check_tracefs(root: &Path) -> Result<(), KernelError> {
    let inst = root.join("instances");
    if !inst.is_dir() {
        return Err(KernelError::NoTracefs(root.to_path_buf()));
    }
    let c = std::ffi::CString::new(inst.as_os_str().as_encoded_bytes())
        .map_err(|_| KernelError::NoTracefs(root.to_path_buf()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(KernelError::NotPermitted {
            path: inst,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl Instance {
    /// Makes `instances/ringtrace-<our pid>-<tag>` under `root` (the tag
    /// made safe: letters, digits, `_`, `-`, `.`). A left-over instance of
    /// the same name (our pid reused) is removed first.
    pub fn create(root: &Path, tag: &str) -> Result<Instance, KernelError> {
        check_tracefs(root)?;
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("{PREFIX}{}-{tag}", std::process::id());
        let dir = root.join("instances").join(name);
        if dir.exists() {
            remove_dir(&dir)?;
        }
        fs::create_dir(&dir).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied => KernelError::NotPermitted {
                path: dir.clone(),
                source,
            },
            _ => KernelError::Io {
                what: "creating the tracefs instance".into(),
                path: dir.clone(),
                source,
            },
        })?;
        let inst = Instance {
            dir,
            removed: false,
        };
        // Off until the events are set up: nothing half-configured is
        // recorded.
        inst.set_tracing_on(false)?;
        Ok(inst)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's name (its directory's).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Sets the instance's `trace_clock` (`mono`, `x86-tsc`, ...).
    pub fn set_clock(&self, clock: &str) -> Result<(), KernelError> {
        write_file(&self.dir.join("trace_clock"), clock)?;
        let back = read_file(&self.dir.join("trace_clock"))?;
        if !back.contains(&format!("[{clock}]")) {
            return Err(KernelError::Unsupported(format!(
                "trace_clock {clock:?} was not taken (it reads {:?})",
                back.trim()
            )));
        }
        Ok(())
    }

    /// Sets the page (sub-buffer) size to `page_size` bytes, when it is
    /// not the kernel's 4096 already (`buffer_subbuf_size_kb`, Linux 6.8+).
    pub fn set_page_size(&self, page_size: usize) -> Result<(), KernelError> {
        let file = self.dir.join("buffer_subbuf_size_kb");
        let now = read_file(&file)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        if now.map(|kb| kb * 1024) == Some(page_size) || (now.is_none() && page_size == 4096) {
            return Ok(());
        }
        if page_size < 4096 || page_size % 1024 != 0 {
            return Err(KernelError::Unsupported(format!(
                "the kernel's pages are 4096 bytes or more; page size {page_size} cannot be \
                 recorded with kernel events (use --page-size 4096)"
            )));
        }
        write_file(&file, &(page_size / 1024).to_string())?;
        let back = read_file(&file)?;
        if back.trim().parse::<usize>().ok().map(|kb| kb * 1024) != Some(page_size) {
            return Err(KernelError::Unsupported(format!(
                "the kernel did not take a page size of {page_size} bytes ({} reads {:?})",
                file.display(),
                back.trim()
            )));
        }
        Ok(())
    }

    /// Sets each CPU's buffer to `kb` KiB (`buffer_size_kb`, per CPU as
    /// trace-cmd's `-b`).
    pub fn set_buffer_kb(&self, kb: usize) -> Result<(), KernelError> {
        write_file(&self.dir.join("buffer_size_kb"), &kb.max(4).to_string())
    }

    /// Traces only `pid` and (with `options/event-fork`) what it forks.
    pub fn set_event_pid(&self, pid: u32) -> Result<(), KernelError> {
        write_file(&self.dir.join("options/event-fork"), "1")?;
        write_file(&self.dir.join("set_event_pid"), &pid.to_string())
    }

    /// Turns recording into the instance on or off (`tracing_on`).
    pub fn set_tracing_on(&self, on: bool) -> Result<(), KernelError> {
        write_file(&self.dir.join("tracing_on"), if on { "1" } else { "0" })
    }

    /// The number of CPUs with a buffer (`per_cpu/cpuN` directories).
    pub fn cpus(&self) -> Result<Vec<u32>, KernelError> {
        let dir = self.dir.join("per_cpu");
        let rd = fs::read_dir(&dir).map_err(|source| KernelError::Io {
            what: "listing".into(),
            path: dir.clone(),
            source,
        })?;
        let mut cpus: Vec<u32> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
            .collect();
        cpus.sort_unstable();
        Ok(cpus)
    }

    /// Turns the instance off (recording, every event, the pid list) and
    /// removes it. Every file of the instance must be closed first (the
    /// kernel refuses `rmdir` with EBUSY otherwise).
    pub fn remove(mut self) -> Result<(), KernelError> {
        self.removed = true;
        remove_dir(&self.dir)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove_dir(&self.dir) {
                eprintln!("ringtrace: warning: {e}");
            }
        }
    }
}

/// Disables and removes the instance at `dir` (its events off first, as
/// trace-cmd does, then `rmdir`, retried a few times while busy).
fn remove_dir(dir: &Path) -> Result<(), KernelError> {
    // Best effort: an instance half made may lack some files.
    let _ = write_file(&dir.join("tracing_on"), "0");
    let _ = write_file(&dir.join("events/enable"), "0");
    let _ = write_file(&dir.join("set_event_pid"), "");
    let mut last = None;
    for attempt in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        // EBUSY while a reader still closes its files: a bounded wait.
        std::thread::sleep(std::time::Duration::from_millis(10 + attempt));
    }
    Err(KernelError::Io {
        what: "removing the tracefs instance".into(),
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::other("busy")),
    })
}

/// Whether process `pid` is alive (`kill(pid, 0)`: EPERM means alive).
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks the process; plain integers.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the `ringtrace-<pid>-*` instances under `root` whose owning
/// process is dead (left by a `record` that was killed); returns their
/// names. Instances of live processes and other tools' are left alone.
pub fn remove_stale(root: &Path) -> Result<Vec<String>, KernelError> {
    let dir = root.join("instances");
    let rd = fs::read_dir(&dir).map_err(|source| KernelError::Io {
        what: "listing".into(),
        path: dir.clone(),
        source,
    })?;
    let mut removed = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        remove_dir(&e.path())?;
        removed.push(name);
    }
    Ok(removed)
}
