//! The file as a stream of packets: a Perfetto trace is a concatenation of
//! `Trace.packet` fields (`0x0a len TracePacket`), so packets are written
//! as they are made, never a whole trace in memory.
//!
//! Two kinds of packets:
//!
//! - **Plain** packets (track descriptors, interned data, the sequence's
//!   first packet) go to the file as they are, so `protoc --decode` shows
//!   every track and name.
//! - **Event** packets are gathered in a batch; with compression on, each
//!   batch of at most [`BATCH`] bytes becomes one packet whose
//!   `compressed_packets` field holds the batch deflated (zlib), as
//!   Perfetto's own tracing service writes them (the field's comment asks
//!   for packets under 512 KiB). Without compression the batch is written
//!   as it is.
//!
//! Order is kept: a plain packet first flushes the batch, so every packet
//! reaches the file after the ones made before it (an interned name or a
//! track is always defined before its first use).

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

use super::encode::{varint_len, ProtoBuf};

/// `Trace.packet`.
pub const TRACE_PACKET: u32 = 1;
/// `TracePacket.compressed_packets`.
const COMPRESSED_PACKETS: u32 = 50;
/// Largest uncompressed batch: its deflated form stays under the 512 KiB
/// Perfetto asks of one `compressed_packets` packet even when the data
/// does not compress.
pub const BATCH: usize = 256 * 1024;

/// The output stream.
#[derive(Debug)]
pub struct PacketStream<W: Write> {
    out: W,
    /// Event packets not yet written, each as a `Trace.packet` field.
    pub batch: ProtoBuf,
    /// Scratch for one plain packet.
    plain: ProtoBuf,
    /// The zlib compressor, reused batch after batch (`None`: write
    /// batches uncompressed).
    zlib: Option<Compress>,
    zbuf: Vec<u8>,
    /// Bytes written to `out`.
    pub written: u64,
}

impl<W: Write> PacketStream<W> {
    /// A stream to `out`, compressing event batches when `compress`.
    pub fn new(out: W, compress: bool) -> Self {
        PacketStream {
            out,
            batch: ProtoBuf::with_capacity(BATCH + 4096),
            plain: ProtoBuf::with_capacity(4096),
            zlib: compress.then(|| Compress::new(Compression::fast(), true)),
            zbuf: Vec::new(),
            written: 0,
        }
    }

    /// Writes a plain packet built by `build` (given the packet's body
    /// buffer), after the pending event packets.
    pub fn plain(&mut self, build: impl FnOnce(&mut ProtoBuf)) -> io::Result<()> {
        self.flush_batch()?;
        self.plain.clear();
        let m = self.plain.begin(TRACE_PACKET);
        build(&mut self.plain);
        self.plain.end(m);
        self.out.write_all(self.plain.bytes())?;
        self.written += self.plain.len() as u64;
        Ok(())
    }

    /// Writes the batch when it is full.
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Writes the pending event packets (compressed into one packet, or
    /// as they are).
    pub fn flush_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        match &mut self.zlib {
            None => {
                self.out.write_all(self.batch.bytes())?;
                self.written += self.batch.len() as u64;
            }
            Some(z) => {
                deflate(z, self.batch.bytes(), &mut self.zbuf)?;
                let tag = u64::from(COMPRESSED_PACKETS << 3 | 2);
                let body = varint_len(tag) + varint_len(self.zbuf.len() as u64) + self.zbuf.len();
                let mut head = ProtoBuf::with_capacity(16);
                head.varint(u64::from(TRACE_PACKET << 3 | 2));
                head.varint(body as u64);
                head.varint(tag);
                head.varint(self.zbuf.len() as u64);
                self.out.write_all(head.bytes())?;
                self.out.write_all(&self.zbuf)?;
                self.written += (head.len() + self.zbuf.len()) as u64;
            }
        }
        self.batch.clear();
        Ok(())
    }

    /// Flushes everything and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_batch()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Deflates `input` (zlib framing) into `out`, replacing its contents.
fn deflate(z: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    z.reset();
    out.clear();
    // zlib's bound for stored blocks: the input, 5 bytes per 16 KiB block,
    // the header and the checksum.
    out.reserve(input.len() + input.len() / 16_384 * 5 + 64);
    loop {
        let consumed = z.total_in() as usize;
        let status = z
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        match status {
            Status::StreamEnd => return Ok(()),
            // Out of room (cannot happen with the bound above; grow anyway).
            Status::Ok | Status::BufError => out.reserve(out.capacity().max(4096)),
        }
    }
}
