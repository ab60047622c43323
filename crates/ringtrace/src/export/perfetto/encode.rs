//! A minimal protobuf encoder: varints, tags, scalar fields and nested
//! messages appended to one byte buffer, for the few Perfetto messages the
//! export writes (`TracePacket`, `TrackDescriptor`, `TrackEvent`,
//! `DebugAnnotation`, `InternedData`).
//!
//! Why hand-written: the export writes millions of small messages; building
//! generated message values (allocating a struct per packet) would cost
//! more than the encoding itself. The tests decode every file with
//! Perfetto's own message types (`perfetto_protos`) and `protoc --decode`,
//! so the encoding is checked against the real schema.
//!
//! Nested messages: [`ProtoBuf::begin`] reserves one length byte and
//! [`ProtoBuf::end`] patches it; a body of 128 bytes or more needs a longer
//! varint, so the body is moved right by the extra bytes (rare: most
//! bodies here are short). Lengths are always minimal varints.

/// Wire type of varint fields (`uint64`, `int64`, `bool`, enums).
const VARINT: u32 = 0;
/// Wire type of 64-bit fields (`double`).
const FIXED64: u32 = 1;
/// Wire type of length-delimited fields (strings, bytes, messages).
const LEN: u32 = 2;

/// An open nested message: where its length byte is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a nested message must be closed with ProtoBuf::end"]
pub struct Mark(usize);

/// A growing protobuf encoding.
#[derive(Debug, Default)]
pub struct ProtoBuf {
    buf: Vec<u8>,
}

/// Bytes of `v` as a varint.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // 7 bits per byte; `| 1` makes 0 take one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

impl ProtoBuf {
    /// An empty buffer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        ProtoBuf {
            buf: Vec::with_capacity(cap),
        }
    }

    /// The bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the bytes, keeps the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Appends a varint.
    #[inline]
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline]
    fn tag(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }

    /// A `uint64` / `uint32` / enum / `bool` field.
    #[inline]
    pub fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }

    /// An `int64` field (two's complement: a negative value takes 10 bytes,
    /// as protobuf's `int64` encodes it).
    #[inline]
    pub fn int(&mut self, field: u32, v: i64) {
        self.uint(field, v as u64);
    }

    /// A `double` field.
    #[inline]
    pub fn double(&mut self, field: u32, v: f64) {
        self.tag(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `bytes` field.
    #[inline]
    pub fn bytes_field(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A `string` field.
    #[inline]
    pub fn str(&mut self, field: u32, v: &str) {
        self.bytes_field(field, v.as_bytes());
    }

    /// Appends bytes that are complete fields already.
    #[inline]
    pub fn raw(&mut self, fields: &[u8]) {
        self.buf.extend_from_slice(fields);
    }

    /// Opens a nested message in `field`; close it with [`end`](Self::end).
    #[inline]
    pub fn begin(&mut self, field: u32) -> Mark {
        self.tag(field, LEN);
        self.buf.push(0);
        Mark(self.buf.len() - 1)
    }

    /// Closes the nested message opened at `m` (the innermost open one):
    /// writes its length, moving the body right when the length takes more
    /// than the one byte reserved.
    #[inline]
    pub fn end(&mut self, m: Mark) {
        let body = m.0 + 1;
        debug_assert!(body <= self.buf.len(), "mark past the buffer's end");
        let len = self.buf.len() - body;
        if len < 0x80 {
            self.buf[m.0] = len as u8;
            return;
        }
        let extra = varint_len(len as u64) - 1;
        self.buf.resize(self.buf.len() + extra, 0);
        self.buf.copy_within(body..body + len, body + extra);
        let mut v = len as u64;
        let mut at = m.0;
        while v >= 0x80 {
            self.buf[at] = (v as u8) | 0x80;
            v >>= 7;
            at += 1;
        }
        self.buf[at] = v as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_lengths_are_minimal() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::MAX] {
            let mut b = ProtoBuf::default();
            b.varint(v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
        let mut b = ProtoBuf::default();
        b.uint(1, 150);
        assert_eq!(b.bytes(), [0x08, 0x96, 0x01]);
    }

    #[test]
    fn nested_bodies_of_any_length_get_their_length_prefix() {
        for n in [0usize, 1, 127, 128, 300, 20_000] {
            let mut b = ProtoBuf::default();
            let outer = b.begin(1);
            let inner = b.begin(2);
            b.bytes_field(3, &vec![7u8; n]);
            b.end(inner);
            b.end(outer);
            // Parse back by hand: tag, length, tag, length, tag, length, body.
            let mut at = 0;
            let mut read = |bytes: &[u8]| {
                let mut v = 0u64;
                let mut shift = 0;
                loop {
                    let x = bytes[at];
                    at += 1;
                    v |= u64::from(x & 0x7f) << shift;
                    shift += 7;
                    if x < 0x80 {
                        return v;
                    }
                }
            };
            let bytes = b.bytes().to_vec();
            assert_eq!(read(&bytes), 0x0a);
            let outer_len = read(&bytes) as usize;
            assert_eq!(read(&bytes), 0x12);
            let inner_len = read(&bytes) as usize;
            assert_eq!(read(&bytes), 0x1a);
            assert_eq!(read(&bytes) as usize, n);
            assert_eq!(bytes.len() - at, n, "body length for {n}");
            assert_eq!(inner_len, 1 + varint_len(n as u64) + n);
            assert_eq!(outer_len, 1 + varint_len(inner_len as u64) + inner_len);
        }
    }
}
