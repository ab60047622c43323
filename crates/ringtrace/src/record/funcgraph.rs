//! The function tracers' records: ftrace's `funcgraph_entry`,
//! `funcgraph_exit` (the `function_graph` tracer) and `function` (the
//! `function` tracer), with the kernel's ids, fields and `print fmt`.
//!
//! # Terms
//!
//! - **Function site**: a printk [`Site`] whose format is the function's
//!   name (no argument). Its id gives the function a fake kernel address,
//!   [`func_addr`] (the site's `fmt` address), which the trace.dat's
//!   kallsyms section names (`crate::printk::kallsyms_text`), so that
//!   `trace-cmd report` prints the name for `func`. A session publishes
//!   the site in its tables like any printk site, so a reader in another
//!   process finds the name too.
//! - **Depth**: how many traced functions enclose this call on its thread
//!   (0 for the outermost).
//! - **calltime / rettime**: the trace clock at entry and at return, in
//!   nanoseconds (the kernel's `trace_clock_local`); their difference is the
//!   duration the graph prints.
//!
//! # Record layouts (the kernel's, `kernel/trace/trace_entries.h`)
//!
//! ```text
//! funcgraph_entry (id 11)  8 func  16 depth(u32)  20 pad  24 args[] (empty)   = 24 bytes
//! funcgraph_exit  (id 10)  8 func  16 depth(u32)  20 overrun(u32)
//!                          24 calltime(u64)  32 rettime(u64)                  = 40 bytes
//! function        (id 1)   8 ip  16 parent_ip  24 args[] (empty)              = 24 bytes
//! ```
//!
//! # Contract
//!
//! Encoding only (this room knows no tracer): the runtime that keeps the
//! depth and reads the clock is `crate::frontends::funcgraph`.

use super::event::{Array, CommonFields, EncodeError, EventType, Field, Record};
use super::printk::{fmt_addr, site_by_fmt_addr, Site};

/// ftrace's type id of `function` entries (kernel `TRACE_FN`).
pub const FUNCTION_ID: u16 = 1;
/// ftrace's type id of `funcgraph_exit` (kernel `TRACE_GRAPH_RET`).
pub const FUNCGRAPH_EXIT_ID: u16 = 10;
/// ftrace's type id of `funcgraph_entry` (kernel `TRACE_GRAPH_ENT`).
pub const FUNCGRAPH_ENTRY_ID: u16 = 11;

/// Size of a `funcgraph_entry` or `function` record (the C struct's size,
/// padded to its 8-byte alignment).
const ENTRY_LEN: usize = 24;
/// Size of a `funcgraph_exit` record.
const EXIT_LEN: usize = 40;

const fn field(name: &'static str, c_type: &'static str, offset: u16, size: u16) -> Field {
    Field {
        name,
        c_type,
        offset,
        size,
        signed: false,
        array: Array::None,
    }
}

const ARGS: Field = Field {
    name: "args",
    c_type: "unsigned long",
    offset: 24,
    size: 0,
    signed: false,
    array: Array::Flexible,
};

static ENTRY_FIELDS: [Field; 3] = [
    field("func", "unsigned long", 8, 8),
    field("depth", "unsigned int", 16, 4),
    ARGS,
];

static EXIT_FIELDS: [Field; 5] = [
    field("func", "unsigned long", 8, 8),
    field("depth", "unsigned int", 16, 4),
    field("overrun", "unsigned int", 20, 4),
    field("calltime", "unsigned long long", 24, 8),
    field("rettime", "unsigned long long", 32, 8),
];

static FUNCTION_FIELDS: [Field; 3] = [
    field("ip", "unsigned long", 8, 8),
    field("parent_ip", "unsigned long", 16, 8),
    ARGS,
];

/// The kernel's `ftrace/funcgraph_entry` event type.
pub static FUNCGRAPH_ENTRY_EVENT: &EventType = &EventType {
    name: "funcgraph_entry",
    system: "ftrace",
    id: FUNCGRAPH_ENTRY_ID,
    fields: &ENTRY_FIELDS,
    print_fmt: "\"--> %ps (%u)\", (void *)REC->func, REC->depth",
};

/// The kernel's `ftrace/funcgraph_exit` event type (its `over:` prints
/// `depth`, as the kernel's does).
pub static FUNCGRAPH_EXIT_EVENT: &EventType = &EventType {
    name: "funcgraph_exit",
    system: "ftrace",
    id: FUNCGRAPH_EXIT_ID,
    fields: &EXIT_FIELDS,
    print_fmt: "\"<-- %ps (%u) (start: %llx  end: %llx) over: %u\", (void *)REC->func, \
                REC->depth, REC->calltime, REC->rettime, REC->depth",
};

/// The kernel's `ftrace/function` event type.
pub static FUNCTION_EVENT: &EventType = &EventType {
    name: "function",
    system: "ftrace",
    id: FUNCTION_ID,
    fields: &FUNCTION_FIELDS,
    print_fmt: "\" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip",
};

/// The fake address of function site `id`: its `fmt` address, which the
/// kallsyms section names with the site's format (the function's name).
#[must_use]
pub const fn func_addr(id: u32) -> u64 {
    fmt_addr(id)
}

/// The name of the function at `addr` (a [`func_addr`]), if this process
/// knows its site (its own, or imported from a session).
#[must_use]
pub fn func_name(addr: u64) -> Option<&'static str> {
    site_by_fmt_addr(addr).map(Site::format)
}

/// Whether a site's format can be a kallsyms name: one non-empty word
/// without `%` (a function's name or path). Every such site gets a
/// kallsyms line at its `fmt` address; that address is printed with `%ps`
/// only by the function records, so naming a plain-word `trace!` format
/// there too is harmless.
#[must_use]
pub fn is_symbol(fmt: &str) -> bool {
    !fmt.is_empty() && fmt.len() <= 512 && !fmt.contains(|c: char| c.is_whitespace() || c == '%')
}

/// Writes the common header and the first field of a function record.
#[inline]
fn head<'o>(
    out: &'o mut [u8],
    total: usize,
    id: u16,
    common: &CommonFields,
    first: u64,
) -> Result<&'o mut [u8], EncodeError> {
    let have = out.len();
    let out = out
        .get_mut(..total)
        .ok_or(EncodeError::BufferTooSmall { need: total, have })?;
    common.write(id, out);
    out[8..16].copy_from_slice(&first.to_ne_bytes());
    Ok(out)
}

/// A `funcgraph_entry` record: `site`'s function entered at `depth`.
#[derive(Debug, Clone, Copy)]
pub struct FuncEntry {
    /// The function's site.
    pub site: &'static Site,
    /// Traced functions enclosing it on this thread.
    pub depth: u32,
}

impl Record for FuncEntry {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        FUNCGRAPH_ENTRY_EVENT
    }
    #[inline]
    fn needs_registration(&self) -> bool {
        false
    }
    #[inline]
    fn prepare(&self) {
        // The site id, assigned on first use (an error shows up in encode).
        let _ = self.site.id();
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        ENTRY_LEN
    }
    #[inline]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let func = func_addr(self.site.id()?);
        let out = head(out, ENTRY_LEN, FUNCGRAPH_ENTRY_ID, common, func)?;
        out[16..20].copy_from_slice(&self.depth.to_ne_bytes());
        out[20..24].fill(0);
        Ok(ENTRY_LEN)
    }
}

/// A `funcgraph_exit` record: `site`'s function returned.
#[derive(Debug, Clone, Copy)]
pub struct FuncExit {
    /// The function's site.
    pub site: &'static Site,
    /// Its depth (as at entry).
    pub depth: u32,
    /// Trace clock at entry, nanoseconds.
    pub calltime: u64,
    /// Trace clock at return, nanoseconds.
    pub rettime: u64,
}

impl Record for FuncExit {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        FUNCGRAPH_EXIT_EVENT
    }
    #[inline]
    fn needs_registration(&self) -> bool {
        false
    }
    #[inline]
    fn prepare(&self) {
        let _ = self.site.id();
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        EXIT_LEN
    }
    #[inline]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let func = func_addr(self.site.id()?);
        let out = head(out, EXIT_LEN, FUNCGRAPH_EXIT_ID, common, func)?;
        out[16..20].copy_from_slice(&self.depth.to_ne_bytes());
        // overrun: the kernel counts returns lost off its shadow stack;
        // the depth here lives in the guard, nothing overruns.
        out[20..24].fill(0);
        out[24..32].copy_from_slice(&self.calltime.to_ne_bytes());
        out[32..40].copy_from_slice(&self.rettime.to_ne_bytes());
        Ok(EXIT_LEN)
    }
}

/// A `function` record (the plain function tracer): `site`'s function
/// entered, called from `parent` (the innermost enclosing traced
/// function, or none).
#[derive(Debug, Clone, Copy)]
pub struct FuncCall {
    /// The function's site.
    pub site: &'static Site,
    /// The enclosing traced function's address ([`func_addr`]), 0 if none.
    pub parent: u64,
}

impl Record for FuncCall {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        FUNCTION_EVENT
    }
    #[inline]
    fn needs_registration(&self) -> bool {
        false
    }
    #[inline]
    fn prepare(&self) {
        let _ = self.site.id();
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        ENTRY_LEN
    }
    #[inline]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let ip = func_addr(self.site.id()?);
        let out = head(out, ENTRY_LEN, FUNCTION_ID, common, ip)?;
        out[16..24].copy_from_slice(&self.parent.to_ne_bytes());
        Ok(ENTRY_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's format text of each (own fields and print fmt), from
    /// /sys/kernel/tracing/events/ftrace/*/format.
    #[test]
    fn formats_are_the_kernels() {
        let e = FUNCGRAPH_ENTRY_EVENT.format_text();
        assert!(e.contains("ID: 11\n"), "{e}");
        assert!(e.contains(
            "\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\
             \tfield:unsigned int depth;\toffset:16;\tsize:4;\tsigned:0;\n\
             \tfield:unsigned long args[];\toffset:24;\tsize:0;\tsigned:0;\n"
        ));
        assert!(e.ends_with("print fmt: \"--> %ps (%u)\", (void *)REC->func, REC->depth\n"));
        let x = FUNCGRAPH_EXIT_EVENT.format_text();
        assert!(x.contains("ID: 10\n"), "{x}");
        assert!(x.contains(
            "\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;\n\
             \tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n\
             \tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n"
        ));
        assert!(x.ends_with(
            "print fmt: \"<-- %ps (%u) (start: %llx  end: %llx) over: %u\", (void *)REC->func, \
             REC->depth, REC->calltime, REC->rettime, REC->depth\n"
        ));
        let f = FUNCTION_EVENT.format_text();
        assert!(f.contains("ID: 1\n"));
        assert!(
            f.ends_with("print fmt: \" %ps <-- %ps\", (void *)REC->ip, (void *)REC->parent_ip\n")
        );
    }

    #[test]
    fn records_encode_the_kernels_layout() {
        static S: Site = Site::new("fg_layout_fn", &[], "t.rs", 1);
        let mut buf = [0xaau8; 64];
        let c = CommonFields::default();
        let n = FuncExit {
            site: &S,
            depth: 3,
            calltime: 100,
            rettime: 250,
        }
        .encode(&c, &mut buf)
        .unwrap();
        assert_eq!(n, 40);
        let addr = u64::from_ne_bytes(buf[8..16].try_into().unwrap());
        assert_eq!(func_name(addr), Some("fg_layout_fn"));
        assert_eq!(u32::from_ne_bytes(buf[16..20].try_into().unwrap()), 3);
        assert_eq!(u32::from_ne_bytes(buf[20..24].try_into().unwrap()), 0);
        assert_eq!(u64::from_ne_bytes(buf[24..32].try_into().unwrap()), 100);
        assert_eq!(u64::from_ne_bytes(buf[32..40].try_into().unwrap()), 250);
        let n = FuncEntry { site: &S, depth: 2 }
            .encode(&c, &mut buf)
            .unwrap();
        assert_eq!((n, CommonFields::read(&buf).unwrap().0), (24, 11));
        assert!(FuncEntry { site: &S, depth: 2 }
            .encode(&c, &mut [0u8; 23])
            .is_err());
    }

    #[test]
    fn symbols_are_single_words() {
        assert!(is_symbol("fib") && is_symbol("a::b::<T>"));
        assert!(!is_symbol("") && !is_symbol("x=%d") && !is_symbol("two words"));
    }
}
