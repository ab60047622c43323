//! Per-CPU rings on rseq, with real threads, real migrations and real
//! signals: every record read back once, every byte checked, and per CPU
//! `written == read + dropped` once the writers stop and the rings are
//! drained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Instant;

use ringtrace_ring::percpu::{
    PerCpuConfig, PerCpuError, PerCpuRing, PerCpuWriteError, RseqAbi, Unavailable,
};

/// Payload: `u32 writer, u32 seq, u32 len, u32 tag`, then `len - 16` bytes
/// derived from them. `tag` is the CPU a pinned writer was pinned to, or
/// `u32::MAX`.
fn fill(buf: &mut [u8], writer: u32, seq: u32, tag: u32) -> usize {
    let len = 16 + (seq as usize * 13 + writer as usize * 5) % 240;
    let len = len.min(buf.len());
    buf[0..4].copy_from_slice(&writer.to_le_bytes());
    buf[4..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    buf[12..16].copy_from_slice(&tag.to_le_bytes());
    for (chunk, bytes) in buf[16..len].chunks_mut(64).enumerate() {
        bytes.fill(body(writer, seq, chunk * 64));
    }
    len
}

/// Byte `i` of a body: differs between events and between 64-byte chunks,
/// and is cheap to fill, so that writers spend their time in the ring.
fn body(writer: u32, seq: u32, i: usize) -> u8 {
    (writer.wrapping_mul(31) ^ seq.wrapping_mul(7) ^ (i as u32 >> 6).wrapping_mul(101)) as u8
}

/// Checks a payload read back; returns (writer, seq, tag).
fn check(p: &[u8]) -> (u32, u32, u32) {
    assert!(p.len() >= 16, "payload of {} bytes", p.len());
    let word = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap());
    let (writer, seq, len, tag) = (word(0), word(4), word(8) as usize, word(12));
    assert_eq!(
        p.len(),
        len.next_multiple_of(4),
        "writer {writer} seq {seq}"
    );
    for (i, &b) in p[16..len].iter().enumerate() {
        assert_eq!(
            b,
            body(writer, seq, i),
            "writer {writer} seq {seq} byte {}",
            i + 16
        );
    }
    assert!(p[len..].iter().all(|&b| b == 0), "alignment bytes not zero");
    (writer, seq, tag)
}

fn ring(pages: usize) -> PerCpuRing {
    match PerCpuRing::new(PerCpuConfig::new(pages)) {
        Ok(r) => r,
        Err(e) => panic!("this machine has rseq through glibc; got: {e}"),
    }
}

fn now(start: Instant) -> impl Fn() -> u64 {
    move || start.elapsed().as_nanos() as u64
}

/// What the reader saw: per writer, per CPU, the seqs in read order.
#[derive(Default)]
struct Seen {
    by_writer: HashMap<u32, Vec<(usize, u32, u32)>>,
    events: u64,
}

/// Drains every CPU once; checks bytes and per-CPU time order.
fn drain(ring: &PerCpuRing, seen: &mut Seen, last_ts: &mut [u64]) {
    for (cpu, last) in last_ts.iter_mut().enumerate() {
        let mut c = ring.consumer(cpu).unwrap();
        c.consume(|e| {
            assert!(e.timestamp >= *last, "time went backwards on CPU {cpu}");
            *last = e.timestamp;
            let (w, s, tag) = check(e.payload);
            seen.by_writer.entry(w).or_default().push((cpu, s, tag));
            seen.events += 1;
        })
        .unwrap();
    }
}

/// Per CPU: written == read + dropped; total written == attempts.
fn assert_identity(ring: &PerCpuRing, attempts: u64) {
    let mut written = 0;
    for cpu in 0..ring.cpus() {
        let s = ring.stats(cpu).unwrap();
        assert_eq!(s.written, s.read + s.dropped, "CPU {cpu}: {s:?}");
        written += s.written;
    }
    assert_eq!(written, attempts);
    assert_eq!(ring.refused(), (0, 0));
}

/// Runs `writers` threads of `events` events each with a reader running;
/// `body(ring, writer_index)` writes and returns (ok, dropped) seqs.
fn run_with_reader(
    ring: &Arc<PerCpuRing>,
    writers: u32,
    write: impl Fn(&PerCpuRing, u32) -> (Vec<u32>, u64) + Send + Sync + 'static,
) -> (Seen, HashMap<u32, Vec<u32>>, u64) {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ring, done) = (ring.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut seen, mut last) = (Seen::default(), vec![0; ring.cpus()]);
            while !done.load(Acquire) {
                drain(&ring, &mut seen, &mut last);
                std::thread::yield_now();
            }
            drain(&ring, &mut seen, &mut last);
            seen
        })
    };
    let write = Arc::new(write);
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (ring, write) = (ring.clone(), write.clone());
            std::thread::spawn(move || write(&ring, w))
        })
        .collect();
    let (mut ok, mut dropped) = (HashMap::new(), 0);
    for (w, h) in handles.into_iter().enumerate() {
        let (seqs, d) = h.join().unwrap();
        ok.insert(w as u32, seqs);
        dropped += d;
    }
    done.store(true, Release);
    (reader.join().unwrap(), ok, dropped)
}

/// Every committed seq read exactly once, a writer's events in order on
/// each CPU.
fn assert_all_read(seen: &Seen, ok: &HashMap<u32, Vec<u32>>) {
    for (w, seqs) in ok {
        let got = seen.by_writer.get(w).map(Vec::as_slice).unwrap_or(&[]);
        let mut read: Vec<u32> = got.iter().map(|&(_, s, _)| s).collect();
        for cpu in 0..64 {
            let on: Vec<u32> = got.iter().filter(|e| e.0 == cpu).map(|e| e.1).collect();
            assert!(
                on.windows(2).all(|p| p[0] < p[1]),
                "writer {w} out of order on CPU {cpu}"
            );
        }
        read.sort_unstable();
        assert_eq!(&read, seqs, "writer {w}: read back != committed");
    }
}

#[test]
fn many_threads_every_event_read_once() {
    const WRITERS: u32 = 48;
    const EVENTS: u32 = 1500;
    let ring = Arc::new(ring(64));
    let start = Instant::now();
    let (seen, ok, dropped) = run_with_reader(&ring, WRITERS, move |ring, w| {
        let (mut seqs, mut dropped, mut buf) = (Vec::new(), 0, [0u8; 256]);
        for s in 0..EVENTS {
            let len = fill(&mut buf, w, s, u32::MAX);
            match ring.write(now(start), &buf[..len]) {
                Ok(_) => seqs.push(s),
                Err(PerCpuWriteError::Dropped { .. }) => dropped += 1,
                Err(e) => panic!("writer {w}: {e}"),
            }
        }
        (seqs, dropped)
    });
    assert_all_read(&seen, &ok);
    let committed: u64 = ok.values().map(|v| v.len() as u64).sum();
    assert_eq!(seen.events, committed);
    assert_eq!(committed + dropped, u64::from(WRITERS * EVENTS));
    assert_identity(&ring, u64::from(WRITERS * EVENTS));
}

fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, size_of_val(&set), &mut set), 0);
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn pin(cpus: &[usize]) {
    // SAFETY: as above; changes the calling thread's affinity only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        assert_eq!(libc::sched_setaffinity(0, size_of_val(&set), &set), 0);
    }
}

/// Threads hop between CPUs with `sched_setaffinity` in the middle of the
/// run; when the call returns the thread runs on the CPU pinned, so every
/// event it writes then must come back from that CPU's ring: the CPU
/// column is the real CPU. Unpinned stretches write with tag MAX.
#[test]
fn migration_events_land_on_the_cpu_they_ran_on() {
    let cpus = allowed_cpus();
    assert!(!cpus.is_empty());
    let ring = Arc::new(ring(64));
    let start = Instant::now();
    let hop_cpus = cpus.clone();
    let (seen, ok, dropped) = run_with_reader(&ring, 8, move |ring, w| {
        let (mut seqs, mut dropped, mut buf) = (Vec::new(), 0, [0u8; 256]);
        for s in 0..3000u32 {
            let round = s / 50 + w;
            let tag = if round % 3 == 2 {
                if s % 50 == 0 {
                    pin(&hop_cpus);
                }
                u32::MAX
            } else {
                let cpu = hop_cpus[round as usize % hop_cpus.len()];
                if s % 50 == 0 {
                    pin(&[cpu]);
                }
                cpu as u32
            };
            let len = fill(&mut buf, w, s, tag);
            match ring.write(now(start), &buf[..len]) {
                Ok(cpu) => assert!(tag == u32::MAX || cpu == tag as usize),
                Err(PerCpuWriteError::Dropped { .. }) => {
                    dropped += 1;
                    continue;
                }
                Err(e) => panic!("{e}"),
            }
            seqs.push(s);
        }
        (seqs, dropped)
    });
    assert_all_read(&seen, &ok);
    let mut pinned = 0;
    for events in seen.by_writer.values() {
        for &(cpu, s, tag) in events {
            if tag != u32::MAX {
                assert_eq!(
                    cpu, tag as usize,
                    "seq {s} pinned to CPU {tag} read from CPU {cpu}"
                );
                pinned += 1;
            }
        }
    }
    assert!(pinned > 0);
    let attempts = ok.values().map(|v| v.len() as u64).sum::<u64>() + dropped;
    assert_eq!(attempts, 8 * 3000);
    assert_identity(&ring, attempts);
}

static SIG_RING: AtomicPtr<PerCpuRing> = AtomicPtr::new(std::ptr::null_mut());
static SIG_NS0: AtomicU64 = AtomicU64::new(0);
static SIG_SEQ: AtomicU64 = AtomicU64::new(0);
static SIG_OK: AtomicU64 = AtomicU64::new(0);
static SIG_DROPPED: AtomicU64 = AtomicU64::new(0);
const SIG_WRITER: u32 = 1000;

fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
}

extern "C" fn on_signal(_: libc::c_int) {
    let ring = SIG_RING.load(Acquire);
    if ring.is_null() {
        return;
    }
    // SAFETY: the test keeps the ring alive until the handler is removed
    // and the storm has stopped.
    let ring = unsafe { &*ring };
    let seq = SIG_SEQ.fetch_add(1, Relaxed) as u32;
    let mut buf = [0u8; 256];
    let len = fill(&mut buf, SIG_WRITER, seq, u32::MAX);
    let t0 = SIG_NS0.load(Relaxed);
    match ring.write(|| mono_ns() - t0, &buf[..len]) {
        Ok(_) => SIG_OK.fetch_add(1, Relaxed),
        Err(PerCpuWriteError::Dropped { .. }) => SIG_DROPPED.fetch_add(1, Relaxed),
        Err(_) => std::process::abort(),
    };
}

fn install_on_signal() {
    // SAFETY: the handler touches atomics, the stack and the ring's
    // async-signal-safe write path only.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Sends SIGUSR1 to the thread whose id appears in `target`, one in flight
/// at a time, until `stop`; then sets `stopped` and returns the count sent.
fn start_storm(
    stop: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    target: Arc<AtomicU64>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        while target.load(Acquire) == 0 {
            std::thread::yield_now();
        }
        let mut sent = 0u64;
        while !stop.load(Acquire) {
            // One signal in flight at a time: the next is sent as soon
            // as the last handler has started, so the thread keeps
            // making progress between them.
            if SIG_SEQ.load(Acquire) < sent {
                std::hint::spin_loop();
                continue;
            }
            // SAFETY: the target thread waits for `stopped` before it
            // returns, so it is alive for every call.
            unsafe { libc::pthread_kill(target.load(Acquire) as libc::pthread_t, libc::SIGUSR1) };
            sent += 1;
        }
        stopped.store(true, Release);
        sent
    })
}

/// A storm of real signals at the writing thread: each handler records
/// while the thread is often inside a section (large records make the
/// section long), so the kernel aborts it, the handler writes as a
/// top-level writer and the thread restarts. No partial or duplicated
/// record is ever read, and aborts did happen.
#[test]
fn signal_storm_aborts_are_never_visible() {
    SIG_NS0.store(mono_ns(), Relaxed);
    let ring = Arc::new(ring(64));
    SIG_RING.store(Arc::as_ptr(&ring).cast_mut(), Release);
    install_on_signal();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(AtomicBool::new(false));
    let target = Arc::new(AtomicU64::new(0));
    let storm = start_storm(stop.clone(), stopped.clone(), target.clone());
    let t0 = SIG_NS0.load(Relaxed);
    let (seen, ok, dropped) = run_with_reader(&ring, 1, move |ring, w| {
        // SAFETY: pthread_self has no precondition.
        target.store(unsafe { libc::pthread_self() } as u64, Release);
        let (mut seqs, mut dropped, mut buf) = (Vec::new(), 0, vec![0u8; 4000]);
        let mut s = 0u32;
        // Count-bounded: at least 20,000 records and 2,000 signals handled,
        // and until a restart was seen.
        let restarts = |ring: &PerCpuRing| {
            (0..ring.cpus())
                .map(|c| ring.stats(c).unwrap().restarts)
                .sum::<u64>()
        };
        while s < 20_000 || SIG_SEQ.load(Relaxed) < 2_000 || restarts(ring) == 0 {
            let len = 16 + (s as usize * 997) % 3900;
            let len = fill(&mut buf[..len], w, s, u32::MAX);
            match ring.write(|| mono_ns() - t0, &buf[..len]) {
                Ok(_) => seqs.push(s),
                Err(PerCpuWriteError::Dropped { .. }) => dropped += 1,
                Err(e) => panic!("{e}"),
            }
            s += 1;
            if s >= 20_000 && s % 16 == 0 {
                // Past the minimum, leave the storm thread some CPU.
                std::thread::yield_now();
            }
        }
        // Stop the storm and wait until its last signal was sent: the
        // system calls of this wait deliver it, so no handler runs on this
        // thread after it returns.
        stop.store(true, Release);
        while !stopped.load(Acquire) {
            std::thread::yield_now();
        }
        std::thread::yield_now();
        (seqs, dropped)
    });
    let sent = storm.join().unwrap();
    SIG_RING.store(std::ptr::null_mut(), Release);
    // Drain what handlers wrote after the reader's last pass.
    let mut rest = Seen::default();
    drain(&ring, &mut rest, &mut vec![0; ring.cpus()]);
    let attempts = ok[&0].len() as u64 + dropped;
    let mut all = seen;
    for (w, v) in rest.by_writer {
        all.by_writer.entry(w).or_default().extend(v);
    }
    let mut ok = ok;
    let handler_ok = SIG_OK.load(Relaxed);
    let handler_seqs: Vec<u32> = {
        let mut v: Vec<u32> = all
            .by_writer
            .get(&SIG_WRITER)
            .map_or(vec![], |v| v.iter().map(|e| e.1).collect());
        v.sort_unstable();
        v
    };
    assert_eq!(
        handler_seqs.len() as u64,
        handler_ok,
        "handler records read back"
    );
    ok.insert(SIG_WRITER, handler_seqs);
    assert_all_read(&all, &ok);
    let restarts: u64 = (0..ring.cpus())
        .map(|c| ring.stats(c).unwrap().restarts)
        .sum();
    eprintln!("signals sent {sent}, handler records {handler_ok}, restarts {restarts}, thread records {attempts}");
    assert!(
        restarts > 0 && handler_ok > 0,
        "restarts {restarts}, handler records {handler_ok}"
    );
    let handler_attempts = SIG_SEQ.load(Relaxed);
    assert_eq!(handler_ok + SIG_DROPPED.load(Relaxed), handler_attempts);
    assert_identity(&ring, attempts + handler_attempts);
}

/// With glibc's registration switched off the ring is unavailable and says
/// why in one line; the check runs in a child started with the tunable.
#[test]
fn fallback_when_glibc_does_not_register() {
    if std::env::var_os("RINGTRACE_PERCPU_CHILD").is_some() {
        match PerCpuRing::new(PerCpuConfig::new(4)) {
            Err(PerCpuError::Unavailable(Unavailable::NotRegistered)) => {}
            other => panic!("expected NotRegistered, got {other:?}"),
        }
        let line = RseqAbi::detect().unwrap_err().to_string();
        println!("FALLBACK: {line}");
        return;
    }
    assert!(
        RseqAbi::detect().is_ok(),
        "rseq is registered in an ordinary run"
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fallback_when_glibc_does_not_register",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RINGTRACE_PERCPU_CHILD", "1")
        .env("GLIBC_TUNABLES", "glibc.pthread.rseq=0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FALLBACK: glibc did not register rseq (__rseq_size is 0"),
        "{stdout}"
    );
}

#[test]
fn too_large_is_refused_and_not_counted() {
    let ring = ring(2);
    let big = vec![0u8; ring.max_payload() + 1];
    assert_eq!(
        ring.write(|| 1, &big),
        Err(PerCpuWriteError::TooLarge {
            len: big.len(),
            max: ring.max_payload()
        })
    );
    let exact = vec![7u8; ring.max_payload()];
    let cpu = ring.write(|| 1, &exact).unwrap();
    let mut got = Vec::new();
    ring.consumer(cpu)
        .unwrap()
        .consume(|e| got.push(e.payload.to_vec()))
        .unwrap();
    assert_eq!(got, vec![exact]);
    assert_identity(&ring, 1);
}

/// 10,000 threads of 100 events each (100 alive at a time) share the same
/// rings: the memory is fixed when the ring is made, whatever the thread
/// count, and every event is read back once or counted as dropped.
#[test]
fn ten_thousand_threads_share_fixed_memory() {
    const WAVES: u32 = 100;
    const PER_WAVE: u32 = 100;
    const EVENTS: u32 = 100;
    let ring = Arc::new(ring(256));
    let start = Instant::now();
    let (seen, ok, dropped) = run_with_reader(&ring, 1, move |ring, w| {
        let (mut seqs, mut dropped) = (Vec::new(), 0);
        for wave in 0..WAVES {
            let (ok, lost) =
                wave_of_threads(ring, w, wave * PER_WAVE * EVENTS, PER_WAVE, EVENTS, start);
            seqs.extend(ok);
            dropped += lost;
        }
        seqs.sort_unstable();
        (seqs, dropped)
    });
    // The threads interleave on each CPU: check completeness, not order.
    let mut got: Vec<u32> = seen
        .by_writer
        .get(&0)
        .map_or(vec![], |v| v.iter().map(|e| e.1).collect());
    got.sort_unstable();
    assert_eq!(got, ok[&0]);
    let attempts = u64::from(WAVES * PER_WAVE * EVENTS);
    assert_eq!(ok[&0].len() as u64 + dropped, attempts);
    assert_identity(&ring, attempts);
    eprintln!("10,000 threads: {dropped} of {attempts} events dropped");
}

/// `threads` threads writing `events` events each, seqs from `first`.
fn wave_of_threads(
    ring: &PerCpuRing,
    w: u32,
    first: u32,
    threads: u32,
    events: u32,
    start: Instant,
) -> (Vec<u32>, u64) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let (mut ok, mut lost, mut buf) = (Vec::new(), 0u64, [0u8; 256]);
                    for e in 0..events {
                        let seq = first + t * events + e;
                        let len = fill(&mut buf, w, seq, u32::MAX);
                        match ring.write(now(start), &buf[..len]) {
                            Ok(_) => ok.push(seq),
                            Err(PerCpuWriteError::Dropped { .. }) => lost += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (ok, lost)
                })
            })
            .collect();
        let (mut all, mut lost) = (Vec::new(), 0);
        for h in handles {
            let (ok, l) = h.join().unwrap();
            all.extend(ok);
            lost += l;
        }
        (all, lost)
    })
}
