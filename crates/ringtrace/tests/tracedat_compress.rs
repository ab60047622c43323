//! Compressed trace.dat v7 files (zstd, zlib): files `trace-cmd convert
//! --compression zstd` made are read with the events of the uncompressed
//! file; files ringtrace compresses are reported by the real `trace-cmd`
//! exactly as the uncompressed ones; corrupt or lying compressed blocks
//! are clear errors, never a panic or an unbounded allocation.
//!
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH. The
//! Debian trace-cmd 3.1.6 is built with zstd only (`trace-cmd list -c`),
//! so zlib files are checked by walking their blocks with `flate2` here.
mod tracedat_common;

use std::io::{Cursor, Read};
use std::path::Path;

use ringtrace::tracedat::{
    convert_with, Compression, ConvertOptions, PageError, TraceDatError, TraceDatMeta,
    TraceDatReader, TraceDatVersion, TraceDatWriter, TraceItem,
};
use tracedat_common::*;

/// The sample, plus 24 pages on CPU 0 so that its data spans three
/// 10-page chunks.
fn long_sample() -> Sample {
    let mut s = sample();
    let mut ts = T0 + 30_000;
    for page in 0..24u64 {
        let mut p = PageBuilder::new(ts);
        for i in 0..100u64 {
            let data = p.event(ts, &fixed(100, page * 100 + i, i as u32, 1));
            s.records.push(Expected { cpu: 0, ts, data });
            ts += 10;
        }
        s.pages[0].push(p.finish());
    }
    // The records are grouped by CPU, in page order.
    s.records.sort_by_key(|e| e.cpu);
    s
}

fn items_of(file: &[u8]) -> Vec<TraceItem> {
    let mut r = TraceDatReader::new(Cursor::new(file.to_vec())).unwrap();
    r.records().collect::<Result<_, _>>().unwrap()
}

fn lost_of(items: &[TraceItem]) -> Vec<(u32, Option<u64>)> {
    items
        .iter()
        .filter_map(|i| match i {
            TraceItem::Lost { cpu, count, .. } => Some((*cpu, *count)),
            TraceItem::Event(_) => None,
        })
        .collect()
}

fn meta_z(c: Option<Compression>) -> TraceDatMeta {
    let mut m = meta(TraceDatVersion::V7);
    m.compression = c;
    m
}

fn report(file: &Path) -> Vec<String> {
    let out = trace_cmd_ok(&["report", "-t", "-i", file.to_str().unwrap()]);
    out.lines().map(|l| l.trim_end().to_string()).collect()
}

#[test]
fn trace_cmd_zstd_file_reads_with_the_uncompressed_events() {
    let s = long_sample();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.dat");
    let zstd = dir.path().join("zstd.dat");
    std::fs::write(&plain, write_file(&meta(TraceDatVersion::V6), &s)).unwrap();
    trace_cmd_ok(&[
        "convert",
        "-i",
        plain.to_str().unwrap(),
        "-o",
        zstd.to_str().unwrap(),
        "--file-version",
        "7",
        "--compression",
        "zstd",
    ]);
    let zfile = std::fs::read(&zstd).unwrap();
    let pfile = std::fs::read(&plain).unwrap();
    assert!(zfile.len() * 3 < pfile.len(), "trace-cmd compressed it");

    let r = TraceDatReader::new(Cursor::new(zfile.clone())).unwrap();
    assert_eq!(r.info().compression, Some(Compression::Zstd));
    assert_eq!(r.info().comm(200), Some("worker two"));
    assert_eq!(r.info().events.len(), 3);
    let cpu0 = r.info().cpus.iter().find(|c| c.cpu == 0).unwrap();
    assert_eq!(cpu0.size, 26 * PAGE_SIZE as u64, "decompressed size");

    let (want, got) = (items_of(&pfile), items_of(&zfile));
    assert_eq!(events_of(&got), events_of(&want));
    assert_eq!(events_of(&got).len(), s.records.len());
    assert_eq!(lost_of(&got), [(3, Some(7)), (3, None)]);
}

#[test]
fn ringtrace_compressed_files_report_in_trace_cmd_as_the_uncompressed() {
    let s = long_sample();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.dat");
    let zstd = dir.path().join("zstd.dat");
    let pfile = write_file(&meta(TraceDatVersion::V7), &s);
    let zfile = write_file(&meta_z(Some(Compression::Zstd)), &s);
    std::fs::write(&plain, &pfile).unwrap();
    std::fs::write(&zstd, &zfile).unwrap();
    assert!(zfile.len() * 3 < pfile.len());
    let want = report(&plain);
    assert_eq!(want.len(), s.records.len() + 3, "cpus= line, 2 loss lines");
    assert_eq!(report(&zstd), want);
    let summary = trace_cmd_ok(&["dump", "--summary", "-i", zstd.to_str().unwrap()]);
    assert!(
        summary.contains("zstd\t[Compression algorithm]"),
        "{summary}"
    );
    // And back: ringtrace reads its own compressed file.
    assert_eq!(events_of(&items_of(&zfile)), events_of(&items_of(&pfile)));
}

#[test]
fn convert_compresses_and_decompresses_keeping_every_page() {
    let s = long_sample();
    let dir = tempfile::tempdir().unwrap();
    let v6 = write_file(&meta(TraceDatVersion::V6), &s);
    let want = events_of(&items_of(&v6));
    let mut seen = Vec::new();
    let opts = ConvertOptions {
        version: TraceDatVersion::V7,
        compression: Some(Compression::Zstd),
    };
    let mut r = TraceDatReader::new(Cursor::new(v6.clone())).unwrap();
    let z = convert_with(&mut r, Cursor::new(Vec::new()), opts, |d, t| {
        seen.push((d, t))
    })
    .unwrap()
    .into_inner();
    // Progress goes from 0 to every page of the input (30 of them).
    assert_eq!(seen.first(), Some(&(0, 30)));
    assert_eq!(seen.last(), Some(&(30, 30)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(events_of(&items_of(&z)), want);

    // zstd -> zlib -> uncompressed v6, each read with the same events;
    // trace-cmd reports the last as the original.
    let mut r = TraceDatReader::new(Cursor::new(z)).unwrap();
    let opts = ConvertOptions {
        version: TraceDatVersion::V7,
        compression: Some(Compression::Zlib),
    };
    let zl = convert_with(&mut r, Cursor::new(Vec::new()), opts, |_, _| {})
        .unwrap()
        .into_inner();
    assert_eq!(events_of(&items_of(&zl)), want);
    let mut r = TraceDatReader::new(Cursor::new(zl)).unwrap();
    assert_eq!(r.info().compression, Some(Compression::Zlib));
    let back = convert_with(
        &mut r,
        Cursor::new(Vec::new()),
        ConvertOptions::default(),
        |_, _| {},
    )
    .unwrap()
    .into_inner();
    let (a, b) = (dir.path().join("a.dat"), dir.path().join("b.dat"));
    std::fs::write(&a, &v6).unwrap();
    std::fs::write(&b, &back).unwrap();
    assert_eq!(report(&b), report(&a));
}

#[test]
fn compression_needs_v7() {
    let mut m = meta(TraceDatVersion::V6);
    m.compression = Some(Compression::Zstd);
    let e = TraceDatWriter::new(Cursor::new(Vec::new()), &m).unwrap_err();
    assert!(e.to_string().contains("needs trace.dat version 7"), "{e}");
}

/// A section or chunk block found by walking a file: the offset of its
/// 8-byte header, its compressed and declared sizes.
#[derive(Debug, Clone, Copy)]
struct Block {
    at: usize,
    zsize: u32,
    size: u32,
}

fn le32(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(f[at..at + 4].try_into().unwrap())
}

/// Walks a little-endian v7 file from its first section (independently of
/// the reader): the compressed metadata blocks (by section id) and the
/// chunks of the BUFFER section's CPU data.
fn walk(f: &[u8]) -> (Vec<(u16, Block)>, Vec<Block>) {
    let mut p = 10;
    p += f[p..].iter().position(|&c| c == 0).unwrap() + 1; // version
    p += 6; // endian, long size, page size
    for _ in 0..2 {
        p += f[p..].iter().position(|&c| c == 0).unwrap() + 1; // codec, version
    }
    p += 8; // options offset
    let (mut sections, mut chunks) = (Vec::new(), Vec::new());
    while p + 16 <= f.len() {
        let id = u16::from_le_bytes([f[p], f[p + 1]]);
        let flags = u16::from_le_bytes([f[p + 2], f[p + 3]]);
        let size = u64::from_le_bytes(f[p + 8..p + 16].try_into().unwrap()) as usize;
        let body = p + 16;
        if flags & 1 != 0 && id == 3 {
            // BUFFER: CPU blocks start page-aligned after the header.
            let mut q = body.next_multiple_of(PAGE_SIZE);
            while q < body + size {
                let count = le32(f, q);
                q += 4;
                for _ in 0..count {
                    let b = Block {
                        at: q,
                        zsize: le32(f, q),
                        size: le32(f, q + 4),
                    };
                    chunks.push(b);
                    q += 8 + b.zsize as usize;
                }
                q = q.next_multiple_of(PAGE_SIZE);
            }
        } else if flags & 1 != 0 {
            let b = Block {
                at: body,
                zsize: le32(f, body),
                size: le32(f, body + 4),
            };
            sections.push((id, b));
        }
        p = body + size;
    }
    (sections, chunks)
}

#[test]
fn zlib_files_are_zlib_streams_in_trace_cmds_layout() {
    let s = long_sample();
    let f = write_file(&meta_z(Some(Compression::Zlib)), &s);
    let (sections, chunks) = walk(&f);
    let ids: Vec<u16> = sections.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [15, 16, 17, 18, 19, 20, 21], "STRINGS and metadata");
    // CPU 0: 26 pages in chunks of 10; CPUs 1 and 3: one chunk each.
    let sizes: Vec<u32> = chunks.iter().map(|c| c.size).collect();
    let ps = PAGE_SIZE as u32;
    assert_eq!(sizes, [10 * ps, 10 * ps, 6 * ps, ps, 3 * ps]);
    let mut pages = Vec::new();
    for b in sections.iter().map(|(_, b)| b).chain(&chunks) {
        let z = &f[b.at + 8..b.at + 8 + b.zsize as usize];
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(z)
            .read_to_end(&mut out)
            .expect("a zlib stream");
        assert_eq!(out.len(), b.size as usize);
        if chunks.iter().any(|c| c.at == b.at) {
            pages.extend(out);
        }
    }
    let want: Vec<u8> = s.pages.iter().flatten().flatten().copied().collect();
    assert_eq!(pages, want, "the chunks hold the pages unchanged");
    assert_eq!(
        events_of(&items_of(&f)),
        events_of(&items_of(&write_file(&meta(TraceDatVersion::V7), &s)))
    );
}

fn read_all(f: Vec<u8>) -> Result<Vec<Result<TraceItem, TraceDatError>>, TraceDatError> {
    let mut r = TraceDatReader::new(Cursor::new(f))?;
    Ok(r.records().collect())
}

#[test]
fn corrupt_or_lying_blocks_are_clear_errors() {
    let s = long_sample();
    let f = write_file(&meta_z(Some(Compression::Zstd)), &s);
    let (sections, chunks) = walk(&f);
    let (_, formats) = sections.iter().find(|(id, _)| *id == 18).unwrap();

    // Scrambled compressed bytes of the event formats section.
    let mut bad = f.clone();
    for b in &mut bad[formats.at + 12..formats.at + 20] {
        *b ^= 0x5a;
    }
    let e = read_all(bad).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(&e, TraceDatError::Decompress { section, offset, .. }
            if section == "event formats" && *offset == formats.at as u64),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("at file offset {}", formats.at)),
        "{msg}"
    );

    // A header that claims 4 GiB: refused before any allocation.
    let mut bad = f.clone();
    bad[formats.at + 4..formats.at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let msg = read_all(bad).unwrap_err().to_string();
    assert!(
        msg.contains("above the") && msg.contains("event formats"),
        "{msg}"
    );

    // A header that claims one byte more than the block holds.
    let mut bad = f.clone();
    let more = formats.size + 1;
    bad[formats.at + 4..formats.at + 8].copy_from_slice(&more.to_le_bytes());
    let msg = read_all(bad).unwrap_err().to_string();
    assert!(msg.contains(&format!("its header says {more}")), "{msg}");

    // A chunk that does not decompress costs its own pages only.
    let mut bad = f.clone();
    let c1 = chunks[1];
    for b in &mut bad[c1.at + 12..c1.at + 40] {
        *b ^= 0xa5;
    }
    let items = read_all(bad).unwrap();
    let errors: Vec<&TraceDatError> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 10, "one per page of the chunk: {errors:?}");
    for e in &errors {
        assert!(e.is_skippable());
        assert!(
            matches!(e, TraceDatError::Page { source: PageError::BadChunk { chunk: 1, offset, .. }, .. }
                if *offset == c1.at as u64),
            "{e}"
        );
    }
    let events = items
        .iter()
        .filter(|i| matches!(i, Ok(TraceItem::Event(_))))
        .count();
    assert_eq!(
        events,
        s.records.len() - 1000,
        "all but the chunk's 10 pages"
    );

    // A chunk claiming more than the reader accepts.
    let mut bad = f.clone();
    bad[c1.at + 4..c1.at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let msg = read_all(bad).unwrap_err().to_string();
    assert!(
        msg.contains("chunk 1") && msg.contains("above the"),
        "{msg}"
    );
}

#[test]
fn flipped_bytes_anywhere_never_panic() {
    let s = long_sample();
    for codec in [Compression::Zstd, Compression::Zlib] {
        let f = write_file(&meta_z(Some(codec)), &s);
        for at in (0..f.len()).step_by(13) {
            let mut bad = f.clone();
            bad[at] ^= 0xff;
            // Any result is fine; a panic fails the test.
            let _ = read_all(bad);
        }
    }
}
