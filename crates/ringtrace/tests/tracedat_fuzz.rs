//! Bad input never panics, hangs or allocates without bound: truncated and
//! bit-flipped trace.dat files (v6 and v7) fed to the reader must give
//! either records or a `TraceDatError`.
mod tracedat_common;

use proptest::prelude::*;
use ringtrace::tracedat::{PageError, TraceDatError, TraceDatReader, TraceDatVersion};
use std::io::Cursor;
use tracedat_common::*;

/// Reads everything the reader can give: metadata, every CPU alone, the
/// merge, and field decoding plus text of each record. Returns the number
/// of items seen, or the first error.
fn read_all(file: Vec<u8>) -> Result<usize, TraceDatError> {
    let mut r = TraceDatReader::new(Cursor::new(file))?;
    let mut n = 0;
    for i in 0..r.info().cpus.len() {
        for item in r.cpu_records(i)? {
            item?;
            n += 1;
        }
    }
    let items: Vec<_> = r.records().collect::<Result<_, _>>()?;
    for item in &items {
        r.info().render(item)?;
    }
    Ok(n + items.len())
}

fn sample_files() -> [Vec<u8>; 2] {
    let s = sample();
    [
        write_file(&meta(TraceDatVersion::V6), &s),
        write_file(&meta(TraceDatVersion::V7), &s),
    ]
}

#[test]
fn intact_files_read_fully() {
    let expected = 2 * (sample().records.len() + 2); // + 2 lost markers, per CPU pass and merged
    for f in sample_files() {
        assert_eq!(read_all(f).unwrap(), expected);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for f in sample_files() {
        // Every cut inside the metadata, then a sample of cuts in the pages.
        let meta_end = f.len() - f.len() % 4096;
        let cuts =
            (0..f.len().min(meta_end.min(8192))).chain((meta_end.min(8192)..f.len()).step_by(97));
        for cut in cuts {
            let r = read_all(f[..cut].to_vec());
            assert!(
                r.is_err(),
                "cut at {cut} of {} read without error: {r:?}",
                f.len()
            );
        }
    }
}

#[test]
fn hostile_sizes_are_refused_without_allocating() {
    let [v6, _] = sample_files();
    // The header_page size (u64 right after "header_page\0" at offset 24 + 12)
    // set to 2^62: must be a Truncated error, not an allocation attempt.
    let at = v6.windows(12).position(|w| w == b"header_page\0").unwrap() + 12;
    let mut bad = v6.clone();
    bad[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(
        TraceDatReader::new(Cursor::new(bad)),
        Err(TraceDatError::Truncated {
            section: "header_page",
            ..
        })
    ));
}

#[test]
fn v7_options_loop_is_refused() {
    let [_, v7] = sample_files();
    // The file ends with the DONE option's u64 "next options section"
    // offset (0); point it back at the first options section.
    let ptr_at = v7.windows(5).position(|w| w == b"none\0").unwrap() + 6;
    let first = u64::from_le_bytes(v7[ptr_at..ptr_at + 8].try_into().unwrap());
    let mut bad = v7.clone();
    let n = bad.len();
    bad[n - 8..].copy_from_slice(&first.to_le_bytes());
    let e = TraceDatReader::new(Cursor::new(bad)).unwrap_err();
    assert!(e.to_string().contains("loop"), "{e}");
}

#[test]
fn bad_page_error_names_cpu_page_and_offset() {
    let [v6, _] = sample_files();
    let r = TraceDatReader::new(Cursor::new(v6.clone())).unwrap();
    let cpu3 = r.info().cpus[3];
    // Page 1 of CPU 3: commit beyond the page's capacity.
    let page_at = (cpu3.offset + 4096) as usize;
    let mut bad = v6.clone();
    bad[page_at + 8..page_at + 16].copy_from_slice(&5000u64.to_le_bytes());
    let mut r = TraceDatReader::new(Cursor::new(bad)).unwrap();
    let err = r.records().find_map(|i| i.err()).unwrap();
    match err {
        TraceDatError::Page {
            cpu: 3,
            page: 1,
            offset,
            source:
                PageError::CommitTooLarge {
                    commit: 5000,
                    capacity: 4080,
                },
        } => assert_eq!(offset, page_at as u64),
        other => panic!("unexpected error {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn bit_flips_never_panic(which in 0usize..2, flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..6)) {
        let mut f = sample_files()[which].clone();
        // Bias half the flips into the metadata, where structure is dense.
        for (i, (pos, bit)) in flips.iter().enumerate() {
            let limit = if i % 2 == 0 { 4096.min(f.len()) } else { f.len() };
            let p = pos % limit;
            f[p] ^= 1 << bit;
        }
        let _ = read_all(f);
    }

    #[test]
    fn random_truncation_plus_flip_never_panics(which in 0usize..2, cut in any::<usize>(), pos in any::<usize>(), bit in 0u8..8) {
        let mut f = sample_files()[which].clone();
        let cut = cut % f.len();
        f.truncate(cut.max(1));
        let p = pos % f.len();
        f[p] ^= 1 << bit;
        let _ = read_all(f);
    }
}
