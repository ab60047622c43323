//! Reads an instance's per-CPU `trace_pipe_raw` files while the program
//! runs: one thread, every CPU's file open non-blocking, `poll` on all of
//! them, whole pages read (`read` of one page size gives one page image,
//! as the kernel hands them out) and spooled to a temporary file per CPU,
//! so memory stays bounded whatever the trace's length.
//!
//! Contract: [`PageReader::finish`] is called after the instance's
//! `tracing_on` was turned off: it drains what is left (each file until
//! EAGAIN), closes every file (so the instance can be removed) and returns
//! the spools. Nothing is lost silently: a page the kernel could not keep
//! (its ring overwrote it) is counted in `per_cpu/cpuN/stats`, read by the
//! caller, and in the pages' own missed-events flags.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::sync::{AtomicBool, Ordering};

use super::KernelError;

/// How long one `poll` waits before the stop flag is looked at again.
const POLL_MS: i32 = 50;
/// Most pages read from one CPU before the others get a turn.
const PAGES_PER_TURN: usize = 256;

/// One CPU's pages, spooled.
#[derive(Debug)]
pub struct CpuPages {
    /// The kernel's CPU number.
    pub cpu: u32,
    /// The pages, back to back, each `page_size` bytes.
    pub file: File,
    /// Pages in `file`.
    pub pages: u64,
}

/// The reading thread of one instance.
#[derive(Debug)]
pub struct PageReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Vec<CpuPages>, KernelError>>>,
}

/// One open `trace_pipe_raw` and its spool.
struct Source {
    raw: File,
    spool: CpuPages,
}

impl PageReader {
    /// Opens `per_cpu/cpuN/trace_pipe_raw` of `cpus` under the instance
    /// `dir` and starts reading them, `page_size` bytes at a time.
    pub fn start(dir: &Path, cpus: &[u32], page_size: usize) -> Result<PageReader, KernelError> {
        let mut sources = Vec::with_capacity(cpus.len());
        for &cpu in cpus {
            let path = dir.join(format!("per_cpu/cpu{cpu}/trace_pipe_raw"));
            let raw = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .map_err(|source| KernelError::Io {
                    what: "opening".into(),
                    path: path.clone(),
                    source,
                })?;
            let file = tempfile::tempfile().map_err(|source| KernelError::Io {
                what: "creating the spool of".into(),
                path: path.clone(),
                source,
            })?;
            sources.push(Source {
                raw,
                spool: CpuPages {
                    cpu,
                    file,
                    pages: 0,
                },
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ringtrace-kernel".into())
            .spawn(move || read_loop(sources, page_size, &flag))
            .map_err(|source| KernelError::Io {
                what: "starting the reader thread for".into(),
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(PageReader {
            stop,
            thread: Some(thread),
        })
    }

    /// Drains what is left, closes the files and returns each CPU's
    /// pages, rewound.
    pub fn finish(mut self) -> Result<Vec<CpuPages>, KernelError> {
        self.stop_thread().unwrap_or_else(|| {
            Err(KernelError::Unsupported(
                "the reader thread panicked".into(),
            ))
        })
    }

    fn stop_thread(&mut self) -> Option<Result<Vec<CpuPages>, KernelError>> {
        // Release: pairs with the Acquire load in `read_loop`, which then
        // drains the files once more before it returns.
        self.stop.store(true, Ordering::Release);
        self.thread.take()?.join().ok()
    }
}

impl Drop for PageReader {
    fn drop(&mut self) {
        // The files must be closed before the instance can be removed.
        let _ = self.stop_thread();
    }
}

/// The thread: poll, read, spool; after the stop flag, one last drain.
fn read_loop(
    mut sources: Vec<Source>,
    page_size: usize,
    stop: &AtomicBool,
) -> Result<Vec<CpuPages>, KernelError> {
    let mut page = vec![0u8; page_size];
    loop {
        // Acquire: pairs with the Release store in `PageReader::stop_thread`.
        let last = stop.load(Ordering::Acquire);
        let mut fds: Vec<libc::pollfd> = sources
            .iter()
            .map(|s| libc::pollfd {
                fd: s.raw.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if !last {
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs
            // that lives across the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        }
        for s in &mut sources {
            // On the last pass every file is drained to the end.
            let limit = if last { usize::MAX } else { PAGES_PER_TURN };
            drain(s, &mut page, limit)?;
        }
        if last {
            break;
        }
    }
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let Source { raw, mut spool } = s;
        drop(raw);
        spool
            .file
            .seek(SeekFrom::Start(0))
            .map_err(|source| KernelError::Io {
                what: "rewinding the spool of".into(),
                path: format!("cpu{}", spool.cpu).into(),
                source,
            })?;
        out.push(spool);
    }
    Ok(out)
}

/// Reads at most `limit` pages of `s` (until EAGAIN) into its spool;
/// pages with no data are skipped.
fn drain(s: &mut Source, page: &mut [u8], limit: usize) -> Result<(), KernelError> {
    let path = || format!("trace_pipe_raw of cpu{}", s.spool.cpu).into();
    for _ in 0..limit {
        page.fill(0);
        let n = match s.raw.read(page) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(KernelError::Io {
                    what: "reading".into(),
                    path: path(),
                    source,
                })
            }
        };
        // The commit word's low 30 bits are the page's data bytes; an
        // empty page (a read that raced an empty ring) carries nothing.
        let commit = u64::from_ne_bytes(page[8..16].try_into().unwrap_or_default());
        if n < 16 || commit & 0x3fff_ffff == 0 {
            continue;
        }
        s.spool
            .file
            .write_all(page)
            .map_err(|source| KernelError::Io {
                what: "spooling".into(),
                path: path(),
                source,
            })?;
        s.spool.pages += 1;
    }
    Ok(())
}
