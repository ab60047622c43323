//! Stack traces on events: ftrace's `user_stack` entry, recorded right
//! after the event whose caller's stack it holds (as the kernel's
//! `userstacktrace` option does), with return addresses only. Names come
//! at read time (the exporters' symbol tables).
//!
//! The record's layout is the kernel's `events/ftrace/user_stack/format`
//! (`struct userstack_entry`, `FTRACE_STACK_ENTRIES` = 8 callers), so that
//! `trace-cmd report` prints it from the file's formats:
//!
//! ```text
//! offset 0   common fields (8 bytes)
//! offset 8   u32 tgid          the process id
//! offset 12  4 bytes padding
//! offset 16  u64 caller[8]     return addresses, innermost first; 0 after
//!                              the last (an all-zero record: no stack)
//! ```

use super::event::{Array, CommonFields, EncodeError, EventType, Field, Record};
pub use super::stack_walk::{init_thread, thread_ready, walk};

/// The kernel's `TRACE_USER_STACK` entry type id.
pub const USER_STACK_ID: u16 = 13;

/// Callers a `user_stack` record holds (the kernel's `FTRACE_STACK_ENTRIES`).
pub const STACK_ENTRIES: usize = 8;

/// Bytes of a `user_stack` record.
pub const USER_STACK_LEN: usize = 16 + 8 * STACK_ENTRIES;

static USER_STACK_FIELDS: [Field; 2] = [
    Field {
        name: "tgid",
        c_type: "unsigned int",
        offset: 8,
        size: 4,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "caller",
        c_type: "unsigned long",
        offset: 16,
        size: 8 * STACK_ENTRIES as u16,
        signed: false,
        array: Array::Fixed(STACK_ENTRIES as u16),
    },
];

/// The kernel's `ftrace/user_stack` event type, print fmt included.
///
/// ```
/// let t = ringtrace::stack::USER_STACK_EVENT.format_text();
/// assert!(t.contains("\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;\n"));
/// ```
pub static USER_STACK_EVENT: &EventType = &EventType {
    name: "user_stack",
    system: "ftrace",
    id: USER_STACK_ID,
    fields: &USER_STACK_FIELDS,
    print_fmt: "\"\\t=> %ps\\n\\t=> %ps\\n\\t=> %ps\\n\" \"\\t=> %ps\\n\\t=> %ps\\n\\t=> %ps\\n\" \
                \"\\t=> %ps\\n\\t=> %ps\\n\", (void *)REC->caller[0], (void *)REC->caller[1], \
                (void *)REC->caller[2], (void *)REC->caller[3], (void *)REC->caller[4], \
                (void *)REC->caller[5], (void *)REC->caller[6], (void *)REC->caller[7]",
};

/// One `user_stack` record.
///
/// ```
/// use ringtrace::event::Record;
/// use ringtrace::stack::UserStack;
/// let mut s = UserStack { tgid: 7, callers: [0; 8] };
/// s.callers[0] = 0x1234;
/// let mut buf = [0u8; 80];
/// assert_eq!(s.encode(&Default::default(), &mut buf), Ok(80));
/// assert_eq!(UserStack::parse(&buf), Some(s));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStack {
    /// The process id.
    pub tgid: u32,
    /// Return addresses, innermost first, 0 after the last.
    pub callers: [u64; STACK_ENTRIES],
}

impl UserStack {
    /// The callers actually recorded (up to the first 0).
    pub fn frames(&self) -> &[u64] {
        let n = self
            .callers
            .iter()
            .position(|&a| a == 0)
            .unwrap_or(STACK_ENTRIES);
        &self.callers[..n]
    }

    /// Reads a `user_stack` record (common fields included), `None` if it
    /// is too short or of another type.
    pub fn parse(record: &[u8]) -> Option<UserStack> {
        let (id, _) = CommonFields::read(record)?;
        let body = record.get(8..USER_STACK_LEN)?;
        if id != USER_STACK_ID {
            return None;
        }
        let mut callers = [0u64; STACK_ENTRIES];
        for (c, b) in callers.iter_mut().zip(body[8..].chunks_exact(8)) {
            *c = u64::from_ne_bytes(b.try_into().ok()?);
        }
        Some(UserStack {
            tgid: u32::from_ne_bytes(body[..4].try_into().ok()?),
            callers,
        })
    }
}

impl Record for UserStack {
    fn event_type(&self) -> &'static EventType {
        USER_STACK_EVENT
    }

    #[inline(always)]
    fn needs_registration(&self) -> bool {
        // A built-in type: the global registry holds it from the start.
        false
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        USER_STACK_LEN
    }

    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let have = out.len();
        let Some(out) = out.get_mut(..USER_STACK_LEN) else {
            return Err(EncodeError::BufferTooSmall {
                need: USER_STACK_LEN,
                have,
            });
        };
        common.write(USER_STACK_ID, out);
        out[8..12].copy_from_slice(&self.tgid.to_ne_bytes());
        out[12..16].fill(0);
        for (b, c) in out[16..].chunks_exact_mut(8).zip(self.callers) {
            b.copy_from_slice(&c.to_ne_bytes());
        }
        Ok(USER_STACK_LEN)
    }
}
