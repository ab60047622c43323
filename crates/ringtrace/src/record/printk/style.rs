//! The placeholder style check: a `trace!` format written with Rust's
//! `{}` placeholders instead of C printf is a compile error that names the
//! C form to write.
//!
//! # Why refuse rather than accept both
//!
//! The format is stored once per call site and exported as is in
//! trace.dat's `printk_formats`, where trace-cmd and KernelShark evaluate
//! it as C printf; a `{}` there would print literally. Translating `{}` to
//! a conversion needs the argument's type, which a `const` item of the
//! macro cannot name, and the C text must exist before the first event (a
//! signal handler may record it), so it cannot be made at run time either.
//!
//! # What counts as a Rust placeholder
//!
//! `{` then an optional name or position (`[A-Za-z0-9_]*`), an optional
//! `:` and spec without braces, then `}`: `{}`, `{0}`, `{name}`, `{:?}`,
//! `{x:>8}`. Other braces are C text and stay legal: `{ }`, `{%d}`,
//! `{"k": %d}`. Nothing here runs when recording: the check is a `const`
//! of `bprintk!`'s expansion.
//!
//! # The check at compile time
//!
//! The unit tests below check the message; these check that the macro
//! refuses at compile time, as a const-evaluation error (E0080), both a
//! `{}` format with arguments (which the argument count check refuses
//! too) and an inline capture, which has no argument and no conversion,
//! so that only this check stands between it and a trace printing `{id}`:
//!
//! ```compile_fail,E0080
//! let (id, us) = (42u64, 17u64);
//! ringtrace::trace!("request {} took {} us", id, us);
//! ```
//!
//! ```compile_fail,E0080
//! ringtrace::trace!("request {id}");
//! ```
//!
//! and that the C form of the same line compiles:
//!
//! ```
//! let (id, us) = (42u64, 17u64);
//! ringtrace::trace!("request %llu took %llu us", id, us);
//! ```

/// The byte offset of the first Rust-style placeholder in `fmt`, if any.
///
/// ```
/// use ringtrace::printk::rust_placeholder;
/// assert_eq!(rust_placeholder("took {} us"), Some(5));
/// assert_eq!(rust_placeholder("took %llu us {%d}"), None);
/// ```
#[must_use]
pub const fn rust_placeholder(fmt: &str) -> Option<usize> {
    let f = fmt.as_bytes();
    let mut i = 0;
    while i < f.len() {
        if f[i] == b'{' && placeholder_end(f, i + 1) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether the bytes from `i` (just after a `{`) close a Rust placeholder.
const fn placeholder_end(f: &[u8], mut i: usize) -> bool {
    while i < f.len() && (f[i].is_ascii_alphanumeric() || f[i] == b'_') {
        i += 1;
    }
    if i < f.len() && f[i] == b':' {
        i += 1;
        while i < f.len() && f[i] != b'}' {
            if f[i] == b'{' {
                return false;
            }
            i += 1;
        }
    }
    i < f.len() && f[i] == b'}'
}

/// What the compile error says: the C conversions to write instead.
const RUST_STYLE_MESSAGE: &str =
    "trace!: the format uses Rust `{}` placeholders, but it is C printf \
    (trace-cmd evaluates it): write %d for i32, %u for u32, %lld / %llu for i64 / u64, \
    %zu for usize, %x for hex, %s for &str, %c for char, %f for f64, %p for a pointer, \
    %% for a percent sign, e.g. trace!(\"request %llu took %llu us\", id, us); \
    see ringtrace::printk";

/// The compile error `bprintk!` (so `trace!`) gives for a Rust-style
/// format; does nothing for any other. Evaluated in a `const`, where the
/// panic is a compile error showing this message.
pub const fn refuse_rust_style(fmt: &str) {
    if rust_placeholder(fmt).is_some() {
        panic!("{}", RUST_STYLE_MESSAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_placeholders_found() {
        for (fmt, at) in [
            ("{}", 0),
            ("request {} took {} us", 8),
            ("x={x}", 2),
            ("{0} then {1}", 0),
            ("v={:?}", 2),
            ("v={value:>8}", 2),
            ("v={:#x}", 2),
            ("%d and {}", 7),
            ("{{}}", 1),
        ] {
            assert_eq!(rust_placeholder(fmt), Some(at), "{fmt}");
        }
    }

    #[test]
    fn c_braces_stay_legal() {
        for fmt in [
            "",
            "plain",
            "%d %llu %s",
            "{ }",
            "{%d}",
            "{\"k\": %d}",
            "set {a, b}",
            "{",
            "}",
            "{x",
            "{:",
            "{:{ }",
            "{-1}",
        ] {
            assert_eq!(rust_placeholder(fmt), None, "{fmt}");
        }
    }

    #[test]
    #[should_panic(expected = "write %d for i32")]
    fn refusal_names_the_c_form() {
        refuse_rust_style("took {} us");
    }

    #[test]
    fn c_formats_pass() {
        refuse_rust_style("took %llu us");
    }
}
