//! Binary printk, the write side: what `bprintk!` and `trace!` record, and
//! the registry that names their call sites. The read side (formatting a
//! record's arguments with its format, the trace.dat texts) is the fmt
//! room's (`fmt::printf`, `fmt::printk`); the public `ringtrace::printk`
//! module joins the two.
//!
//! # Terms
//!
//! - **Format**: a C printf format, checked at compile time ([`parse`]).
//! - **Site**: one call site's `static`: format, argument kinds, file,
//!   line, and an id given on first use ([`site`]).
//! - **Arguments**: the values a call passes, packed as the kernel's
//!   `vbin_printf` packs them ([`args`]).
//! - **Bprint record**: ftrace's `bprint` entry: the site's id as two fake
//!   addresses, then the packed arguments ([`bprint`]).
//! - **Marker record**: ftrace's `print` entry: an address and a text
//!   ([`marker`]).
//!
//! # Contract
//!
//! Inside: `site` and `args` import `parse`; `bprint` imports those
//! three; `marker` imports `args` and `site`. Outside: only the record
//! room's `event` (the event types `print` and `bprint` are defined there,
//! beside the registry they seed); nothing here imports the fmt room or
//! anything above the record room. Everything a write calls is
//! async-signal-safe: no lock, no allocation, no system call, no panic.

mod args;
mod bprint;
mod marker;
mod parse;
mod site;
mod style;

// Defined beside the registry they seed; documented here, their home
// for users.
#[doc(inline)]
#[doc(hidden)]
pub use crate::event::{BPRINT_EVENT, BPRINT_ID, PRINT_EVENT, PRINT_ID};
pub use args::{first_misfit, ArgList, ArgValue, BprintArg, BPRINT_ARGS_OFFSET};
pub use bprint::{Bprint, FromSite, KindsSource, SiteKinds};
pub use marker::Print;
#[doc(hidden)]
pub use marker::MARKER_IP;
pub use parse::{arg_kinds, count_args, fits, trace_cmd_compatible, ArgKind, MAX_WIDTH};
pub use site::{
    fmt_addr, import_site, ip_addr, site_by_fmt_addr, site_by_id, sites, Site, AMBIGUOUS_FORMAT,
    FMT_ADDR_BASE, IP_BASE, MAX_SITES,
};
pub use style::{refuse_rust_style, rust_placeholder};

pub(crate) use args::align4;
pub(crate) use parse::{
    next_piece, ParseError, Piece, Spec, F_HASH, F_MINUS, F_PLUS, F_SPACE, F_ZERO,
};
pub(crate) use site::{share_ids, site_count};
