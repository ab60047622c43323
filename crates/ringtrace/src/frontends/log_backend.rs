//! A [`log::Log`] backend recording `log` records into ringtrace's rings
//! (crate feature `log`).
//!
//! ```
//! ringtrace::log_backend::init().unwrap();
//! log::warn!(target: "disk", "{} bytes left", 512);
//! let text = ringtrace::global().unwrap().pipe().read_to_string().unwrap();
//! assert!(text.contains(": log: level=WARN target=disk message=512 bytes left\n"), "{text}");
//! ```
//!
//! # Beside `tracing_subscriber::fmt().init()`
//!
//! A program has one `log` logger. `tracing_subscriber`'s `init()` (with
//! its `tracing-log` feature, on by default) installs tracing-log's
//! `LogTracer` as that logger: `log` records then become `tracing` events.
//! In that setup, route them into ringtrace through the `tracing` layer:
//! add [`RingtraceLayer`](crate::layer::RingtraceLayer) to the subscriber.
//! [`init`] then fails with [`InitError::LoggerAlreadySet`], whose message
//! says so.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
//!     .with(ringtrace::layer::RingtraceLayer::default())
//!     .init(); // also installs LogTracer: log records become tracing events
//! log::warn!(target: "disk", "{} is full", "sda");
//! let err = ringtrace::log_backend::init().unwrap_err();
//! assert!(err.to_string().contains("add ringtrace::layer::RingtraceLayer"), "{err}");
//! let text = ringtrace::global().unwrap().pipe().read_to_string().unwrap();
//! assert!(text.contains("message=sda is full"), "{text}");
//! assert!(text.contains("log_target=disk"), "{text}");
//! ```
//!
//! # The record
//!
//! Every `log` record becomes one event of type [`LOG_EVENT`]
//! (`ringtrace/log`, id [`LOG_ID`]) with three
//! `__data_loc char[]` fields: `level` (`ERROR` .. `TRACE`), `target` and
//! `message`, written through the tracer's ordinary record path (the same
//! one [`trace_event!`](crate::trace_event) uses).
//!
//! # What it costs
//!
//! `log` hands the message over as `fmt::Arguments`, which borrow the
//! caller's values and cannot be kept. When the message is a plain string
//! literal (`Arguments::as_str` is `Some`) it is copied as it is; otherwise
//! it is **formatted at the call** into a 1024-byte stack buffer (no heap
//! allocation in this backend; text beyond the buffer is cut at a character
//! boundary and counted by [`truncated`]). That formatting is the main cost
//! of a `log` record here, as it is for any `log` backend; for messages
//! formatted only when read, use ringtrace's [`trace!`](crate::trace)
//! (binary printk).
//!
//! # Not async-signal-safe
//!
//! The `log` facade itself is safe to call anywhere, but the values a
//! message formats may allocate or lock (`Display` impls), and the first
//! record of a thread leases its context (which allocates). **Do not log
//! from a signal handler**: use ringtrace's own macros there
//! ([`trace!`](crate::trace), [`trace_event!`](crate::trace_event), after
//! [`signal_scope`](crate::signal_scope)), which take no lock and allocate
//! nothing once the thread has its context.

use crate::sync::{AtomicU64, Ordering};
use std::fmt::Write as _;

use log::{LevelFilter, Log, Metadata, Record as LogRecord, SetLoggerError};

use crate::event::{Array, EventType, Field};
use crate::frontends::frontend::RecordBuf;
use crate::span::LOG_ID;
use crate::tracer::Tracer;

static LOG_FIELDS: [Field; 3] = [
    Field {
        name: "level",
        c_type: "__data_loc char[]",
        offset: 8,
        size: 4,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "target",
        c_type: "__data_loc char[]",
        offset: 12,
        size: 4,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "message",
        c_type: "__data_loc char[]",
        offset: 16,
        size: 4,
        signed: false,
        array: Array::None,
    },
];

/// Size of the fixed part of a log record (three `__data_loc` words; the
/// record buffer rounds it up to 24).
const FIXED: usize = 20;

/// The event type of `log` records.
///
/// ```
/// let t = ringtrace::log_backend::LOG_EVENT.format_text();
/// assert!(t.contains("\tfield:__data_loc char[] message;\toffset:16;\tsize:4;\tsigned:0;\n"));
/// ```
pub static LOG_EVENT: &EventType = &EventType {
    name: "log",
    system: crate::span::SYSTEM,
    id: LOG_ID,
    fields: &LOG_FIELDS,
    print_fmt: "\"%s %s: %s\", __get_str(level), __get_str(target), __get_str(message)",
};

static TRUNCATED: AtomicU64 = AtomicU64::new(0);

/// Records (of every logger in the process) whose message was cut to fit.
///
/// ```
/// assert_eq!(ringtrace::log_backend::truncated(), 0);
/// ```
#[must_use]
pub fn truncated() -> u64 {
    TRUNCATED.load(Ordering::Relaxed)
}

/// A `log` backend writing into a tracer; see the [module docs](self).
///
/// ```
/// use log::Log;
/// let t: &'static ringtrace::Tracer =
///     Box::leak(Box::new(ringtrace::TracerConfig::new().max_contexts(1).build().unwrap()));
/// let logger = ringtrace::log_backend::RingtraceLogger::new(t, log::LevelFilter::Info);
/// logger.log(&log::Record::builder().level(log::Level::Error).target("x").args(format_args!("boom")).build());
/// logger.log(&log::Record::builder().level(log::Level::Debug).target("x").args(format_args!("quiet")).build());
/// let text = t.pipe().read_to_string().unwrap();
/// assert!(text.contains("level=ERROR target=x message=boom"));
/// assert!(!text.contains("quiet"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RingtraceLogger {
    tracer: Option<&'static Tracer>,
    level: LevelFilter,
}

impl RingtraceLogger {
    /// A logger recording records up to `level` into `tracer`.
    ///
    /// ```
    /// let t: &'static ringtrace::Tracer = Box::leak(Box::new(ringtrace::Tracer::new(Default::default()).unwrap()));
    /// let _l = ringtrace::log_backend::RingtraceLogger::new(t, log::LevelFilter::Info);
    /// ```
    #[must_use]
    pub fn new(tracer: &'static Tracer, level: LevelFilter) -> Self {
        RingtraceLogger {
            tracer: Some(tracer),
            level,
        }
    }

    /// A logger recording records up to `level` into the default tracer
    /// ([`crate::global`], made on first use).
    ///
    /// ```
    /// let _l = ringtrace::log_backend::RingtraceLogger::global(log::LevelFilter::Trace);
    /// ```
    #[must_use]
    pub const fn global(level: LevelFilter) -> Self {
        RingtraceLogger {
            tracer: None,
            level,
        }
    }
}

impl Log for RingtraceLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &LogRecord<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut storage = crate::frontends::frontend::storage();
        let mut buf = RecordBuf::new(&mut storage, FIXED);
        buf.put_str(8, record.level().as_str());
        buf.put_str(12, record.target());
        let args = record.args();
        match args.as_str() {
            Some(s) => buf.put_str(16, s),
            None => {
                let start = buf.begin_str();
                let _ = write!(buf, "{args}");
                buf.end_str(16, start);
            }
        }
        if buf.truncated() {
            TRUNCATED.fetch_add(1, Ordering::Relaxed);
        }
        let rec = buf.record(LOG_EVENT);
        // Errors are counted by the tracer (see `TracerStats`).
        let _ = match self.tracer {
            Some(t) => t.record(&rec),
            None => crate::context::record_global(&rec),
        };
    }

    fn flush(&self) {}
}

static GLOBAL_LOGGER: RingtraceLogger = RingtraceLogger::global(LevelFilter::Trace);

/// Why the logger could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The program has a `log` logger already.
    #[error(
        "another `log` logger is installed already, and a program has only one. \
         If it is tracing-log's LogTracer (installed by tracing_subscriber's `init()`), \
         log records already become tracing events: add ringtrace::layer::RingtraceLayer \
         to that subscriber to record them (see ringtrace::log_backend)"
    )]
    LoggerAlreadySet(#[source] SetLoggerError),
}

/// Installs a logger recording every level into the default tracer and
/// sets `log`'s maximum level to `Trace`. Fails if a logger is already set
/// (see "Beside `tracing_subscriber::fmt().init()`" above).
///
/// ```
/// ringtrace::log_backend::init().unwrap();
/// let err = ringtrace::log_backend::init().unwrap_err();
/// assert!(err.to_string().starts_with("another `log` logger is installed already"));
/// ```
pub fn init() -> Result<(), InitError> {
    install(&GLOBAL_LOGGER, LevelFilter::Trace)
}

/// Installs a logger recording records up to `level` into `tracer`, and
/// sets `log`'s maximum level to `level`. Fails if a logger is already set.
///
/// ```
/// let t: &'static ringtrace::Tracer = Box::leak(Box::new(ringtrace::Tracer::new(Default::default()).unwrap()));
/// ringtrace::log_backend::init_with(t, log::LevelFilter::Warn).unwrap();
/// log::warn!("kept");
/// log::info!("filtered");
/// let text = t.pipe().read_to_string().unwrap();
/// assert!(text.contains("message=kept") && !text.contains("filtered"));
/// ```
pub fn init_with(tracer: &'static Tracer, level: LevelFilter) -> Result<(), InitError> {
    let logger: &'static RingtraceLogger = Box::leak(Box::new(RingtraceLogger::new(tracer, level)));
    install(logger, level)
}

fn install(logger: &'static RingtraceLogger, level: LevelFilter) -> Result<(), InitError> {
    // Readers need the type even before the first record.
    let _ = crate::event::Registry::global().register(LOG_EVENT);
    log::set_logger(logger).map_err(InitError::LoggerAlreadySet)?;
    log::set_max_level(level);
    Ok(())
}
