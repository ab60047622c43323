//! `ringtrace report --stat`: the buffer stats recorded at the end of the
//! recording and where each CPU's data lies, in `trace-cmd report --stat`'s
//! layout, so that scripts reading one read the other.
//!
//! ```text
//! cpus=2
//!
//! Kernel buffer statistics:
//!   Note: "entries" are the entries left in the kernel ring buffer and are not
//!         recorded in the trace data. They should all be zero.
//!
//! entries: 0            <- each CPU's CPUSTAT option text, then a blank line
//! ...                      (or " No stats in this file")
//!
//! CPU0 data recorded at offset=0x1000
//!     8192 bytes in size
//! ```

use std::fmt::Write as _;
use std::io::Write as _;

use ringtrace::tracedat::TraceDatInfo;

use crate::CliError;

/// The block `trace-cmd report --stat` prints for `info`.
pub fn text(info: &TraceDatInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "cpus={}", info.cpus.len());
    s.push_str(
        "\nKernel buffer statistics:\n  Note: \"entries\" are the entries left in the kernel \
         ring buffer and are not\n        recorded in the trace data. They should all be \
         zero.\n\n",
    );
    if info.cpu_stats.is_empty() {
        s.push_str(" No stats in this file\n");
    } else {
        // trace-cmd joins the CPUSTAT options, each one's closing NUL made
        // a newline, and prints the whole with one more newline.
        for stat in &info.cpu_stats {
            s.push_str(stat);
            s.push('\n');
        }
        s.push('\n');
    }
    for (i, d) in info.cpus.iter().enumerate() {
        let _ = writeln!(s, "CPU{i} data recorded at offset=0x{:x}", d.offset);
        let _ = writeln!(s, "    {} bytes in size", d.size);
    }
    s
}

/// Prints [`text`] on stdout.
pub fn print(info: &TraceDatInfo) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text(info).as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}
