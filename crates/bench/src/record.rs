//! The record every peer stores: an 8-byte time stamp and an N-byte payload.

/// A time stamp and a payload, laid out without padding so that it can be
/// written as bytes (`N` is a multiple of 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Record<const N: usize> {
    /// The time stamp, taken once before the timed loop.
    pub ts: u64,
    /// The payload.
    pub payload: [u8; N],
}

impl<const N: usize> Record<N> {
    const NO_PADDING: () = assert!(N.is_multiple_of(8) && std::mem::size_of::<Self>() == 8 + N);

    /// Total bytes: 8 + N.
    pub const BYTES: usize = 8 + N;

    /// A record.
    #[inline(always)]
    pub fn new(ts: u64, payload: &[u8; N]) -> Record<N> {
        Record {
            ts,
            payload: *payload,
        }
    }

    /// The record's bytes, as a byte-oriented queue stores them.
    #[inline(always)]
    pub fn as_bytes(&self) -> &[u8] {
        #[allow(clippy::let_unit_value)]
        let () = Self::NO_PADDING;
        // SAFETY: `Record` is `repr(C)`, `u64` then `[u8; N]` with N a
        // multiple of 8 (checked at compile time above), so it has no padding
        // and all 8 + N bytes are initialised.
        unsafe { std::slice::from_raw_parts((self as *const Self).cast::<u8>(), Self::BYTES) }
    }
}

/// The payload sizes every write-cost table covers.
pub const PAYLOAD_SIZES: [usize; 3] = [8, 32, 128];

/// A payload of `N` bytes with a recognisable pattern.
pub fn payload<const N: usize>() -> [u8; N] {
    std::array::from_fn(|i| i as u8)
}
