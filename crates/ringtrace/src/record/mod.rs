//! The record room: what a recorded event *is*, independent of where it is
//! stored or who records it.
//!
//! # Terms
//!
//! - **Event type**: static metadata of one kind of event (id, system,
//!   name, fields) and its ftrace `format` text ([`event`]).
//! - **Registry**: the process's table of event types by id ([`event`]).
//! - **Site**: one binary printk call site: its format and argument kinds,
//!   given an id on first use ([`printk`]).
//! - **Span**: begin/end event types any front end can record ([`span`]).
//!
//! # Contract
//!
//! This room is the bottom layer of the crate: it knows no tracer and no
//! session, and imports nothing from the other rooms (only from the ring
//! crate and the standard library). The tracer, the readers, the exporters
//! and the sessions build on it.

pub mod event;
pub mod funcgraph;
pub mod printk;
pub(crate) mod publish;
pub mod span;
pub mod stack;
pub(crate) mod stack_walk;
