//! `report --wall`: each event's wall-clock time, from the trace's
//! wall-clock start stored in the file (ringtrace's option: the real time
//! and the trace clock's stamp at one moment; see
//! `ringtrace::clock::WallStart`), for matching a trace against logs.
//!
//! Contract: a file without that start (another tool's, or recorded with
//! the `counter` clock, which counts records, not time) is refused with an
//! error naming the file and why; nothing is guessed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use ringtrace::clock::WallStart;
use ringtrace::tracedat::TraceDatInfo;

use crate::CliError;

/// A file's stamps mapped to wall-clock times.
#[derive(Debug)]
pub(crate) struct Wall<'a> {
    info: &'a TraceDatInfo,
    start: WallStart,
}

impl<'a> Wall<'a> {
    /// The wall clock of the file `path` read as `info`.
    pub(crate) fn of(info: &'a TraceDatInfo, path: &Path) -> Result<Wall<'a>, CliError> {
        let start = info.wall_start.ok_or_else(|| {
            CliError::Usage(format!(
                "--wall: {} holds no wall-clock start (written by another tool, or recorded \
                 with the counter clock, which counts records, not time)",
                path.display()
            ))
        })?;
        Ok(Wall { info, start })
    }

    /// The wall-clock time of stamp `ts`, in UTC (RFC 3339, ns).
    pub(crate) fn text(&self, ts: u64) -> String {
        let ns = self.start.wall_ns(ts, |t| self.info.ts_ns(t));
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
        humantime::format_rfc3339_nanos(at).to_string()
    }

    /// Starts a line with the wall-clock time of stamp `ts` and a space.
    pub(crate) fn prefix(&self, out: &mut String, ts: u64) {
        out.push_str(&self.text(ts));
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtrace::tracedat::{TraceDatMeta, TraceDatReader, TraceDatWriter};
    use std::io::Cursor;

    /// The info of a trace.dat written with `wall_start`, read back.
    fn info_with(wall_start: Option<WallStart>) -> TraceDatInfo {
        let mut meta = TraceDatMeta::new(4096, 1, "mono");
        meta.wall_start = wall_start;
        let file = TraceDatWriter::new(Cursor::new(Vec::new()), &meta)
            .unwrap()
            .finish()
            .unwrap()
            .into_inner();
        TraceDatReader::new(Cursor::new(file))
            .unwrap()
            .info()
            .clone()
    }

    /// The start goes through the file; a stamp maps to the start's real
    /// time plus its distance from the start's stamp.
    #[test]
    fn stamps_map_to_utc_from_the_start() {
        let start = WallStart {
            // 2026-12-07T23:00:00Z
            realtime_ns: 1_796_684_400_000_000_000,
            clock_ts: 5_000_000_000,
        };
        let info = info_with(Some(start));
        assert_eq!(info.wall_start, Some(start));
        let w = Wall::of(&info, Path::new("t.dat")).unwrap();
        assert_eq!(w.text(5_000_000_000), "2026-12-07T23:00:00.000000000Z");
        assert_eq!(w.text(6_500_000_123), "2026-12-07T23:00:01.500000123Z");
        assert_eq!(w.text(4_000_000_000), "2026-12-07T22:59:59.000000000Z");
    }

    /// A file without a start is refused, named.
    #[test]
    fn no_start_is_a_clear_error() {
        let info = info_with(None);
        let e = Wall::of(&info, Path::new("t.dat")).unwrap_err().to_string();
        assert!(e.contains("t.dat holds no wall-clock start"), "{e}");
    }
}
