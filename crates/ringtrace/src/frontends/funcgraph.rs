//! The function tracers' runtime: what `#[ringtrace::traced]` expands to.
//!
//! A traced function starts with [`enter`] (the `function_graph` tracer)
//! or [`call`] (the plain `function` tracer) and keeps the returned guard
//! until it returns, by any path (a `return`, `?`, a panic unwinding):
//!
//! ```text
//! enter(site)        depth d = DEPTH; DEPTH = d + 1; parent = CURRENT; CURRENT = site
//!                    record funcgraph_entry { func, depth: d }; calltime = clock
//!   ... body ...
//! drop(guard)        rettime = clock; record funcgraph_exit { func, d, calltime, rettime }
//!                    DEPTH = d; CURRENT = parent
//! ```
//!
//! # Contract
//!
//! - Records into the default tracer ([`crate::global`], or the session of
//!   `RINGTRACE_SESSION`), through the same record path as `trace!`: no
//!   lock, no allocation once the thread has its context; a record that
//!   cannot be written is counted by the tracer, never returned, and the
//!   function runs on.
//! - Unlike the other front ends it is async-signal-safe: the depth and
//!   the current function are const-initialised thread-locals without a
//!   destructor (plain loads and stores), and the guard *restores* them
//!   rather than counting down. A handler that interrupts a traced
//!   function between two of the steps above sees depth `d` or `d + 1`
//!   and leaves it as it found it, so the interrupted function's depth and
//!   its exit stay right: handlers nest like a stack.
//! - calltime and rettime are the trace clock in nanoseconds (the tracer's
//!   conversion for the TSC), as the kernel's `trace_clock_local`.

use std::cell::Cell;

use crate::default_tracer::record_global;
use crate::record::funcgraph::{func_addr, FuncCall, FuncEntry, FuncExit};
use crate::record::printk::Site;
use crate::tracer::global_if_exists;

thread_local! {
    /// Traced functions entered and not yet returned on this thread.
    /// Written only by this thread (and its signal handlers, which restore it).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The innermost traced function's address (`func_addr`), 0 outside any:
    /// the `parent_ip` of a `function` record.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// The default tracer's clock now, in nanoseconds; 0 when there is none
/// (its records were then refused and counted).
#[inline]
fn now_ns() -> u64 {
    match global_if_exists() {
        Some(t) => {
            let c = t.clock();
            c.to_ns(c.now())
        }
        None => 0,
    }
}

/// The address of `site`'s function, 0 if it can have no id.
#[inline]
fn addr_of(site: &'static Site) -> u64 {
    site.id().map(func_addr).unwrap_or(0)
}

/// A traced call of the `function_graph` tracer; dropping it records the
/// return.
#[derive(Debug)]
#[must_use = "the function's return is recorded when the guard drops"]
pub struct Graph {
    site: &'static Site,
    depth: u32,
    calltime: u64,
    parent: u64,
}

/// Enters `site`'s function: records its `funcgraph_entry` at this
/// thread's depth and starts its clock.
#[inline]
pub fn enter(site: &'static Site) -> Graph {
    let depth = DEPTH.get();
    DEPTH.set(depth.saturating_add(1));
    let parent = CURRENT.replace(addr_of(site));
    let _ = record_global(&FuncEntry { site, depth });
    Graph {
        site,
        depth,
        calltime: now_ns(),
        parent,
    }
}

impl Drop for Graph {
    #[inline]
    fn drop(&mut self) {
        let rettime = now_ns();
        let _ = record_global(&FuncExit {
            site: self.site,
            depth: self.depth,
            calltime: self.calltime,
            rettime,
        });
        DEPTH.set(self.depth);
        CURRENT.set(self.parent);
    }
}

/// A traced call of the plain `function` tracer (entries only); dropping
/// it makes the caller the current function again.
#[derive(Debug)]
#[must_use = "the caller becomes the current function again when the guard drops"]
pub struct Call {
    parent: u64,
}

/// Enters `site`'s function: records its `function` entry, with the
/// innermost enclosing traced function as the parent.
#[inline]
pub fn call(site: &'static Site) -> Call {
    let parent = CURRENT.replace(addr_of(site));
    let _ = record_global(&FuncCall { site, parent });
    Call { parent }
}

impl Drop for Call {
    #[inline]
    fn drop(&mut self) {
        CURRENT.set(self.parent);
    }
}

/// This thread's current depth: traced functions entered and not
/// returned (for tests and for code that wants to check its nesting).
#[must_use]
pub fn depth() -> u32 {
    DEPTH.get()
}
