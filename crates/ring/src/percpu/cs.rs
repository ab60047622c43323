//! The rseq critical section: "compare the CPU and the tail, copy, store
//! the new tail" (librseq's `rseq_load_cbne_memcpy_store__ptr`, the kernel
//! selftests' `rseq_cmpeqv_trymemcpy_storev`), extended with a few plain
//! 8-byte stores before the commit.
//!
//! ```text
//!   rseq->rseq_cs = &descriptor
//! start:                                  -- abortable from here ...
//!   K  rseq->cpu_id != cpu           -> abort
//!   T  *plan.tail != plan.expect     -> cmpfail (another writer on this
//!                                       CPU committed since we looked)
//!   C1 copy plan.head  -> dst         (time stamp record, event header)
//!   C2 copy plan.src   -> dst         (payload)
//!   C3 zero plan.zeros bytes          (alignment)
//!   S  plan.stores[i].addr = value    (page header words, the stamp)
//!   P  *plan.tail = plan.new          -- the commit: the one store that
//! post_commit:                           publishes anything
//!   ... <RSEQ_SIG> abort:                 (outside the range)
//! ```
//!
//! Everything before P writes bytes no reader looks at (past the published
//! tail, a page not yet published, the stamp that P validates), so an abort
//! at any step leaves nothing visible; the caller plans again from the top.
//! The kernel aborts the section on preemption, migration and signal
//! delivery (`kernel/rseq.c`), before a signal handler runs, so a handler
//! writing on the same CPU is an ordinary top-level writer.

/// One plain 8-byte store of step S.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Store {
    pub addr: *mut u64,
    pub value: u64,
}

/// The most stores step S makes (a page switch: old page's commit, new
/// page's time stamp and commit, and the stamp's three words).
pub(crate) const MAX_STORES: usize = 6;

/// Everything the section needs, prepared outside it (on the writer's
/// stack). The asm reads it at the offsets asserted below.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Plan {
    /// The CPU's tail word.
    pub tail: *mut u64,
    /// The tail the plan was made for.
    pub expect: u64,
    /// The tail after the commit.
    pub new: u64,
    pub stores: [Store; MAX_STORES],
    pub nstores: u64,
    /// Time stamp record and event header bytes.
    pub head: [u8; 16],
    pub head_len: u64,
    /// Where the event goes (page data at the tail).
    pub dst: *mut u8,
    /// The payload.
    pub src: *const u8,
    pub src_len: u64,
    /// Zero bytes after the payload, up to the event's 4-byte size.
    pub zeros: u64,
}

const OFF_TAIL: usize = std::mem::offset_of!(Plan, tail);
const OFF_EXPECT: usize = std::mem::offset_of!(Plan, expect);
const OFF_NEW: usize = std::mem::offset_of!(Plan, new);
const OFF_STORES: usize = std::mem::offset_of!(Plan, stores);
const OFF_NSTORES: usize = std::mem::offset_of!(Plan, nstores);
const OFF_HEAD: usize = std::mem::offset_of!(Plan, head);
const OFF_HEAD_LEN: usize = std::mem::offset_of!(Plan, head_len);
const OFF_DST: usize = std::mem::offset_of!(Plan, dst);
const OFF_SRC: usize = std::mem::offset_of!(Plan, src);
const OFF_SRC_LEN: usize = std::mem::offset_of!(Plan, src_len);
const OFF_ZEROS: usize = std::mem::offset_of!(Plan, zeros);
const _: () = assert!(std::mem::size_of::<Store>() == 16);
const _: () = assert!(OFF_TAIL == 0 && OFF_NEW == 16 && OFF_STORES == 24);

impl Plan {
    /// An empty plan: no stores, no bytes.
    pub(crate) fn new() -> Self {
        Plan {
            tail: std::ptr::null_mut(),
            expect: 0,
            new: 0,
            stores: [Store {
                addr: std::ptr::null_mut(),
                value: 0,
            }; MAX_STORES],
            nstores: 0,
            head: [0; 16],
            head_len: 0,
            dst: std::ptr::null_mut(),
            src: std::ptr::null(),
            src_len: 0,
            zeros: 0,
        }
    }

    /// Appends a store to step S.
    pub(crate) fn push_store(&mut self, addr: *mut u64, value: u64) {
        let i = self.nstores as usize;
        debug_assert!(i < MAX_STORES);
        self.stores[i] = Store { addr, value };
        self.nstores += 1;
    }
}

/// How a section ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// P ran: the event is published.
    Committed,
    /// The tail moved before T: plan again.
    Stale,
    /// The kernel aborted the section (or K found another CPU): plan again.
    Aborted,
}

/// Copies `rcx` bytes from `rsi` to `rdi` (advancing both), 8 at a time
/// then one at a time; clobbers `rdx`.
#[cfg(target_arch = "x86_64")]
macro_rules! copy_loop {
    () => {
        concat!(
            "21:\n",
            "cmp rcx, 8\n",
            "jb 22f\n",
            "mov rdx, qword ptr [rsi]\n",
            "mov qword ptr [rdi], rdx\n",
            "add rsi, 8\n",
            "add rdi, 8\n",
            "sub rcx, 8\n",
            "jmp 21b\n",
            "22:\n",
            "test rcx, rcx\n",
            "jz 23f\n",
            "mov dl, byte ptr [rsi]\n",
            "mov byte ptr [rdi], dl\n",
            "inc rsi\n",
            "inc rdi\n",
            "dec rcx\n",
            "jmp 22b\n",
            "23:",
        )
    };
}

/// Stores `rcx` zero bytes at `rdi` (advancing it).
#[cfg(target_arch = "x86_64")]
macro_rules! zero_loop {
    () => {
        concat!(
            "24:\n",
            "test rcx, rcx\n",
            "jz 25f\n",
            "mov byte ptr [rdi], 0\n",
            "inc rdi\n",
            "dec rcx\n",
            "jmp 24b\n",
            "25:",
        )
    };
}

/// Runs the section on the calling thread.
///
/// # Safety
/// `area` is the calling thread's registered `struct rseq` (registered with
/// [`super::RSEQ_SIG`]); every pointer in `plan` is valid for the writes it
/// describes (`tail` and each store's `addr` 8-byte aligned, `dst` for
/// `head_len + src_len + zeros` bytes, `src` for `src_len` reads), and none
/// of them is a byte a reader may be reading unless the plan's `expect` is
/// no longer the tail.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) unsafe fn run(area: *mut u8, cpu: u32, plan: &Plan) -> Outcome {
    let ret: u32;
    // SAFETY: the caller's contract covers every address the asm writes.
    // The descriptor obeys the kernel's rules (`rseq_get_rseq_cs`):
    // version 0, flags 0, abort_ip (7) outside [start (5), post_commit
    // (6)), preceded by the 4 bytes of RSEQ_SIG (`ud1 RSEQ_SIG(%rip),
    // %edi`, as glibc and the selftests emit it). The copy loops may be
    // interrupted: the kernel then aborts to 7 with the IP in range.
    // x86 is TSO: the final plain
    // store P is a release store, pairing with the Acquire load of the
    // tail in `read::Consumer::consume` and in `write::snapshot`.
    unsafe {
        core::arch::asm!(
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "9:",
            ".long 0, 0",
            ".quad 5f, (6f - 5f), 7f",
            ".popsection",
            "lea rax, [rip + 9b]",
            "mov qword ptr [{area} + {off_cs}], rax",
            "5:",
            // K
            "cmp dword ptr [{area} + {off_cpu}], {cpu:e}",
            "jne 7f",
            // T
            "mov rax, qword ptr [{plan} + {off_tail}]",
            "mov rdx, qword ptr [rax]",
            "cmp rdx, qword ptr [{plan} + {off_expect}]",
            "jne 4f",
            // C1, C2, C3
            // (Plain loops, not `rep movsb`: its start-up cost dominates
            // copies this small on some CPUs.)
            "mov rdi, qword ptr [{plan} + {off_dst}]",
            "lea rsi, [{plan} + {off_head}]",
            "mov rcx, qword ptr [{plan} + {off_head_len}]",
            copy_loop!(),
            "mov rsi, qword ptr [{plan} + {off_src}]",
            "mov rcx, qword ptr [{plan} + {off_src_len}]",
            copy_loop!(),
            "mov rcx, qword ptr [{plan} + {off_zeros}]",
            zero_loop!(),
            // S
            "mov rcx, qword ptr [{plan} + {off_nstores}]",
            "lea r8, [{plan} + {off_stores}]",
            "8:",
            "test rcx, rcx",
            "jz 3f",
            "mov r9, qword ptr [r8]",
            "mov r10, qword ptr [r8 + 8]",
            "mov qword ptr [r9], r10",
            "add r8, 16",
            "dec rcx",
            "jmp 8b",
            "3:",
            // P
            "mov rax, qword ptr [{plan} + {off_tail}]",
            "mov rdx, qword ptr [{plan} + {off_new}]",
            "mov qword ptr [rax], rdx",
            "6:",
            "mov eax, 0",
            "jmp 2f",
            "4:",
            "mov eax, 1",
            "jmp 2f",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long {sig}",
            "7:",
            "mov eax, 2",
            "2:",
            area = in(reg) area,
            cpu = in(reg) cpu,
            plan = in(reg) plan as *const Plan,
            off_cs = const super::rseq::RSEQ_CS_OFFSET,
            off_cpu = const super::rseq::CPU_ID_OFFSET,
            off_tail = const OFF_TAIL,
            off_expect = const OFF_EXPECT,
            off_new = const OFF_NEW,
            off_stores = const OFF_STORES,
            off_nstores = const OFF_NSTORES,
            off_head = const OFF_HEAD,
            off_head_len = const OFF_HEAD_LEN,
            off_dst = const OFF_DST,
            off_src = const OFF_SRC,
            off_src_len = const OFF_SRC_LEN,
            off_zeros = const OFF_ZEROS,
            sig = const super::rseq::RSEQ_SIG,
            out("eax") ret,
            out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _,
            options(nostack),
        );
    }
    match ret {
        0 => Outcome::Committed,
        1 => Outcome::Stale,
        _ => Outcome::Aborted,
    }
}

/// Other architectures: never reached, since `RseqAbi::detect` refuses
/// them and no ring is built.
///
/// # Safety
/// None needed; it does nothing.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(crate) unsafe fn run(_area: *mut u8, _cpu: u32, _plan: &Plan) -> Outcome {
    Outcome::Aborted
}

/// The section's steps, interpreted one at a time (for the model in
/// `model_tests.rs`), in the asm's order: 0 K, 1 T, 2 C1, 3 C2, 4 C3,
/// 5.. S (one per store), then P. Stopping before any step is what a kernel
/// abort there does.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Steps<'a> {
    plan: &'a Plan,
    next: usize,
}

#[cfg(test)]
impl<'a> Steps<'a> {
    /// Starts the section for `plan`.
    pub(crate) fn new(plan: &'a Plan) -> Self {
        Steps { plan, next: 0 }
    }

    /// Number of steps, P included.
    pub(crate) fn len(&self) -> usize {
        6 + self.plan.nstores as usize
    }

    /// Runs the next step; `Some` when the section ended. `cpu_ok` plays
    /// K's comparison.
    ///
    /// # Safety
    /// As [`run`], for the pointers in the plan.
    pub(crate) unsafe fn step(&mut self, cpu_ok: bool) -> Option<Outcome> {
        let plan = self.plan;
        let step = self.next;
        self.next += 1;
        let (head, src) = (plan.head_len as usize, plan.src_len as usize);
        // SAFETY: the caller's contract, step by step as the asm does it.
        unsafe {
            match step {
                0 if !cpu_ok => return Some(Outcome::Aborted),
                0 => {}
                1 if plan.tail.read() != plan.expect => return Some(Outcome::Stale),
                1 => {}
                2 => plan.dst.copy_from(plan.head.as_ptr(), head),
                3 => plan.dst.add(head).copy_from(plan.src, src),
                4 => plan.dst.add(head + src).write_bytes(0, plan.zeros as usize),
                s if s < self.len() - 1 => {
                    let st = plan.stores[s - 5];
                    st.addr.write(st.value);
                }
                _ => {
                    plan.tail.write(plan.new);
                    return Some(Outcome::Committed);
                }
            }
        }
        None
    }
}
