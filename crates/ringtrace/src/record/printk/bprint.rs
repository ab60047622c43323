//! The binary printk record, `bprintk!`'s result: a call site and its
//! arguments, encoded as the kernel's `bprint` entry (ftrace type 6).
//!
//! # Terms
//!
//! - **Bprint** ([`Bprint`]): a record ready to encode: its [`Site`] and
//!   its [`ArgList`].
//! - **Kinds source** ([`KindsSource`]): where the encoder finds the
//!   argument kinds: a per-call-site constant ([`SiteKinds`], what
//!   `bprintk!` generates) or the site at run time ([`FromSite`]).
//!
//! ```text
//! 0   common header (8 bytes, common_type = 6)
//! 8   u64 ip     call-site "address"  = IP_BASE + (id << 4)
//! 16  u64 fmt    format "address"     = FMT_ADDR_BASE + (id << 4)
//! 24  u32 buf[]  arguments, packed like vbin_printf (see `args`)
//!     record length rounded up to 4, padding zeroed
//! ```
//!
//! # Contract
//!
//! Encoding a `Bprint` is part of `trace!`'s write path: no allocation, no
//! lock, no system call, no panic; the site's id is taken on first use
//! with atomics only. With a [`SiteKinds`] source the record length and
//! the kinds are constants, so the encoder folds to plain stores even
//! where the record path is not inlined into the call site. Formatting
//! happens when the record is read (the fmt room), never here.

use std::marker::PhantomData;

use super::args::{
    align4, first_misfit, misfit_message, record_head, str_bytes, ArgList, BPRINT_ARGS_OFFSET,
};
use super::parse::ArgKind;
use super::site::{fmt_addr, ip_addr, Site};
use crate::event::{CommonFields, EncodeError, EventType, Record, BPRINT_EVENT, BPRINT_ID};

/// The argument kinds of one call site as a type-level constant (the
/// `bprintk!` macro implements it for a local type per call site), so that
/// argument types are checked against them at compile time.
///
/// ```
/// use ringtrace::printk::{ArgKind, SiteKinds};
/// struct K;
/// impl SiteKinds for K {
///     const KINDS: &'static [ArgKind] = &[ArgKind::Str];
/// }
/// assert_eq!(K::KINDS.len(), 1);
/// ```
pub trait SiteKinds {
    /// The kinds, in argument order.
    const KINDS: &'static [ArgKind];
}

/// Where a [`Bprint`] finds its argument kinds: a [`SiteKinds`] type (what
/// `bprintk!` uses; the kinds and the record length are then constants in
/// every function the record passes through, so the encoder's per-argument
/// `match`es fold away even where the compiler does not inline the record
/// path into the call site), or [`FromSite`] (read from the [`Site`] at run
/// time, for hand-made sites).
///
/// ```
/// use ringtrace::printk::{ArgKind, FromSite, KindsSource, Site};
/// static S: Site = Site::new("%d", &[ArgKind::Int32], "f.rs", 1);
/// assert_eq!(FromSite::kinds(&S), &[ArgKind::Int32]);
/// assert_eq!(FromSite::fixed_len(&S), Some(28));
/// ```
pub trait KindsSource {
    /// The kinds of `site`'s arguments.
    fn kinds(site: &Site) -> &'static [ArgKind];
    /// The encoded record length if no argument is a `%s` (then it does not
    /// depend on the values).
    fn fixed_len(site: &Site) -> Option<usize>;
}

/// [`KindsSource`] reading the kinds from the [`Site`] (what [`Bprint::new`]
/// uses).
///
/// ```
/// use ringtrace::printk::{ArgKind, FromSite, KindsSource, Site};
/// static S: Site = Site::new("%s", &[ArgKind::Str], "f.rs", 1);
/// assert_eq!(FromSite::fixed_len(&S), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FromSite;

impl KindsSource for FromSite {
    #[inline]
    fn kinds(site: &Site) -> &'static [ArgKind] {
        site.kinds
    }

    #[inline]
    fn fixed_len(site: &Site) -> Option<usize> {
        as_fixed(fixed_len(site.kinds))
    }
}

impl<K: SiteKinds> KindsSource for K {
    #[inline(always)]
    fn kinds(_: &Site) -> &'static [ArgKind] {
        K::KINDS
    }

    #[inline(always)]
    fn fixed_len(_: &Site) -> Option<usize> {
        const { as_fixed(fixed_len(K::KINDS)) }
    }
}

const fn as_fixed(len: usize) -> Option<usize> {
    if len == VARIABLE {
        None
    } else {
        Some(len)
    }
}

/// A `bprintk!` record ready to encode: its call site and its arguments.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let b = ringtrace::bprintk!("%s=%d", "x", -4);
/// let mut buf = [0u8; 64];
/// let n = b.encode(&CommonFields::default(), &mut buf).unwrap();
/// assert_eq!(ringtrace::printk::format_bprint(&buf[..n]).unwrap().1, "x=-4");
/// ```
#[derive(Debug)]
pub struct Bprint<A, K = FromSite> {
    site: &'static Site,
    args: A,
    /// Where the argument kinds come from (see [`KindsSource`]).
    kinds: PhantomData<K>,
}

/// `fixed_len` of a site with a `%s` argument.
const VARIABLE: usize = usize::MAX;

/// The encoded length of a bprint record whose arguments are `kinds`, if
/// it does not depend on the values (no `%s`), else [`VARIABLE`].
const fn fixed_len(kinds: &[ArgKind]) -> usize {
    let mut pos = 0;
    let mut i = 0;
    while i < kinds.len() {
        if matches!(kinds[i], ArgKind::Str) {
            return VARIABLE;
        }
        pos = align4(pos) + kinds[i].fixed_size();
        i += 1;
    }
    align4(BPRINT_ARGS_OFFSET + pos)
}

impl<A: ArgList> Bprint<A> {
    /// Pairs a site with its arguments; the argument kinds are read from the
    /// site when encoding (`bprintk!` uses [`Bprint::checked`] instead).
    ///
    /// ```
    /// use ringtrace::printk::{ArgKind, Bprint, Site};
    /// static S: Site = Site::new("%d", &[ArgKind::Int32], "f.rs", 1);
    /// let b = Bprint::new(&S, (5,));
    /// assert_eq!(ringtrace::event::Record::encoded_len(&b), 28);
    /// ```
    #[inline]
    pub fn new(site: &'static Site, args: A) -> Self {
        Bprint {
            site,
            args,
            kinds: PhantomData,
        }
    }
}

impl<A: ArgList, K: KindsSource> Bprint<A, K> {
    /// What `bprintk!` uses: the kinds come from `K` (a constant), and a
    /// compile-time check refuses an argument whose type does not fit its
    /// conversion (e.g. a `&str` for `%d`).
    ///
    /// ```
    /// use ringtrace::printk::{ArgKind, Bprint, Site, SiteKinds};
    /// const K: [ArgKind; 1] = [ArgKind::Int64];
    /// struct Kinds;
    /// impl SiteKinds for Kinds {
    ///     const KINDS: &'static [ArgKind] = &K;
    /// }
    /// static S: Site = Site::new("%lld", &K, "f.rs", 1);
    /// let b = Bprint::<_, Kinds>::checked(&S, (5i64,));
    /// assert_eq!(ringtrace::event::Record::encoded_len(&b), 32);
    /// ```
    #[inline(always)]
    pub fn checked(site: &'static Site, args: A) -> Self
    where
        K: SiteKinds,
    {
        const {
            if let Some(i) = first_misfit(K::KINDS, A::FITS) {
                panic!("{}", misfit_message(i));
            }
        }
        Bprint {
            site,
            args,
            kinds: PhantomData,
        }
    }

    /// The call site.
    ///
    /// ```
    /// assert_eq!(ringtrace::bprintk!("q").site().format(), "q");
    /// ```
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// Bytes of the packed arguments (before rounding the record to 4).
    #[inline]
    fn args_len(&self) -> usize {
        let kinds = K::kinds(self.site);
        let mut pos = 0usize;
        let _ = self.args.for_each(|i, v| {
            match kinds.get(i) {
                Some(ArgKind::Str) => pos += str_bytes(&v).map_or(0, <[u8]>::len) + 1,
                Some(k) => pos = align4(pos) + k.fixed_size(),
                None => {}
            }
            Ok(())
        });
        pos
    }
}

impl<A: ArgList, K: KindsSource> Record for Bprint<A, K> {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        BPRINT_EVENT
    }

    #[inline(always)]
    fn needs_registration(&self) -> bool {
        false
    }

    #[inline(always)]
    fn prepare(&self) {
        // The site id, assigned on first use (an error shows up in encode).
        let _ = self.site.id();
    }

    #[inline(always)]
    fn encoded_len(&self) -> usize {
        match K::fixed_len(self.site) {
            Some(len) => len,
            None => align4(BPRINT_ARGS_OFFSET + self.args_len()),
        }
    }

    #[inline(always)]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let id = self.site.id()?;
        let total = self.encoded_len();
        let out = record_head(out, total, BPRINT_ID, common, ip_addr(id))?;
        out[16..24].copy_from_slice(&fmt_addr(id).to_ne_bytes());
        let args = &mut out[BPRINT_ARGS_OFFSET..];
        let pos = self.args.encode_args(K::kinds(self.site), args)?;
        // Zero the tail padding (alignment gaps were zeroed by put_arg).
        if let Some(tail) = args.get_mut(pos..) {
            tail.fill(0);
        }
        Ok(total)
    }
}

/// Records a binary printk: `bprintk!("fmt", args...)` returns a [`Bprint`]
/// (a [`Record`]) that encodes the call site's format id and the raw argument
/// bytes, without allocating and without formatting. The format is a C printf
/// format (see the [module docs](crate::printk)); a malformed format or a
/// wrong argument count fails to compile.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let mut buf = [0u8; 128];
/// let rec = ringtrace::bprintk!("%s: %5.1f%% done, %llu left", "copy", 42.25, 7u64);
/// let n = rec.encode(&CommonFields::default(), &mut buf).unwrap();
/// let (_, text) = ringtrace::printk::format_bprint(&buf[..n]).unwrap();
/// assert_eq!(text, "copy:  42.2% done, 7 left");
/// ```
///
/// ```compile_fail
/// let _ = ringtrace::bprintk!("%d %d", 1); // too few arguments
/// ```
///
/// ```compile_fail
/// let _ = ringtrace::bprintk!("%q", 1); // unknown conversion
/// ```
///
/// ```compile_fail
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!("%d", "text"); // a string for %d
/// let _ = b.encoded_len();
/// ```
///
/// The format may be any constant `&str` expression, e.g. built with `concat!`:
///
/// ```
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!(concat!("[", module_path!(), "] %d"), 1);
/// let mut buf = [0u8; 64];
/// let n = b.encode(&Default::default(), &mut buf).unwrap();
/// assert!(ringtrace::printk::format_bprint(&buf[..n]).unwrap().1.ends_with("] 1"));
/// ```
#[doc(hidden)] // the record macros' plumbing: `trace!` records what it builds
#[macro_export]
macro_rules! bprintk {
    ($fmt:expr $(, $arg:expr)* $(,)?) => {{
        // The style check first: a Rust `{}` format fails here, with the
        // message naming the C form, before the count check below.
        const __BPRINTK_N: usize = {
            $crate::printk::refuse_rust_style($fmt);
            $crate::printk::count_args($fmt)
        };
        const __BPRINTK_KINDS: [$crate::printk::ArgKind; __BPRINTK_N] =
            $crate::printk::arg_kinds::<__BPRINTK_N>($fmt);
        const _: () = ::core::assert!(
            __BPRINTK_N == <[()]>::len(&[$($crate::__bprintk_unit!($arg)),*]),
            "bprintk!: the number of arguments does not match the format"
        );
        static __BPRINTK_SITE: $crate::printk::Site =
            $crate::printk::Site::new($fmt, &__BPRINTK_KINDS, ::core::file!(), ::core::line!());
        struct __BprintkKinds;
        impl $crate::printk::SiteKinds for __BprintkKinds {
            const KINDS: &'static [$crate::printk::ArgKind] = &__BPRINTK_KINDS;
        }
        $crate::printk::Bprint::<_, __BprintkKinds>::checked(&__BPRINTK_SITE, ($($arg,)*))
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bprintk_unit {
    ($e:expr) => {
        ()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_vbin_printf_compatible() {
        let b = crate::bprintk!("%d%s%llu%c", 1, "ab", 2u64, 'z');
        let mut buf = [0u8; 64];
        let common = CommonFields {
            flags: 1,
            preempt_count: 2,
            pid: 3,
        };
        let n = b.encode(&common, &mut buf).unwrap();
        let rec = &buf[..n];
        assert_eq!(CommonFields::read(rec), Some((BPRINT_ID, common)));
        let word = |at: usize| u64::from_ne_bytes(rec[at..at + 8].try_into().unwrap());
        let id = b.site().assigned_id().unwrap();
        assert_eq!((word(8), word(16)), (ip_addr(id), fmt_addr(id)));
        let mut want = Vec::new();
        want.extend_from_slice(&1u32.to_ne_bytes());
        want.extend_from_slice(b"ab\0\0"); // string, then one byte to realign
        want.extend_from_slice(&2u64.to_ne_bytes());
        want.extend_from_slice(&('z' as u32).to_ne_bytes());
        assert_eq!(&rec[BPRINT_ARGS_OFFSET..], &want[..]);
        assert_eq!(n, 24 + 20);
        // The event type's `buf` field is where the arguments start.
        let buf = BPRINT_EVENT.field("buf").map(|f| usize::from(f.offset));
        assert_eq!(buf, Some(BPRINT_ARGS_OFFSET));
    }

    #[test]
    fn arg_type_mismatch_is_an_error() {
        // `bprintk!` refuses these at compile time (see the compile_fail
        // doctest); `Bprint::new` with a hand-made site checks at encode time.
        static D: Site = Site::new("%d", &[ArgKind::Int32], "t.rs", 1);
        static SS: Site = Site::new("%s %s", &[ArgKind::Str, ArgKind::Str], "t.rs", 2);
        static F: Site = Site::new("%f", &[ArgKind::Float], "t.rs", 3);
        let mut buf = [0u8; 64];
        let c = CommonFields::default();
        assert_eq!(
            Bprint::new(&D, ("str",)).encode(&c, &mut buf),
            Err(EncodeError::ArgMismatch {
                index: 0,
                expected: "an integer"
            })
        );
        assert_eq!(
            Bprint::new(&SS, ("ok", 5)).encode(&c, &mut buf),
            Err(EncodeError::ArgMismatch {
                index: 1,
                expected: "a string or bool for %s"
            })
        );
        assert!(Bprint::new(&F, (1,)).encode(&c, &mut buf).is_err());
        // Too many arguments for the site's kinds.
        assert!(Bprint::new(&D, (1, 2)).encode(&c, &mut buf).is_err());
        // Fits by type, but not a char: caught when encoding.
        assert!(crate::bprintk!("%c", 0xd800u32)
            .encode(&c, &mut buf)
            .is_err());
        let mut small = [0u8; 27];
        assert_eq!(
            crate::bprintk!("%d", 1).encode(&c, &mut small),
            Err(EncodeError::BufferTooSmall { need: 28, have: 27 })
        );
        // The compile-time table agrees with what encoding accepts.
        assert_eq!(first_misfit(&[ArgKind::Int32], <(&str,)>::FITS), Some(0));
        assert_eq!(
            first_misfit(&[ArgKind::Str, ArgKind::Int64], <(bool, *const u8)>::FITS),
            None
        );
        assert_eq!(first_misfit(&[ArgKind::Ptr], <(f64,)>::FITS), Some(0));
    }
}
