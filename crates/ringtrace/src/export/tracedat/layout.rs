//! Constants and byte helpers shared by the writer and the reader.
//!
//! Every number here is from the project reference `trace-dat-format.md`
//! (§1 file header, §2 v6 layout and option ids, §3 text blobs, §4 v7
//! section ids), checked there against trace-cmd 3.1.6.

/// File magic: `17 08 44` then `tracing` (§1).
pub(crate) const MAGIC: &[u8; 10] = b"\x17\x08\x44tracing";

/// Option ids (§2, §4; `enum tracecmd_option_id` in trace-cmd).
pub(crate) mod opt {
    pub(crate) const DONE: u16 = 0;
    pub(crate) const CPUSTAT: u16 = 2;
    pub(crate) const BUFFER: u16 = 3;
    pub(crate) const TRACECLOCK: u16 = 4;
    pub(crate) const UNAME: u16 = 5;
    pub(crate) const CPUCOUNT: u16 = 8;
    pub(crate) const VERSION: u16 = 9;
    pub(crate) const TRACEID: u16 = 11;
    pub(crate) const TSC2NSEC: u16 = 14;
    // v7 section ids double as option ids pointing at the sections (§4).
    pub(crate) const STRINGS: u16 = 15;
    pub(crate) const HEADER_INFO: u16 = 16;
    pub(crate) const FTRACE_EVENTS: u16 = 17;
    pub(crate) const EVENT_FORMATS: u16 = 18;
    pub(crate) const KALLSYMS: u16 = 19;
    pub(crate) const PRINTK: u16 = 20;
    pub(crate) const CMDLINES: u16 = 21;
    /// ringtrace's own: the wall-clock anchor (u64 real time ns, u64 clock
    /// stamp). Far above trace-cmd's ids, which it skips as unknown.
    pub(crate) const RINGTRACE_WALL_START: u16 = 0x7277;
    /// ringtrace's own: each thread's process (`processes.rs`).
    pub(crate) const RINGTRACE_PROCESSES: u16 = 0x7278;
}

/// v7 section flag bit 0: the section body is compressed (§4).
pub(crate) const SECTION_COMPRESSED: u16 = 1;

/// Host page size the CPU blocks must also be aligned to: trace-cmd mmap()s
/// them (§5.2).
pub(crate) const MMAP_ALIGN: u64 = 4096;

/// The system name whose formats go to the "ftrace events" section (§2 item 4).
#[doc(hidden)]
pub const FTRACE_SYSTEM: &str = "ftrace";

/// The kernel's `events/header_page` text for a kernel whose `long` is
/// `long_size` bytes (4 or 8): `commit` is a long, the data follows it
/// (§3.1).
pub(crate) fn header_page_text(page_size: u32, long_size: usize) -> String {
    let data = 8 + long_size;
    format!(
        "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
         \tfield: local_t commit;\toffset:8;\tsize:{long_size};\tsigned:1;\n\
         \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
         \tfield: char data;\toffset:{data};\tsize:{};\tsigned:1;\n",
        page_size.saturating_sub(data as u32)
    )
}

/// The kernel's `events/header_event` text (§3.2).
pub(crate) const HEADER_EVENT_TEXT: &str = "# compressed entry header\n\
\ttype_len    :    5 bits\n\
\ttime_delta  :   27 bits\n\
\tarray       :   32 bits\n\
\n\
\tpadding     : type == 29\n\
\ttime_extend : type == 30\n\
\ttime_stamp : type == 31\n\
\tdata max type_len  == 28\n";

/// Appends integers in the file's byte order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Enc {
    pub(crate) big_endian: bool,
}

impl Enc {
    pub(crate) const NATIVE: Enc = Enc {
        big_endian: cfg!(target_endian = "big"),
    };

    pub(crate) fn u16(self, b: &mut Vec<u8>, v: u16) {
        b.extend_from_slice(&if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    pub(crate) fn u32(self, b: &mut Vec<u8>, v: u32) {
        b.extend_from_slice(&if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    pub(crate) fn u64(self, b: &mut Vec<u8>, v: u64) {
        b.extend_from_slice(&if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    pub(crate) fn u64_bytes(self, v: u64) -> [u8; 8] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub(crate) fn str0(self, b: &mut Vec<u8>, s: &str) {
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }

    pub(crate) fn read_u16(self, b: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    pub(crate) fn read_u32(self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    pub(crate) fn read_u64(self, b: [u8; 8]) -> u64 {
        if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    }
}
