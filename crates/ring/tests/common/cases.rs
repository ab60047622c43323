//! `test_cases!`: one `#[test]` a case of a shared test body, as a table.
//! Included by path in the loom tests, which do not build `common`.
// Not every test crate that builds `common` declares cases.
#![allow(unused_macros, unused_imports)]

/// Declares, for each `name => (args);` row, a test `name` that calls
/// `body(args)`; attributes and doc comments before a row stay on its test:
///
/// ```text
/// test_cases! { run:
///     /// Two writers.
///     two_writers => (2, false);
/// }
/// ```
macro_rules! test_cases {
    ($body:ident: $($(#[$attr:meta])* $name:ident => ($($arg:expr),* $(,)?);)+) => {
        $(
            $(#[$attr])*
            #[test]
            fn $name() {
                $body($($arg),*);
            }
        )+
    };
}

pub(crate) use test_cases;
