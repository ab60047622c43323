//! Where sessions live and how they are found: the session directories,
//! the file names, listing them and resolving a name given on the command
//! line to one file.
//!
//! # Terms
//!
//! - **Session directory**: `$RINGTRACE_SHM_DIR`, else `/dev/shm`, else the
//!   temporary directory ([`session_dir`]); lookups also search the other
//!   two ([`session_dirs`]).
//! - **File name**: `ringtrace-<pid>-<name>@<suffix>` (the creator's pid,
//!   the session's name, a random suffix).
//!
//! # Contract
//!
//! - Only files whose names parse ([`parse_file_name`]) are sessions here;
//!   the caller's own sessions are opened (and so validated) for their
//!   state, other users' are listed without being opened.
//! - [`resolve`] gives exactly one file, or an error naming the argument
//!   and, when it is ambiguous, every match.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{euid, ProcInfo, Session, SessionError, SessionState, SHM_DIR_ENV};

/// Prefix of session file names: `ringtrace-<pid>-<name>@<random>`.
#[doc(hidden)]
pub const FILE_PREFIX: &str = "ringtrace-";
/// Separates a session file name's random suffix (16 hex digits, so that
/// no other user can create the next session's file first) from the name;
/// names never contain it.
#[doc(hidden)]
pub const SUFFIX_SEP: char = '@';

/// Where sessions are created: `$RINGTRACE_SHM_DIR` when set, else
/// `/dev/shm` when it is a directory, else `$TMPDIR` (or `/tmp`).
pub fn session_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(SHM_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The directories where sessions are looked up: [`session_dir`], and
/// `/dev/shm` and `$TMPDIR` when they differ.
#[doc(hidden)]
pub fn session_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![session_dir()];
    for d in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        if d.is_dir() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The parts of a session file name: `ringtrace-<pid>-<name>@<suffix>`
/// gives `(pid, name)`; `None` for other files.
#[doc(hidden)]
pub fn parse_file_name(file: &str) -> Option<(&str, &str)> {
    let rest = file.strip_prefix(FILE_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let (name, suffix) = rest.rsplit_once(SUFFIX_SEP)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || suffix.is_empty() {
        return None;
    }
    Some((pid, name))
}

/// A session found by [`list_sessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The file.
    pub path: PathBuf,
    /// The owner's uid (of the file).
    pub owner: u32,
    /// Bytes of the file (its apparent size).
    pub size: u64,
    /// Bytes of storage the file occupies (its allocated blocks): what the
    /// session takes from `/dev/shm`.
    pub used: u64,
    /// The creator's pid (from the name).
    pub creator_pid: Option<u32>,
    /// The session's state; `Err` with the reason when it cannot be opened.
    pub state: Result<(SessionState, Vec<ProcInfo>), String>,
}

/// The session files in [`session_dirs`]: those of the caller opened for
/// their state, others only listed.
pub fn list_sessions() -> Vec<Listing> {
    let mut out = Vec::new();
    for d in session_dirs() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((pid, _)) = parse_file_name(&name) else {
                continue;
            };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = e.path();
            let state = if meta.uid() == euid() {
                Session::open(&path)
                    .map(|s| (s.state(), s.processes()))
                    .map_err(|e| e.to_string())
            } else {
                Err("another user's session".to_string())
            };
            out.push(Listing {
                path,
                owner: meta.uid(),
                size: meta.len(),
                // st_blocks counts 512-byte units, whatever the block size.
                used: meta.blocks().saturating_mul(512),
                creator_pid: pid.parse().ok(),
                state,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Resolves a session argument: a path to a file, or a name matching
/// `ringtrace-*-NAME@*`, `ringtrace-PID-*` or the whole file name in the
/// session directories ([`session_dirs`]).
pub fn resolve(arg: &str) -> Result<PathBuf, SessionError> {
    let p = Path::new(arg);
    if arg.contains('/') || p.is_file() {
        return Ok(p.to_path_buf());
    }
    let found: Vec<PathBuf> = list_sessions()
        .into_iter()
        .map(|l| l.path)
        .filter(|path| {
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                return false;
            };
            let Some((pid, name)) = parse_file_name(file) else {
                return false;
            };
            file == arg || name == arg || pid == arg
        })
        .collect();
    match found.len() {
        0 => Err(SessionError::NotFound(arg.to_string())),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(SessionError::Ambiguous {
            name: arg.to_string(),
            matches: found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
