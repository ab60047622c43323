//! Names for the return addresses of stack traces (`user_stack` records),
//! from the process's memory map and the ELF files it maps.
//!
//! A trace records addresses only ([`crate::stack`]). An export turns the
//! map of the process that recorded them (`/proc/PID/maps`: which file
//! offset of which file sits at which address, so that ASLR is undone)
//! into kallsyms lines (`ADDR t NAME`, sorted by address) for the
//! trace.dat's kallsyms section: `trace-cmd report` resolves the records'
//! `%ps` through that section, and `ringtrace report` names each caller
//! by the nearest symbol at or below it ([`super::tracedat::stack_text`]).
//!
//! Symbols are the ELF symbol tables' function symbols (`.symtab`, else
//! `.dynsym`), read with the `object` crate, Rust names demangled with
//! `rustc-demangle`. A file that cannot be read or parsed gives no names
//! (its addresses print as numbers), never an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Tracer;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

/// The kallsyms lines for the stacks of an export of `tracer` (`stacks`:
/// it holds `user_stack` records): for an in-process tracer, the symbols
/// of this process's map now (the export runs in the process that
/// recorded, whose map is the one the addresses belong to). Empty
/// otherwise: a session's writers are other processes, whose maps this
/// process does not have (their addresses print as numbers).
pub(crate) fn for_tracer(tracer: &Tracer, stacks: bool) -> String {
    if !stacks || tracer.inner.session().is_some() {
        return String::new();
    }
    match std::fs::read_to_string("/proc/self/maps") {
        Ok(maps) => kallsyms_of_maps(&maps),
        Err(_) => String::new(),
    }
}

/// One executable, file-backed mapping of a `/proc/PID/maps` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// Start address.
    pub start: u64,
    /// One past the end.
    pub end: u64,
    /// File offset mapped at `start`.
    pub offset: u64,
    /// The file.
    pub path: String,
}

/// The executable, file-backed mappings of a `/proc/PID/maps` text
/// (`start-end perms offset dev inode path`); other lines are skipped.
pub(crate) fn exec_mappings(maps: &str) -> Vec<Mapping> {
    maps.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut it = line.split_whitespace();
    let range = it.next()?;
    let perms = it.next()?;
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let _dev = it.next()?;
    let _inode = it.next()?;
    let path: Vec<&str> = it.collect();
    let path = path.join(" ");
    if !perms.contains('x') || !path.starts_with('/') {
        return None;
    }
    let (s, e) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        offset,
        path,
    })
}

/// The kallsyms text (`ADDR t NAME` lines, sorted) of every function symbol
/// of the files executable in `maps`, at the addresses `maps` puts them.
pub(crate) fn kallsyms_of_maps(maps: &str) -> String {
    let mappings = exec_mappings(maps);
    let mut by_addr: BTreeMap<u64, String> = BTreeMap::new();
    let mut paths: Vec<&str> = mappings.iter().map(|m| m.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let Ok(file) = object::File::parse(&*data) else {
            continue;
        };
        let maps_of: Vec<&Mapping> = mappings.iter().filter(|m| m.path == path).collect();
        for (file_off, name) in function_symbols(&file) {
            let at = maps_of.iter().find_map(|m| {
                let rel = file_off.checked_sub(m.offset)?;
                (rel < m.end.saturating_sub(m.start)).then_some(m.start + rel)
            });
            if let Some(addr) = at {
                by_addr.entry(addr).or_insert(name);
            }
        }
    }
    let mut out = String::with_capacity(by_addr.len() * 48);
    for (addr, name) in by_addr {
        let _ = writeln!(out, "{addr:016x} t {name}");
    }
    out
}

/// `(file offset, display name)` of each function symbol of `file`.
fn function_symbols(file: &object::File<'_>) -> Vec<(u64, String)> {
    let segments: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| {
            let (off, size) = s.file_range();
            (s.address(), off, size)
        })
        .collect();
    let to_offset = |vaddr: u64| {
        segments.iter().find_map(|&(addr, off, size)| {
            let rel = vaddr.checked_sub(addr)?;
            if rel < size {
                off.checked_add(rel)
            } else {
                None
            }
        })
    };
    let mut syms: Vec<_> = file.symbols().collect();
    if syms.is_empty() {
        syms = file.dynamic_symbols().collect();
    }
    syms.iter()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            Some((to_offset(s.address())?, display_name(name)))
        })
        .collect()
}

/// A symbol's name as a kallsyms line holds it: demangled (without the
/// hash), with no white space (the line's fields are split on it).
fn display_name(raw: &str) -> String {
    let d = format!("{:#}", rustc_demangle::demangle(raw));
    d.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_keep_executable_files_only() {
        let maps = "\
55d0c0a00000-55d0c0a20000 r--p 00000000 08:01 42 /usr/bin/prog
55d0c0a20000-55d0c0a80000 r-xp 00020000 08:01 42 /usr/bin/prog
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
7ffd3000-7ffd4000 rw-p 00000000 00:00 0
bad line
";
        assert_eq!(
            exec_mappings(maps),
            vec![Mapping {
                start: 0x55d0c0a20000,
                end: 0x55d0c0a80000,
                offset: 0x20000,
                path: "/usr/bin/prog".into(),
            }]
        );
    }

    #[inline(never)]
    fn a_symbol_to_find() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn this_process_names_its_own_functions_at_their_addresses() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let text = kallsyms_of_maps(&maps);
        let addr = a_symbol_to_find as *const () as usize as u64;
        let line = format!("{addr:016x} t ");
        let found = text.lines().find(|l| l.starts_with(&line)).unwrap_or("");
        assert!(found.ends_with("::a_symbol_to_find"), "{found:?}");
        assert_eq!(a_symbol_to_find(), 7);
    }

    #[test]
    fn unreadable_files_give_no_names() {
        let maps = "1000-2000 r-xp 00000000 08:01 42 /nonexistent/ringtrace-test\n";
        assert_eq!(kallsyms_of_maps(maps), "");
    }
}
