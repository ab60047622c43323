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
//!      0.412 us  |      fib();
//!      1.950 us  |    }
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
//! The expansion needs the `ringtrace` crate under that name.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Error, ItemFn, LitStr, Token};

/// Records each call of the function as ftrace `funcgraph_entry` /
/// `funcgraph_exit` records (or, with `entry_only`, `function` records) in
/// ringtrace's default tracer. See the crate documentation.
#[proc_macro_attribute]
pub fn traced(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse::<Args>(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand(&args, func) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The attribute's arguments.
struct Args {
    entry_only: bool,
    name: Option<LitStr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args {
            entry_only: false,
            name: None,
        };
        while !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            if key == "entry_only" {
                args.entry_only = true;
            } else if key == "name" {
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                if lit.value().is_empty() || lit.value().contains(char::is_whitespace) {
                    return Err(Error::new(
                        lit.span(),
                        "#[traced(name = ..)]: the name must be one word (it is the \
                         function's kallsyms name)",
                    ));
                }
                args.name = Some(lit);
            } else {
                return Err(Error::new(
                    key.span(),
                    format!("#[traced]: unknown argument `{key}` (expected `entry_only` or `name = \"..\"`)"),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// The function with its body wrapped: a static site named after it, the
/// guard taken first (so it drops last, after the body's locals).
fn expand(args: &Args, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if let Some(a) = sig.asyncness {
        return Err(Error::new(
            a.span,
            "#[ringtrace::traced] does not support `async fn`: its body runs across polls, \
             possibly on other threads, and the call depth is per thread; trace the sync \
             functions it calls instead",
        ));
    }
    if let Some(c) = sig.constness {
        return Err(Error::new(
            c.span,
            "#[ringtrace::traced] cannot trace a `const fn`: recording is not a const operation",
        ));
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => LitStr::new(&sig.ident.to_string(), Span::call_site()),
    };
    let enter = if args.entry_only {
        quote!(::ringtrace::funcgraph::call)
    } else {
        quote!(::ringtrace::funcgraph::enter)
    };
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            static __RINGTRACE_TRACED_SITE: ::ringtrace::printk::Site =
                ::ringtrace::printk::Site::new(#name, &[], ::core::file!(), ::core::line!());
            let __ringtrace_traced_guard = #enter(&__RINGTRACE_TRACED_SITE);
            #block
        }
    })
}
