//! Cross-check with the real `trace-cmd report` (skipped, with a note, where
//! trace-cmd is not installed): binary printk records and marker records in a
//! minimal version-6 trace.dat (written here, independently of the `tracedat`
//! module) must print exactly as our own reader formats them, and TSC time
//! stamps must convert exactly as `Clock::to_ns` does.

use std::process::Command;

use ringtrace::clock::Clock;
use ringtrace::event::{CommonFields, Record};
use ringtrace::printk::{self, format_bprint, format_print, trace_cmd_compatible, Print};

/// One 4 KiB page (8-byte commit word) holding `records`, 1000 clock units apart.
fn page(records: &[Vec<u8>], ts0: u64) -> Vec<u8> {
    let mut p = vec![0u8; 4096];
    p[0..8].copy_from_slice(&ts0.to_le_bytes());
    let mut off = 16;
    for (i, r) in records.iter().enumerate() {
        let len = (r.len() + 3) & !3;
        assert!(len <= 112, "test records use the short form");
        let delta: u32 = if i == 0 { 0 } else { 1000 };
        p[off..off + 4].copy_from_slice(&(((len / 4) as u32) | (delta << 5)).to_le_bytes());
        p[off + 4..off + 4 + r.len()].copy_from_slice(r);
        off += 4 + len;
    }
    p[8..16].copy_from_slice(&((off - 16) as u64).to_le_bytes());
    p
}

fn trace_dat(page: &[u8], clock: &Clock) -> Vec<u8> {
    fn blob8(f: &mut Vec<u8>, s: &str) {
        f.extend_from_slice(&(s.len() as u64).to_le_bytes());
        f.extend_from_slice(s.as_bytes());
    }
    fn blob4(f: &mut Vec<u8>, s: &str) {
        f.extend_from_slice(&(s.len() as u32).to_le_bytes());
        f.extend_from_slice(s.as_bytes());
    }
    let mut f = vec![0x17, 0x08, 0x44];
    f.extend_from_slice(b"tracing6\0");
    f.extend_from_slice(&[0, 8]);
    f.extend_from_slice(&4096u32.to_le_bytes());
    f.extend_from_slice(b"header_page\0");
    blob8(
        &mut f,
        "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
         \tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
         \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
         \tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n",
    );
    f.extend_from_slice(b"header_event\0");
    blob8(&mut f, "");
    f.extend_from_slice(&2u32.to_le_bytes());
    blob8(&mut f, &printk::PRINT_EVENT.format_text());
    blob8(&mut f, &printk::BPRINT_EVENT.format_text());
    f.extend_from_slice(&0u32.to_le_bytes()); // no other event systems
    blob4(&mut f, &printk::kallsyms_text());
    blob4(&mut f, &printk::printk_formats_text());
    blob8(&mut f, "4321 ringtrace-t\n");
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(b"options  \0");
    let tc = clock.trace_clock_text();
    f.extend_from_slice(&4u16.to_le_bytes()); // TRACECLOCK
    f.extend_from_slice(&((tc.len() + 1) as u32).to_le_bytes());
    f.extend_from_slice(tc.as_bytes());
    f.push(0);
    if let Some(t) = clock.tsc2nsec() {
        f.extend_from_slice(&14u16.to_le_bytes()); // TSC2NSEC
        f.extend_from_slice(&16u32.to_le_bytes());
        f.extend_from_slice(&t.mult.to_le_bytes());
        f.extend_from_slice(&t.shift.to_le_bytes());
        f.extend_from_slice(&t.offset.to_le_bytes());
    }
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(b"flyrecord\0");
    let table = f.len();
    f.extend_from_slice(&[0u8; 16]);
    blob8(&mut f, &format!("[{}]", clock.name()));
    f.resize(f.len().div_ceil(4096) * 4096, 0);
    let data = f.len() as u64;
    f.extend_from_slice(page);
    f[table..table + 8].copy_from_slice(&data.to_le_bytes());
    f[table + 8..table + 16].copy_from_slice(&(page.len() as u64).to_le_bytes());
    f
}

/// `trace-cmd report [extra] -i <file>` output, or None if trace-cmd is missing.
fn report(dat: &[u8], name: &str, extra: &[&str]) -> Option<String> {
    let path = std::env::temp_dir().join(format!("ringtrace-{}-{name}.dat", std::process::id()));
    std::fs::write(&path, dat).unwrap();
    let out = Command::new("trace-cmd")
        .arg("report")
        .args(extra)
        .arg("-i")
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(o) => {
            assert!(
                o.status.success(),
                "trace-cmd failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            Some(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("trace-cmd not installed: cross-check skipped");
            None
        }
        Err(e) => panic!("running trace-cmd: {e}"),
    }
}

fn encode(r: &dyn Fn(&CommonFields, &mut [u8]) -> usize) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    let c = CommonFields {
        flags: 0,
        preempt_count: 0,
        pid: 4321,
    };
    let n = r(&c, &mut b);
    b.truncate(n);
    b
}

#[test]
fn trace_cmd_prints_bprint_records_like_our_reader() {
    let recs = vec![
        encode(&|c, b| {
            ringtrace::bprintk!("ints %d %u %x %X %o %i", -5, 7u32, 255, 255, 8, i32::MIN)
                .encode(c, b)
                .unwrap()
        }),
        encode(&|c, b| {
            ringtrace::bprintk!(
                "wide %lld %llu %lx %zu",
                -9i64,
                u64::MAX,
                0xabcdefu64,
                3usize
            )
            .encode(c, b)
            .unwrap()
        }),
        encode(&|c, b| {
            ringtrace::bprintk!("pad %05d|%8u|%.3d|%08llx", 42, 7u32, 3, 0xbeefu64)
                .encode(c, b)
                .unwrap()
        }),
        encode(&|c, b| {
            ringtrace::bprintk!(
                "strs [%s] [%s] [%.2s] [%6s] %d\n",
                "hello",
                "",
                "abcdef",
                "ab",
                1
            )
            .encode(c, b)
            .unwrap()
        }),
        encode(&|c, b| {
            ringtrace::bprintk!("ptr %p bool %s", 0x1234usize, true)
                .encode(c, b)
                .unwrap()
        }),
        encode(&|c, b| ringtrace::bprintk!("no args at all").encode(c, b).unwrap()),
    ];
    let marker = encode(&|c, b| {
        Print {
            ip: printk::MARKER_IP,
            text: "marker text",
        }
        .encode(c, b)
        .unwrap()
    });
    let mut all = recs.clone();
    all.push(marker.clone());
    let Some(out) = report(
        &trace_dat(&page(&all, 1_000_000_000), &Clock::mono()),
        "bprint",
        &[],
    ) else {
        return;
    };
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("ringtrace-t-4321"))
        .collect();
    assert_eq!(lines.len(), all.len(), "{out}");
    for (rec, line) in recs.iter().zip(&lines) {
        let (site, ours) = format_bprint(rec).unwrap();
        assert!(trace_cmd_compatible(site.format()));
        let prefix = format!("{}:{}: ", site.file(), site.line());
        let theirs = line.split_once("bprint:").unwrap().1.trim_start();
        let theirs = theirs
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(theirs, ours.trim_end_matches('\n'), "{line}");
    }
    let last = lines[lines.len() - 1];
    assert!(
        last.ends_with(&format!(
            "print:                tracing_mark_write: {}",
            format_print(&marker).unwrap()
        )),
        "{last}"
    );
    assert!(lines[0].contains("  1.000000: bprint:"), "{}", lines[0]);
}

#[test]
fn trace_cmd_converts_tsc_like_clock_to_ns() {
    let Ok(tsc) = Clock::tsc() else { return };
    let t0 = tsc.now();
    let recs = vec![
        encode(&|c, b| ringtrace::bprintk!("first").encode(c, b).unwrap()),
        encode(&|c, b| ringtrace::bprintk!("second").encode(c, b).unwrap()),
    ];
    let Some(out) = report(&trace_dat(&page(&recs, t0), &tsc), "tsc", &["-t"]) else {
        return;
    };
    let stamps: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("ringtrace-t-4321"))
        .map(|l| {
            l.split_once("] ")
                .unwrap()
                .1
                .split(':')
                .next()
                .unwrap()
                .trim()
        })
        .collect();
    let want = |raw: u64| {
        let ns = tsc.to_ns(raw);
        format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
    };
    assert_eq!(stamps, [want(t0), want(t0 + 1000)], "{out}");
}
