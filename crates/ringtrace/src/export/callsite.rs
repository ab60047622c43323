//! What a `tracing` call site's event type says about the call site: its
//! level, target, module path and source location, carried in the head of
//! the type's `print fmt` so that they reach every reader of a trace.dat
//! (trace-cmd prints them; the exporters parse them back).
//!
//! The `tracing` layer (`crate::layer`) writes the head with
//! [`write_head`]; the JSON, HTML and Perfetto exporters read it with
//! [`parse_head`]. The head is the start of the `print fmt` string literal:
//!
//! ```text
//! "<LEVEL>[ span] <target>[ mod=<module>] <file>:<line>: <fields ...>", <args ...>
//!  INFO   my_app::db src/db.rs:42: %s rows=%llu", __get_str(message), REC->rows
//!  DEBUG span my_app mod=my_app::io src/io.rs:7: span_id=%llu ...
//! ```
//!
//! - `LEVEL` is one of `ERROR WARN INFO DEBUG TRACE`;
//! - `span` marks a span's call site (its records start with `span_id`);
//! - `mod=` is there only when the module path differs from the target;
//! - `<file>` is `?` and `<line>` is 0 when `tracing` does not know them.
//!
//! Spaces, quotes, backslashes and control characters in the target, the
//! module and the file become `_` (the tokens are separated by spaces and
//! the head lives in a C string literal); `%` is written `%%` (the string
//! is a printf format) and read back as `%`.

use std::fmt::Write as _;

/// A call site, as its event type's `print fmt` head describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsiteHead {
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// Whether the call site is a span's.
    pub span: bool,
    /// The `tracing` target.
    pub target: String,
    /// The module path (the target when the head names none).
    pub module: String,
    /// The source file (`?` when unknown).
    pub file: String,
    /// The source line (0 when unknown).
    pub line: u32,
}

const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// Appends `s` to `out` as one head token (see the module docs).
fn push_token(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('?');
    }
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            ' ' | '"' | '\\' => out.push('_'),
            c if c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
}

/// Writes the head (without the opening quote) of call site `c` to `out`,
/// ending with `": "` (`":"` when `c` has no fields to follow).
///
/// ```
/// use ringtrace::export::callsite::{parse_head, write_head, CallsiteHead};
/// let c = CallsiteHead {
///     level: "INFO".into(), span: false, target: "app db".into(),
///     module: "app::db".into(), file: "src/db.rs".into(), line: 42,
/// };
/// let mut s = String::from("\"");
/// write_head(&mut s, &c);
/// assert_eq!(s, "\"INFO app_db mod=app::db src/db.rs:42:");
/// let back = parse_head(&format!("{s} %s\", __get_str(message)")).unwrap();
/// assert_eq!(back.target, "app_db");
/// assert_eq!((back.module.as_str(), back.line), ("app::db", 42));
/// ```
pub fn write_head(out: &mut String, c: &CallsiteHead) {
    out.push_str(&c.level);
    if c.span {
        out.push_str(" span");
    }
    out.push(' ');
    push_token(out, &c.target);
    if c.module != c.target {
        out.push_str(" mod=");
        push_token(out, &c.module);
    }
    out.push(' ');
    push_token(out, &c.file);
    let _ = write!(out, ":{}:", c.line);
}

/// Undoes [`push_token`]'s `%%`.
fn token(s: &str) -> String {
    s.replace("%%", "%")
}

/// The call site a `print fmt` text's head describes; `None` when the
/// text has no such head (an event type not made by the `tracing` layer,
/// or one made before heads existed).
///
/// ```
/// use ringtrace::export::callsite::parse_head;
/// let h = parse_head("\"WARN span app src/a.rs:9: span_id=%llu\", REC->span_id").unwrap();
/// assert!(h.span);
/// assert_eq!((h.level.as_str(), h.target.as_str(), h.module.as_str()), ("WARN", "app", "app"));
/// assert_eq!((h.file.as_str(), h.line), ("src/a.rs", 9));
/// assert!(parse_head("\"id=%llu\", REC->id").is_none());
/// ```
pub fn parse_head(print_fmt: &str) -> Option<CallsiteHead> {
    let s = print_fmt.strip_prefix('"')?;
    let mut toks = s.split(' ');
    let level = toks.next()?;
    if !LEVELS.contains(&level) {
        return None;
    }
    let mut next = toks.next()?;
    let span = next == "span";
    if span {
        next = toks.next()?;
    }
    let target = token(next);
    let mut next = toks.next()?;
    let module = match next.strip_prefix("mod=") {
        Some(m) => {
            let m = token(m);
            next = toks.next()?;
            m
        }
        None => target.clone(),
    };
    // `<file>:<line>:`, possibly followed by the closing quote.
    let loc = next.trim_end_matches('"').trim_end_matches(',');
    let loc = loc.strip_suffix(':')?;
    let (file, line) = loc.rsplit_once(':')?;
    Some(CallsiteHead {
        level: level.to_string(),
        span,
        target,
        module,
        file: token(file),
        line: line.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_read_back() {
        let c = CallsiteHead {
            level: "TRACE".into(),
            span: true,
            target: "t%x".into(),
            module: "t%x".into(),
            file: "?".into(),
            line: 0,
        };
        let mut s = String::from("\"");
        write_head(&mut s, &c);
        assert_eq!(s, "\"TRACE span t%%x ?:0:");
        s.push('"');
        assert_eq!(parse_head(&s), Some(c));
        assert!(parse_head("\"LOUD x a.rs:1: \"").is_none());
        assert!(parse_head("\"INFO x a.rs: \"").is_none());
    }
}
