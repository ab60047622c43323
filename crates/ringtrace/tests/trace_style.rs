//! `trace!` with a Rust-style format (`{}`, `{name}`) does not compile,
//! and the error names the C printf form to write instead. The expected
//! compiler output is `tests/ui/trace_rust_style.stderr` (regenerate with
//! `TRYBUILD=overwrite` after a deliberate change of the message).

#[test]
fn rust_style_format_is_a_compile_error_naming_the_c_form() {
    trybuild::TestCases::new().compile_fail("tests/ui/trace_rust_style.rs");
}
