//! The calling thread's rseq area, as glibc registered it.
//!
//! glibc (2.35 and later) registers a `struct rseq` for every thread it
//! creates, with the signature [`RSEQ_SIG`], and exports where it is:
//! `__rseq_offset` (from the thread pointer to the area) and `__rseq_size`
//! (0 when it did not register: `GLIBC_TUNABLES=glibc.pthread.rseq=0`, a
//! valgrind run, or another library owning registration). The symbols are
//! looked up with `dlsym`, so a build against an older glibc or another libc
//! still links and falls back at run time (the kernel selftests' `rseq.c`
//! does the same).
//!
//! Layout used here (`include/uapi/linux/rseq.h`, identical on x86_64 and
//! aarch64): `u32 cpu_id_start` at 0, `u32 cpu_id` at 4 (the current CPU, or
//! -1 / -2 when the thread is not registered), `u64 rseq_cs` at 8 (the
//! active critical-section descriptor, set by user space, cleared by the
//! kernel).
//!
//! Not done yet: registering an area ourselves when glibc did not (the
//! caller falls back to per-thread rings instead, with [`Unavailable`]'s
//! line as the reason).

use thiserror::Error;

/// The abort signature glibc registers on x86_64 (`bits/rseq.h`,
/// `RSEQ_SIG`): the 4 bytes just before every abort handler must equal it,
/// or the kernel kills the thread with SIGSEGV.
pub const RSEQ_SIG: u32 = 0x5305_3053;

/// Offset of `cpu_id` in `struct rseq`.
pub(crate) const CPU_ID_OFFSET: usize = 4;
/// Offset of `rseq_cs` in `struct rseq`.
pub(crate) const RSEQ_CS_OFFSET: usize = 8;

/// Why per-CPU rings cannot run in this process; the text is the one line
/// a tracer prints when it falls back to per-thread rings.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unavailable {
    /// The critical section exists for x86_64 only.
    #[error("rseq per-CPU rings are implemented for x86_64 only, not {0}")]
    Arch(&'static str),
    /// glibc does not export its rseq symbols.
    #[error("glibc exports no __rseq_offset/__rseq_size (glibc older than 2.35, or another libc)")]
    NoSymbols,
    /// glibc did not register rseq.
    #[error(
        "glibc did not register rseq (__rseq_size is 0: GLIBC_TUNABLES=glibc.pthread.rseq=0, \
         valgrind, or another library owns the registration)"
    )]
    NotRegistered,
    /// The calling thread's area reports no CPU.
    #[error("this thread's rseq area reports no CPU (cpu_id {0})")]
    NoCpu(i32),
    /// The possible CPUs could not be read.
    #[error("cannot read the possible CPUs from {path}: {why}")]
    Cpus {
        /// The file read.
        path: &'static str,
        /// What went wrong.
        why: String,
    },
}

/// Where every thread's rseq area is: a fixed offset from its thread
/// pointer. Found once ([`RseqAbi::detect`]); using it afterwards is two
/// loads, async-signal-safe.
#[derive(Debug, Clone, Copy)]
pub struct RseqAbi {
    offset: isize,
}

impl RseqAbi {
    /// Finds glibc's registration, or says why per-CPU rings cannot run.
    pub fn detect() -> Result<Self, Unavailable> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Unavailable::Arch(std::env::consts::ARCH));
        }
        let offset = lookup(c"__rseq_offset").ok_or(Unavailable::NoSymbols)?;
        let size = lookup(c"__rseq_size").ok_or(Unavailable::NoSymbols)?;
        // SAFETY: dlsym found glibc's `const unsigned int __rseq_size`,
        // written once at startup before any user code ran.
        let size = unsafe { size.cast::<u32>().read() };
        if size == 0 {
            return Err(Unavailable::NotRegistered);
        }
        // SAFETY: as above, `const ptrdiff_t __rseq_offset`.
        let offset = unsafe { offset.cast::<isize>().read() };
        let abi = RseqAbi { offset };
        let cpu = abi.cpu_id();
        if cpu as i32 >= 0 {
            Ok(abi)
        } else {
            Err(Unavailable::NoCpu(cpu as i32))
        }
    }

    /// The calling thread's `struct rseq`.
    #[inline(always)]
    pub(crate) fn area(&self) -> *mut u8 {
        thread_pointer().wrapping_offset(self.offset)
    }

    /// The CPU the calling thread runs on, from its rseq area (a plain load,
    /// no system call); `u32::MAX` or `u32::MAX - 1` when the thread is not
    /// registered. Only a hint outside a critical section: the section
    /// compares it again.
    #[inline(always)]
    pub fn cpu_id(&self) -> u32 {
        // SAFETY: `detect` checked that glibc registered an area at this
        // offset from every thread's pointer; it lives as long as the
        // thread, and the kernel updates the field (hence volatile).
        unsafe { self.area().add(CPU_ID_OFFSET).cast::<u32>().read_volatile() }
    }
}

fn lookup(name: &std::ffi::CStr) -> Option<*const u8> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the global
    // scope, and dlsym has no other precondition.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p as *const u8)
}

/// The thread pointer (`%fs:0` on x86_64: the TCB's self pointer).
#[inline(always)]
fn thread_pointer() -> *mut u8 {
    #[cfg(target_arch = "x86_64")]
    {
        let tp: *mut u8;
        // SAFETY: on x86_64 Linux `%fs:0` holds the thread control block's
        // address (the TLS ABI); the load has no side effect.
        unsafe {
            core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp,
                options(nostack, readonly, preserves_flags, pure));
        }
        tp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::ptr::null_mut()
    }
}
