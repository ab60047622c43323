//! Binary printk used from outside the crate, including from a signal
//! handler: encode, then format at read time.

use std::sync::atomic::{AtomicUsize, Ordering};

use ringtrace::event::{CommonFields, Record};
use ringtrace::printk::{format_bprint, format_record, BprintFields, FormatError};

fn roundtrip<R: Record>(r: &R) -> String {
    let mut buf = [0u8; 256];
    let n = r.encode(&CommonFields::default(), &mut buf).unwrap();
    format_bprint(&buf[..n]).unwrap().1
}

#[test]
fn mixed_arguments_roundtrip() {
    let name = String::from("worker-3");
    let s = roundtrip(&ringtrace::bprintk!(
        "%s: n=%d big=%lld u=%llu hex=%#010x f=%.3f c=%c ok=%s p=%p",
        &name,
        -12,
        i64::MIN,
        u64::MAX,
        0xbeef,
        -0.5f32,
        'λ',
        false,
        0x10usize
    ));
    assert_eq!(
        s,
        "worker-3: n=-12 big=-9223372036854775808 u=18446744073709551615 hex=0x0000beef f=-0.500 c=λ ok=false p=0x10"
    );
}

#[test]
fn records_survive_a_copy_and_bad_copies_fail_cleanly() {
    let mut buf = [0u8; 128];
    let rec = ringtrace::bprintk!("%d of %s", 3, "five");
    let n = rec
        .encode(
            &CommonFields {
                flags: 0,
                preempt_count: 0,
                pid: 77,
            },
            &mut buf,
        )
        .unwrap();
    let copy = buf[..n].to_vec();
    let f = BprintFields::parse(&copy).unwrap();
    assert_eq!(f.common.pid, 77);
    assert_eq!(
        format_record(rec.site().format(), f.args).unwrap(),
        "3 of five"
    );
    // Cut the string's NUL off: a clear error, no panic.
    let cut = &copy[..24 + 4 + 3];
    assert_eq!(
        format_bprint(cut).unwrap_err(),
        FormatError::Unterminated { index: 1, at: 4 }
    );
    // Every truncation either formats or errors; none panics.
    for len in 0..copy.len() {
        let _ = format_bprint(&copy[..len]);
    }
}

static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);
static HANDLER_LEN: AtomicUsize = AtomicUsize::new(0);
static mut HANDLER_BUF: [u8; 128] = [0; 128];

extern "C" fn on_signal(_sig: libc::c_int) {
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    // A call site used for the first time inside the handler: its id is
    // assigned here, with atomics only.
    let rec = ringtrace::bprintk!("in handler %d %s", 99, "sig");
    // SAFETY: only this handler touches HANDLER_BUF until the main thread
    // reads it after `raise` returned; the signal is delivered synchronously.
    let buf = unsafe { &mut *std::ptr::addr_of_mut!(HANDLER_BUF) };
    let c = CommonFields {
        flags: ringtrace::event::flags::IN_SIGNAL_HANDLER,
        preempt_count: 1,
        pid: 1,
    };
    if let Ok(n) = rec.encode(&c, buf) {
        HANDLER_LEN.store(n, Ordering::SeqCst);
    }
}

#[test]
fn first_use_inside_a_signal_handler() {
    // SAFETY: installs a handler that only uses atomics and the static buffer;
    // `raise` delivers SIGUSR1 synchronously to this thread.
    unsafe {
        ringtrace::signal::install(
            libc::SIGUSR1,
            ringtrace::signal::Handler::Plain(on_signal),
            0,
        )
        .unwrap();
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
    }
    assert_eq!(IN_HANDLER.load(Ordering::SeqCst), 1);
    let n = HANDLER_LEN.load(Ordering::SeqCst);
    assert!(n > 24);
    // SAFETY: the handler has run and returned; nothing else writes the buffer.
    let rec = unsafe { (&*std::ptr::addr_of!(HANDLER_BUF))[..n].to_vec() };
    let (site, text) = format_bprint(&rec).unwrap();
    assert_eq!(text, "in handler 99 sig");
    assert!(ringtrace::printk::printk_formats_text().contains("\"in handler %d %s\""));
    assert_eq!(site.file(), file!());
}
