//! Span begin and end events: the event types every front end uses to mark
//! where a span (a named stretch of time on one thread) starts and ends.
//!
//! # Contract with the exporters
//!
//! A span is a pair of events on the same context (thread):
//!
//! ```text
//! system     name         fields                                   id
//! ringtrace  span_begin   u64 id; __data_loc char[] name           SPAN_BEGIN_ID (4095)
//! ringtrace  span_end     u64 id; __data_loc char[] name           SPAN_END_ID   (4094)
//! ```
//!
//! `id` tells concurrent spans of the same name apart (the `tracing` layer
//! stores `tracing::span::Id::into_u64`); `name` is the span's name. On one
//! thread, begins and ends nest like a stack: the JSON exporter matches them
//! by system and name of the event type and turns each pair into a
//! Chrome-trace slice (`"ph":"B"` / `"ph":"E"`); trace.dat shows them as
//! ordinary events (`span_begin: id=1 name=request`).
//!
//! These types are not tied to the `tracing` crate: any front end (your own
//! code included) can record them, with the async-signal-safe
//! [`trace_event!`](crate::trace_event).
//!
//! # Reserved ids
//!
//! ringtrace keeps the top of the id space for its own event types:
//! [`SPAN_BEGIN_ID`], [`SPAN_END_ID`], [`LOG_ID`] (the `log` backend's
//! record), and [`DYNAMIC_IDS`] for the types the `tracing` layer makes per
//! call site. Declare your own events with ids below
//! [`DYNAMIC_IDS`]`.start()`.
//!
//! ```
//! use ringtrace::span::{SpanBegin, SpanEnd};
//! let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
//! ringtrace::trace_event!(&t, SpanBegin { id: 7, name: "load" });
//! ringtrace::trace_event!(&t, SpanEnd { id: 7, name: "load" });
//! let mut pipe = t.pipe();
//! assert!(pipe.next_line().unwrap().unwrap().ends_with(": span_begin: id=7 name=load\n"));
//! assert!(pipe.next_line().unwrap().unwrap().ends_with(": span_end: id=7 name=load\n"));
//! ```

use std::ops::RangeInclusive;

/// Id of [`SpanBegin`].
///
/// ```
/// assert_eq!(ringtrace::span::SpanBegin::EVENT_TYPE.id, ringtrace::span::SPAN_BEGIN_ID);
/// ```
#[doc(hidden)]
pub const SPAN_BEGIN_ID: u16 = 4095;

/// Id of [`SpanEnd`].
///
/// ```
/// assert_eq!(ringtrace::span::SpanEnd::EVENT_TYPE.id, ringtrace::span::SPAN_END_ID);
/// ```
#[doc(hidden)]
pub const SPAN_END_ID: u16 = 4094;

/// Id of the `log` backend's record type (`ringtrace/log`, crate feature
/// `log`), reserved here so it is taken whether or not the feature is on.
///
/// ```
/// assert_eq!(ringtrace::span::LOG_ID, 4093);
/// ```
#[doc(hidden)]
pub const LOG_ID: u16 = 4093;

/// Ids handed out, from the top down, to the event types the `tracing`
/// layer makes for call sites (one per call site, at its first event).
///
/// ```
/// assert!(ringtrace::span::DYNAMIC_IDS.contains(&4092));
/// assert!(!ringtrace::span::DYNAMIC_IDS.contains(&1000));
/// ```
#[doc(hidden)]
pub const DYNAMIC_IDS: RangeInclusive<u16> = 2048..=4092;

/// The name of the system of the span event types.
///
/// ```
/// assert_eq!(ringtrace::span::SpanEnd::EVENT_TYPE.system, ringtrace::span::SYSTEM);
/// ```
#[doc(hidden)]
pub const SYSTEM: &str = "ringtrace";

crate::declare_event! {
    /// A span begins (is entered) on this thread.
    ///
    /// ```
    /// let ty = ringtrace::span::SpanBegin::EVENT_TYPE;
    /// assert_eq!((ty.system, ty.name), ("ringtrace", "span_begin"));
    /// assert!(ty.format_text().contains("\tfield:__data_loc char[] name;"));
    /// assert!(ty.format_text().contains("\tfield:u64 id;"));
    /// ```
    pub struct SpanBegin<'a>: "ringtrace" / "span_begin" = 4095 {
        /// Tells spans of the same name apart.
        id: u64,
        /// The span's name.
        name: &'a str,
    }
}

crate::declare_event! {
    /// A span ends (is exited) on this thread.
    ///
    /// ```
    /// let ty = ringtrace::span::SpanEnd::EVENT_TYPE;
    /// assert_eq!((ty.system, ty.name), ("ringtrace", "span_end"));
    /// ```
    pub struct SpanEnd<'a>: "ringtrace" / "span_end" = 4094 {
        /// The id given to the matching [`SpanBegin`].
        id: u64,
        /// The span's name.
        name: &'a str,
    }
}

/// Registers [`SpanBegin`] and [`SpanEnd`] in the global
/// [`Registry`](crate::event::Registry) (recording one does it too; readers
/// need it to decode the records before any was written in this process).
///
/// ```
/// ringtrace::span::register();
/// assert!(ringtrace::event::Registry::global().get(ringtrace::span::SPAN_BEGIN_ID).is_some());
/// ```
#[doc(hidden)]
pub fn register() {
    let reg = crate::event::Registry::global();
    let _ = reg.register(SpanBegin::EVENT_TYPE);
    let _ = reg.register(SpanEnd::EVENT_TYPE);
}
