//! `#[traced]`: function-graph tracing of Rust functions for
//! [ringtrace](https://docs.rs/ringtrace), used as `#[ringtrace::traced]`.
//!
//! The attribute makes a function record its entry and its return as
//! ftrace's `funcgraph_entry` / `funcgraph_exit` records (the kernel's
//! `function_graph` tracer), with the thread's call depth and the call's
//! duration, into ringtrace's default tracer. `trace-cmd report` and
//! `ringtrace report` then print the call graph:
//!
//! ```text
//!                |  fib() {
//!                |    fib() {
//!      N.NNN us  |      fib();
//!      N.NNN us  |    }
//! ```
//!
//! # Forms
//!
//! - `#[traced]`: the function-graph tracer (entry and return, depth,
//!   duration).
//! - `#[traced(entry_only)]`: the plain function tracer (ftrace's
//!   `function` record: the function and its innermost traced caller).
//! - `#[traced(name = "Type::method")]`: the name shown (by default the
//!   function's own name).
//!
//! # Limits (compile errors naming them)
//!
//! - `async fn`: its body runs across polls, possibly on other threads,
//!   while the depth is per thread; trace the sync functions it calls.
//! - `const fn`: recording is not a `const` operation.
//!
//! The expansion needs the `ringtrace` crate under that name. The item is
//! read as tokens (no `syn`): qualifiers, `fn`, the name, the signature,
//! and the body, its last token.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Ident, Span, TokenStream as TokenStream2, TokenTree};
use quote::{quote, quote_spanned};

/// Records each call of the function as ftrace `funcgraph_entry` /
/// `funcgraph_exit` records (or, with `entry_only`, `function` records) in
/// ringtrace's default tracer. See the crate documentation.
#[proc_macro_attribute]
pub fn traced(attr: TokenStream, item: TokenStream) -> TokenStream {
    let result = parse_args(attr.into()).and_then(|args| expand(&args, item.into()));
    match result {
        Ok(t) => t.into(),
        Err((span, msg)) => quote_spanned!(span=> ::core::compile_error!(#msg);).into(),
    }
}

/// A compile error: where and what.
type Error = (Span, String);

/// The attribute's arguments.
struct Args {
    entry_only: bool,
    /// The name given with `name = "..."`.
    name: Option<String>,
}

/// `entry_only` and `name = "word"`, separated by commas.
fn parse_args(attr: TokenStream2) -> Result<Args, Error> {
    let mut args = Args {
        entry_only: false,
        name: None,
    };
    let mut it = attr.into_iter().peekable();
    while let Some(tt) = it.next() {
        let TokenTree::Ident(key) = &tt else {
            return Err((tt.span(), unknown(&tt.to_string())));
        };
        if key == "entry_only" {
            args.entry_only = true;
        } else if key == "name" {
            let eq = it.next();
            let lit = it.next();
            let word = match (&eq, &lit) {
                (Some(TokenTree::Punct(p)), Some(TokenTree::Literal(l))) if p.as_char() == '=' => {
                    plain_string(&l.to_string())
                }
                _ => None,
            };
            match word {
                Some(w) => args.name = Some(w),
                None => {
                    return Err((
                        lit.map_or(key.span(), |l| l.span()),
                        "#[traced(name = ..)]: expected one word in a plain string \
                         literal (the function's kallsyms name), e.g. name = \"Type::method\""
                            .to_string(),
                    ))
                }
            }
        } else {
            return Err((key.span(), unknown(&key.to_string())));
        }
        match it.next() {
            None => {}
            Some(TokenTree::Punct(p)) if p.as_char() == ',' => {}
            Some(other) => return Err((other.span(), unknown(&other.to_string()))),
        }
    }
    Ok(args)
}

fn unknown(what: &str) -> String {
    format!("#[traced]: unexpected `{what}` (expected `entry_only` or `name = \"..\"`)")
}

/// The text of a plain string literal (`"word"`) when it is one word
/// without escapes; `None` otherwise.
fn plain_string(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let ok = !inner.is_empty()
        && !inner.contains(|c: char| c.is_whitespace() || c == '\\' || c == '"' || c == '%');
    ok.then(|| inner.to_string())
}

/// The function with its body wrapped: a static site named after it, the
/// guard taken first (so it drops last, after the body's locals).
///
/// The item is read as tokens: attributes and qualifiers, `fn`, the name,
/// the rest of the signature, and the body, its last token, a `{ }` group.
fn expand(args: &Args, item: TokenStream2) -> Result<TokenStream2, Error> {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let body = match tokens.pop() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        other => {
            let span = other.map_or(Span::call_site(), |t| t.span());
            return Err((
                span,
                "#[ringtrace::traced] goes on a function with a body".into(),
            ));
        }
    };
    let fn_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i == "fn"))
        .ok_or((
            body.span(),
            "#[ringtrace::traced] goes on a function".to_string(),
        ))?;
    refuse_qualifiers(&tokens[..fn_at])?;
    let ident: Ident = match tokens.get(fn_at + 1) {
        Some(TokenTree::Ident(i)) => i.clone(),
        _ => {
            return Err((
                body.span(),
                "#[ringtrace::traced]: expected the function's name".into(),
            ))
        }
    };
    let name = args.name.clone().unwrap_or_else(|| ident.to_string());
    let enter = if args.entry_only {
        quote!(::ringtrace::funcgraph::call)
    } else {
        quote!(::ringtrace::funcgraph::enter)
    };
    let sig: TokenStream2 = tokens.into_iter().collect();
    Ok(quote! {
        #sig {
            static __RINGTRACE_TRACED_SITE: ::ringtrace::printk::Site =
                ::ringtrace::printk::Site::new(#name, &[], ::core::file!(), ::core::line!());
            let __ringtrace_traced_guard = #enter(&__RINGTRACE_TRACED_SITE);
            #body
        }
    })
}

/// Refuses `async fn` and `const fn`, saying why.
fn refuse_qualifiers(before_fn: &[TokenTree]) -> Result<(), Error> {
    for t in before_fn {
        let TokenTree::Ident(i) = t else { continue };
        if i == "async" {
            return Err((
                i.span(),
                "#[ringtrace::traced] does not support `async fn`: its body runs across polls, \
                 possibly on other threads, and the call depth is per thread; trace the sync \
                 functions it calls instead"
                    .into(),
            ));
        }
        if i == "const" {
            return Err((
                i.span(),
                "#[ringtrace::traced] cannot trace a `const fn`: recording is not a const \
                 operation"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(attr: &str, item: &str) -> Result<String, String> {
        let args = parse_args(attr.parse().unwrap()).map_err(|(_, m)| m)?;
        expand(&args, item.parse().unwrap())
            .map(|t| t.to_string())
            .map_err(|(_, m)| m)
    }

    #[test]
    fn async_and_const_fn_are_refused_naming_the_limit() {
        let e = expand_str("", "pub async fn f() -> u32 { 1 }").unwrap_err();
        assert!(
            e.contains("does not support `async fn`") && e.contains("per thread"),
            "{e}"
        );
        let e = expand_str("", "const fn f() -> u32 { 1 }").unwrap_err();
        assert!(e.contains("`const fn`"), "{e}");
    }

    #[test]
    fn the_body_is_wrapped_after_the_guard() {
        let out = expand_str(
            "",
            "#[inline] pub(crate) fn fib(n: u32) -> u64 { n as u64 }",
        )
        .unwrap();
        assert!(
            out.starts_with("# [inline] pub (crate) fn fib (n : u32) -> u64 {"),
            "{out}"
        );
        assert!(out.contains("Site :: new (\"fib\""), "{out}");
        assert!(out.contains(":: ringtrace :: funcgraph :: enter (& __RINGTRACE_TRACED_SITE)"));
        assert!(out.ends_with("{ n as u64 } }"), "{out}");
        let out = expand_str("entry_only, name = \"T::m\"", "fn m(&self) {}").unwrap();
        assert!(
            out.contains("funcgraph :: call") && out.contains("\"T::m\""),
            "{out}"
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(expand_str("entry_onyl", "fn f() {}")
            .unwrap_err()
            .contains("entry_onyl"));
        assert!(expand_str("name = \"two words\"", "fn f() {}").is_err());
        assert!(expand_str("name = 3", "fn f() {}").is_err());
        assert!(expand_str("", "struct S;").is_err());
    }
}
