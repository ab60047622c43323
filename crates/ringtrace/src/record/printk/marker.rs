//! Marker records: `trace_marker` text, stored as the kernel's `print`
//! entry (ftrace type 5), which is also what a non-constant printk is.
//!
//! # Terms
//!
//! - **Marker** ([`Print`]): an `ftrace/print` record: common header, the
//!   `ip` shown with `%ps` at offset 8, the text from offset 16, then a
//!   NUL and zero padding to a multiple of 4.
//!
//! # Contract
//!
//! Encoding copies the text as given (no newline added, as the kernel's
//! `trace_marker` adds none), allocates nothing and never panics; the
//! reader prints the text up to the first NUL.

use super::args::{align4, record_head};
use super::site::IP_BASE;
use crate::event::{CommonFields, EncodeError, EventType, Record, PRINT_EVENT, PRINT_ID};

/// The `ip` stored in marker ([`Print`]) records; [`kallsyms_text`](crate::printk::kallsyms_text) names it
/// `tracing_mark_write`, as the kernel's marker events show.
///
/// ```
/// assert!(ringtrace::printk::MARKER_IP < ringtrace::printk::IP_BASE + 16);
/// ```
#[doc(hidden)]
pub const MARKER_IP: u64 = IP_BASE;

/// A marker write (`trace_marker`): an `ftrace/print` record holding `ip` and
/// the text, NUL-terminated. Like the kernel, a newline is not added here;
/// readers print the text as is.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let p = ringtrace::printk::Print { ip: ringtrace::printk::MARKER_IP, text: "hello" };
/// let mut buf = [0u8; 32];
/// let n = p.encode(&CommonFields::default(), &mut buf).unwrap();
/// assert_eq!(n, 24);
/// assert_eq!(&buf[16..22], b"hello\0");
/// ```
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Print<'a> {
    /// Address shown with `%ps` (use [`MARKER_IP`] for marker writes).
    pub ip: u64,
    /// The text.
    pub text: &'a str,
}

impl Record for Print<'_> {
    fn event_type(&self) -> &'static EventType {
        PRINT_EVENT
    }

    #[inline(always)]
    fn needs_registration(&self) -> bool {
        false
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        align4(16 + self.text.len() + 1)
    }

    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let total = self.encoded_len();
        let out = record_head(out, total, PRINT_ID, common, self.ip)?;
        let n = self.text.len();
        out[16..16 + n].copy_from_slice(self.text.as_bytes());
        out[16 + n..].fill(0);
        Ok(total)
    }
}
