//! Creating and opening session files.
//!
//! # Terms
//!
//! - **Session file**: `ringtrace-<pid>-<name>@<suffix>` in the session
//!   directory, mode 0600, laid out as [`super::layout`] describes.
//! - **Reserved**: every byte of the file allocated (`posix_fallocate`), so
//!   that no write through a mapping needs memory the file system may not
//!   have.
//!
//! # Contract
//!
//! - [`Session::create`] checks the configuration first, then makes the
//!   file with `O_EXCL` under a random suffix (no other user can create
//!   or link that name first), reserves all of it, writes the header, sets
//!   up the rings and only then publishes `ready`. On any error the file
//!   is removed again; a file system too small gives
//!   [`SessionError::NoSpace`] with the size needed and the space free.
//! - [`Session::open`] trusts nothing it has not checked: the owner and
//!   mode of the file, that all of it is allocated (a hole would fault a
//!   reader or the traced program with SIGBUS on a full file system), the
//!   header ([`super::layout::validate`]), and the ring region against
//!   the header.

use crate::sync::Ordering;
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringtrace_ring::{Config, RingBuffer};

use super::find::{session_dir, FILE_PREFIX, SUFFIX_SEP};
use super::layout::{round_up, validate, write_header, Layout, SessionMap, HEADER_SIZE};
use super::layout::{MAX_CONTEXTS, MAX_INDEX, MAX_TABLE_DATA, PROCS};
use super::{euid, table, Session, SessionConfig, SessionError};
use crate::clock::{Clock, ClockKind, Tsc2Nsec};

/// 16 hex digits no other process can predict: SipHash with the process's
/// random keys (std's `RandomState`) over the pid, the time and `attempt`.
fn random_suffix(attempt: u32) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(attempt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("{:016x}", h.finish())
}

/// Bytes free for an unprivileged user in the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero bits are a valid statvfs (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Allocates every byte of `file` up to `len` (extending it), so that no
/// later write through a mapping needs memory the file system may not
/// have: a full tmpfs then refuses here, not with SIGBUS later.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a plain system call on an fd we own; no memory is passed.
    // (glibc emulates it by writing where the file system lacks fallocate.)
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl Session {
    /// Creates a session file (mode 0600, `O_EXCL`) named
    /// `ringtrace-<pid>-<name>@<16 random hex digits>` in
    /// [`SessionConfig::dir`] or [`session_dir`], reserves all its memory
    /// (`posix_fallocate`: [`SessionError::NoSpace`] names the size needed
    /// and the space free when it does not fit), and sets up its header,
    /// tables and rings.
    pub fn create(cfg: &SessionConfig) -> Result<Session, SessionError> {
        check_config(cfg)?;
        let clock = session_clock(cfg.clock)?;
        let ring_cfg = ring_config(cfg);
        let ring_size =
            RingBuffer::region_size(&ring_cfg).map_err(|e| SessionError::Config(e.to_string()))?;
        let layout = plan_layout(cfg, &clock, ring_size);
        let dir = cfg.dir.clone().unwrap_or_else(session_dir);
        let (path, file) = create_file(&dir, &cfg.name)?;
        let made = set_up(file, &path, &dir, layout, ring_cfg);
        if made.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        made
    }

    /// Opens an existing session file, checking the owner, the mode, the
    /// header, that all its memory is allocated ([`SessionError::NotBacked`]
    /// otherwise) and the ring region.
    pub fn open(path: &Path) -> Result<Session, SessionError> {
        let p = path.display().to_string();
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path, "opening"))?;
        let meta = file
            .metadata()
            .map_err(io_err(path, "reading its metadata"))?;
        let me = euid();
        if meta.uid() != me {
            return Err(SessionError::NotOwner {
                path: p,
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!(
                    "mode {:o} lets other users in: sessions must be 0600",
                    meta.mode() & 0o777
                ),
            });
        }
        if meta.len() < HEADER_SIZE as u64 {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!("{} bytes: too short for a session header", meta.len()),
            });
        }
        // Every byte must be allocated (as `create` does), checked before
        // anything is mapped: touching a hole through a mapping, even to
        // read it, needs a page, and a full file system answers with
        // SIGBUS, killing the traced program or the reader. (The layout
        // must fit in the file, so all of the file is checked.)
        let allocated = meta.blocks().saturating_mul(512);
        if allocated < meta.len() {
            return Err(SessionError::NotBacked {
                path: p,
                allocated,
                size: meta.len(),
            });
        }
        let map = memmap2::MmapOptions::new()
            .len(HEADER_SIZE)
            .map_raw(&file)
            .map_err(io_err(path, "mapping the header"))?;
        let layout = validate(&map, meta.len(), &p)?;
        if layout.uid != me {
            return Err(SessionError::NotOwner {
                path: p,
                owner: layout.uid,
                me,
            });
        }

        drop(map);
        let map = memmap2::MmapOptions::new()
            .len(layout.ring_offset as usize)
            .map_raw(&file)
            .map_err(io_err(path, "mapping the tables"))?;
        let ring = RingBuffer::open_shared(&file, layout.ring_offset).map_err(|source| {
            SessionError::Ring {
                path: p.clone(),
                source,
            }
        })?;
        if ring.rings() != layout.contexts || ring.config().page_size != layout.page_size {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!(
                    "header says {} contexts of {}-byte pages, the ring region has {} of {}",
                    layout.contexts,
                    layout.page_size,
                    ring.rings(),
                    ring.config().page_size
                ),
            });
        }
        Ok(Session {
            map: Arc::new(SessionMap {
                map,
                layout,
                path: path.to_path_buf(),
            }),
            ring,
            file,
        })
    }
}

/// An [`SessionError::Io`] maker for `what` on the file at `path`.
fn io_err(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> SessionError {
    let path = path.display().to_string();
    move |source| SessionError::Io { path, what, source }
}

/// Checks the name, the contexts and the table sizes of `cfg`.
fn check_config(cfg: &SessionConfig) -> Result<(), SessionError> {
    if cfg.name.is_empty()
        || cfg.name.len() > 40
        || !cfg
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(SessionError::Config(format!(
            "session name {:?}: 1 to 40 letters, digits, '-', '_' or '.'",
            cfg.name
        )));
    }
    if cfg.contexts == 0 || cfg.contexts > MAX_CONTEXTS {
        return Err(SessionError::Config(format!(
            "contexts {}: must be 1 to {MAX_CONTEXTS}",
            cfg.contexts
        )));
    }
    if cfg.table_entries == 0 || cfg.table_entries > MAX_INDEX {
        return Err(SessionError::Config(format!(
            "table entries {}: must be 1 to {MAX_INDEX}",
            cfg.table_entries
        )));
    }
    if cfg.table_bytes < 4096 || cfg.table_bytes > MAX_TABLE_DATA {
        return Err(SessionError::Config(format!(
            "table bytes {}: must be 4096 to {MAX_TABLE_DATA}",
            cfg.table_bytes
        )));
    }
    Ok(())
}

/// The clock of a session: `mono` or `tsc` (its conversion is recorded in
/// the header for every process); the counter clock is per process.
fn session_clock(kind: ClockKind) -> Result<Clock, SessionError> {
    match kind {
        ClockKind::Counter => Err(SessionError::Config(
            "the counter clock is per process: use mono or tsc".into(),
        )),
        ClockKind::Mono => Ok(Clock::mono()),
        ClockKind::Tsc => Clock::tsc().map_err(|e| SessionError::Config(e.to_string())),
    }
}

/// The ring buffer's configuration for `cfg`: its contexts, pages, pool
/// and mode, with no room to grow.
fn ring_config(cfg: &SessionConfig) -> Config {
    let ring_cfg = Config::new(cfg.contexts)
        .page_size(cfg.page_size)
        .bytes_per_ring(cfg.bytes_per_context)
        .pool_pages(
            cfg.pool_bytes
                .div_ceil(ringtrace_ring::format::data_capacity(
                    cfg.page_size.max(ringtrace_ring::format::MIN_PAGE_SIZE),
                )),
        )
        .mode(cfg.mode);
    // No room to grow: a session's rings are never resized, and every
    // byte of the file is reserved (`reserve`), so room for growth
    // would cost memory (three times the rings) for nothing.
    ring_cfg.max_pages_per_ring(ring_cfg.pages_per_ring)
}

/// The geometry of a new session: the parts after the header in order,
/// each aligned, then the ring region (`ring_size` bytes), page-aligned.
fn plan_layout(cfg: &SessionConfig, clock: &Clock, ring_size: u64) -> Layout {
    let slots_offset = HEADER_SIZE;
    let procs_offset = round_up(slots_offset + 8 * cfg.contexts, 64);
    let index_offset = round_up(procs_offset + 16 * PROCS, 64);
    let data_offset = round_up(
        index_offset + std::mem::size_of::<table::IndexEntry>() * cfg.table_entries,
        64,
    );
    let ring_offset = round_up(data_offset + round_up(cfg.table_bytes, 8), 4096) as u64;
    Layout {
        uid: euid(),
        creator_pid: std::process::id(),
        name: cfg.name.clone(),
        clock: cfg.clock,
        clock_ordered: clock.is_ordered(),
        tsc2nsec: clock.tsc2nsec().unwrap_or(Tsc2Nsec {
            mult: 1,
            shift: 0,
            offset: 0,
        }),
        page_size: cfg.page_size,
        contexts: cfg.contexts,
        bytes_per_context: cfg.bytes_per_context,
        mode: cfg.mode,
        take_over_exited: cfg.take_over_exited,
        procs: PROCS,
        slots_offset,
        procs_offset,
        index_offset,
        index_capacity: cfg.table_entries,
        data_offset,
        data_size: cfg.table_bytes,
        ring_offset,
        ring_size,
        total_size: ring_offset + ring_size,
    }
}

/// Creates the file of a session named `name` in `dir`. `O_EXCL` on a
/// name with a random suffix: nobody can create it first (a squatter),
/// and a file that exists (a symbolic link included) is never opened. A
/// clash of suffixes is retried.
fn create_file(dir: &Path, name: &str) -> Result<(PathBuf, File), SessionError> {
    let mut attempt = 0;
    loop {
        let path = dir.join(format!(
            "{FILE_PREFIX}{}-{name}{SUFFIX_SEP}{}",
            std::process::id(),
            random_suffix(attempt)
        ));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(source) => return Err(io_err(&path, "creating the file")(source)),
        }
    }
}

/// Sets up the new, empty session `file` at `path` (in `dir`): reserves
/// every byte, writes the header of `layout`, creates the rings of
/// `ring_cfg` and publishes `ready`. The caller removes the file when this
/// fails.
fn set_up(
    file: File,
    path: &Path,
    dir: &Path,
    layout: Layout,
    ring_cfg: Config,
) -> Result<Session, SessionError> {
    let total_size = layout.total_size;
    // Every byte reserved now: a writer never faults on a page the file
    // system cannot back (see `Session::open`).
    reserve(&file, total_size).map_err(|source| match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => SessionError::NoSpace {
            path: path.display().to_string(),
            dir: dir.to_path_buf(),
            needed: total_size,
            free: free_bytes(dir).unwrap_or(0),
        },
        _ => io_err(path, "reserving its memory (posix_fallocate)")(source),
    })?;
    let map = memmap2::MmapOptions::new()
        .len(layout.ring_offset as usize)
        .map_raw(&file)
        .map_err(io_err(path, "mapping the header"))?;
    let ring_offset = layout.ring_offset;
    let sm = SessionMap {
        map,
        layout,
        path: path.to_path_buf(),
    };
    write_header(&sm);
    let ring = RingBuffer::create_shared(&file, ring_offset, ring_cfg).map_err(|source| {
        SessionError::Ring {
            path: path.display().to_string(),
            source,
        }
    })?;
    // Release: pairs with the Acquire load in `validate` (by `open`): an
    // opener that sees ready sees the header, tables and ring region set up.
    sm.header().ready.store(1, Ordering::Release);
    Ok(Session {
        map: Arc::new(sm),
        ring,
        file,
    })
}
