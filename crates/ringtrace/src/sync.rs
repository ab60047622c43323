//! The one sync facade of the tracing core: every atomic the crate uses
//! comes from here, as the ring's come from `ringtrace_ring`'s `sync`.
//! Nothing else in the crate imports `std::sync::atomic` directly.
//!
//! These are always `std`'s atomics: the crate's statics (the default
//! tracer, the event registry, the printk site table) need `const`
//! constructors, which loom's atomics lack, and the sessions need the ring
//! crate's shared-memory rings, which it leaves out under `cfg(loom)`; so
//! the crate as a whole is not built on loom. The protocols that are model-checked live
//! instead in small modules that depend on nothing but this facade
//! (`crate::sync`): the lease slots (`tracer/lease.rs`) and the
//! publish-once registry slots (`record/publish.rs`). The loom tests
//! (`tests/loom_lease.rs`, `tests/loom_registry.rs`, built with
//! `--cfg ringtrace_loom`) compile those modules alone, with a `sync`
//! module of their own that maps these names to loom's, so the model
//! checker sees every load, store and compare-and-swap of the code that
//! runs here.

pub(crate) use std::sync::atomic::{
    compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
