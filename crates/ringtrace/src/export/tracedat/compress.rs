//! Compressed `trace.dat` v7 files: the codecs and the block and chunk
//! layouts trace-cmd 3.x writes (`lib/trace-cmd/trace-compress.c`,
//! `trace-output.c`, `trace-input.c`).
//!
//! - The file header names the codec after the page size: str0 name
//!   (`"zstd"`, `"zlib"`, or `"none"`), str0 version. trace-cmd accepts any
//!   zstd version, and a zlib one whose major number is not above its own.
//! - A section whose header has flag bit 0 holds one **block**:
//!   u32 compressed size, u32 uncompressed size, the compressed bytes
//!   (`tracecmd_compress_block`). trace-cmd compresses the metadata
//!   sections and STRINGS, never OPTIONS (its reader accepts either).
//! - When the BUFFER section has the flag, each CPU's data (at the offset
//!   the BUFFER option gives, its size the compressed bytes) is **chunked**:
//!   u32 chunk count, then per chunk u32 compressed size, u32 uncompressed
//!   size and the bytes (`tracecmd_compress_copy_from`); the pages are the
//!   chunks' uncompressed bytes end to end. trace-cmd makes chunks of 10
//!   pages.
//! - zstd blocks are zstd frames (trace-cmd leaves the content size out);
//!   zlib blocks are zlib streams (`compress2`).
//!
//! Memory: a block or chunk is decompressed as a stream that stops one
//! byte past the size its header declares, and that size is capped (256
//! MiB for a section; 64 pages, at least 1 MiB and at most 256 MiB, for a
//! chunk): a lying header costs at most the cap, never what it claims.

use std::io::Read;

use super::error::TraceDatError;

/// Pages per CPU-data chunk, as trace-cmd writes them
/// (`PAGES_IN_CHUNK` in `trace-output.c`).
pub(crate) const PAGES_PER_CHUNK: usize = 10;
/// Largest uncompressed metadata section the reader accepts.
pub(crate) const MAX_SECTION_BYTES: u32 = 256 << 20;
/// Largest uncompressed CPU-data chunk the reader accepts: trace-cmd's
/// chunks are 10 pages, so 64 pages of the largest page size leave room
/// for other writers while one chunk per CPU stays in memory.
pub(crate) fn max_chunk_bytes(page_size: u32) -> u64 {
    (64 * u64::from(page_size)).clamp(1 << 20, 256 << 20)
}

/// A codec of compressed `trace.dat` v7 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Zstandard frames (trace-cmd's preferred codec).
    Zstd,
    /// zlib streams (RFC 1950).
    Zlib,
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// `zstd` or `zlib`, as `trace-cmd convert --compression` names them.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zstd" => Ok(Compression::Zstd),
            "zlib" => Ok(Compression::Zlib),
            _ => Err(format!("unknown compression {s:?} (zstd or zlib)")),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Compression {
    /// The name in the file header.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Zlib => "zlib",
        }
    }

    /// The version text in the file header: the zstd library's version;
    /// for zlib, the format's major version `1`, which is all trace-cmd
    /// compares (`zlib_is_supported`).
    pub(crate) fn version(self) -> &'static str {
        match self {
            Compression::Zstd => zstd::zstd_safe::version_string(),
            Compression::Zlib => "1",
        }
    }

    /// The codec a file header names: `None` for `"none"` (or empty);
    /// an unknown name is an error.
    pub(crate) fn from_header(name: &str) -> Result<Option<Self>, TraceDatError> {
        match name {
            "" | "none" => Ok(None),
            "zstd" => Ok(Some(Compression::Zstd)),
            "zlib" => Ok(Some(Compression::Zlib)),
            _ => Err(TraceDatError::Compressed(name.to_string())),
        }
    }

    /// Compresses `data` into one frame or stream.
    pub(crate) fn compress(self, data: &[u8]) -> Result<Vec<u8>, TraceDatError> {
        let io = TraceDatError::io("compressing");
        match self {
            // With a checksum (trace-cmd leaves it out; its reader, and
            // ours, accept either): a corrupt frame is an error, never
            // pages that merely decode to the right length.
            Compression::Zstd => zstd::bulk::Compressor::new(zstd::DEFAULT_COMPRESSION_LEVEL)
                .and_then(|mut c| {
                    c.include_checksum(true)?;
                    c.compress(data)
                })
                .map_err(io),
            Compression::Zlib => {
                use std::io::Write;
                let mut e = flate2::write::ZlibEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::default(),
                );
                e.write_all(data)
                    .and_then(|()| e.finish())
                    .map_err(TraceDatError::io("compressing"))
            }
        }
    }

    /// Decompresses one block of `data` that must give exactly `expected`
    /// bytes; reads at most one byte more, so memory follows the real
    /// output, bounded by `expected + 1`. The error says what is wrong.
    pub(crate) fn decompress(self, data: &[u8], expected: u32) -> Result<Vec<u8>, String> {
        let limit = u64::from(expected) + 1;
        let mut out = Vec::new();
        let read = match self {
            Compression::Zstd => zstd::stream::read::Decoder::with_buffer(data)
                .and_then(|d| d.take(limit).read_to_end(&mut out)),
            Compression::Zlib => flate2::read::ZlibDecoder::new(data)
                .take(limit)
                .read_to_end(&mut out),
        };
        if let Err(e) = read {
            return Err(format!("{} data does not decompress: {e}", self.name()));
        }
        if out.len() as u64 != u64::from(expected) {
            return Err(format!(
                "{} data decompresses to {}{} bytes, its header says {expected}",
                self.name(),
                if out.len() as u64 == limit {
                    "more than "
                } else {
                    ""
                },
                out.len().min(expected as usize)
            ));
        }
        Ok(out)
    }
}

/// One compressed chunk of a CPU's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// File offset of the compressed bytes (after the chunk's 8-byte header).
    pub(crate) file_offset: u64,
    /// Compressed bytes.
    pub(crate) zsize: u32,
    /// Uncompressed bytes.
    pub(crate) size: u32,
    /// Offset of its first uncompressed byte in the CPU's page data.
    pub(crate) start: u64,
}

/// A block's 8-byte header in the file's byte order.
pub(crate) fn block_header(enc: super::layout::Enc, zsize: u32, size: u32) -> [u8; 8] {
    let mut h = Vec::with_capacity(8);
    enc.u32(&mut h, zsize);
    enc.u32(&mut h, size);
    let mut a = [0; 8];
    a.copy_from_slice(&h);
    a
}

/// `data` as one compressed block (header and bytes), as
/// `tracecmd_compress_block` writes it.
pub(crate) fn encode_block(
    codec: Compression,
    enc: super::layout::Enc,
    data: &[u8],
    what: &str,
) -> Result<Vec<u8>, TraceDatError> {
    let size = u32::try_from(data.len())
        .map_err(|_| TraceDatError::Usage(format!("{what} exceeds 4 GiB")))?;
    let z = codec.compress(data)?;
    let zsize = u32::try_from(z.len())
        .map_err(|_| TraceDatError::Usage(format!("compressed {what} exceeds 4 GiB")))?;
    let mut b = block_header(enc, zsize, size).to_vec();
    b.extend_from_slice(&z);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_round_trip_and_refuse_a_wrong_size() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        for c in [Compression::Zstd, Compression::Zlib] {
            let z = c.compress(&data).unwrap();
            assert!(z.len() < data.len() / 4, "{c}: {} bytes", z.len());
            assert_eq!(c.decompress(&z, data.len() as u32).unwrap(), data);
            let short = c.decompress(&z, 100).unwrap_err();
            assert!(short.contains("more than 100 bytes"), "{short}");
            let long = c.decompress(&z, data.len() as u32 + 1).unwrap_err();
            assert!(long.contains("its header says"), "{long}");
            let mut bad = z.clone();
            let mid = bad.len() / 2;
            bad.truncate(mid);
            assert!(c.decompress(&bad, data.len() as u32).is_err());
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(Compression::from_header("none").unwrap(), None);
        assert_eq!(
            Compression::from_header("zstd").unwrap(),
            Some(Compression::Zstd)
        );
        assert!(matches!(
            Compression::from_header("lz4"),
            Err(TraceDatError::Compressed(n)) if n == "lz4"
        ));
        assert_eq!("zlib".parse::<Compression>(), Ok(Compression::Zlib));
    }
}
