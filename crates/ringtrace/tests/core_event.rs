//! Typed events declared from outside the crate: the `format` text matches
//! the trace.dat reference (§3.3) byte for byte, and records decode.

use ringtrace::event::{flags, CommonFields, EncodeError, Record, Registry, RegistryError};

ringtrace::declare_event! {
    /// The reference's demo event.
    pub struct DemoMsg<'a>: "demo" / "demo_msg" = 1001 {
        msg: &'a str,
        level: i32,
    }
    print_fmt = "\"level=%d msg=%s\", REC->level, __get_str(msg)";
}

ringtrace::declare_event! {
    /// The reference's fixed event (padded to sizeof = 24 like a C struct).
    pub struct DemoFixed: "demo" / "demo_fixed" = 1002 {
        seq: u64,
        value: u32,
    }
    print_fmt = "\"seq=%llu value=%u\", REC->seq, REC->value";
}

ringtrace::declare_event! {
    /// No fields at all.
    pub struct Empty: "demo" / "empty" = 1003 {}
}

#[test]
fn demo_msg_format_matches_the_reference_exactly() {
    let want = "name: demo_msg\n\
ID: 1001\n\
format:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:__data_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:int level;\toffset:12;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"level=%d msg=%s\", REC->level, __get_str(msg)\n";
    assert_eq!(DemoMsg::EVENT_TYPE.format_text(), want);
    assert_eq!(DemoFixed::FIXED_SIZE, 24);
    assert_eq!(Empty::FIXED_SIZE, 8);
    assert!(Empty::EVENT_TYPE
        .format_text()
        .ends_with("\n\n\nprint fmt: \"\"\n"));
}

#[test]
fn records_encode_and_render() {
    let c = CommonFields {
        flags: flags::IN_SIGNAL_HANDLER,
        preempt_count: 1,
        pid: 4242,
    };
    let mut buf = [0u8; 64];
    let ev = DemoMsg {
        msg: "hello",
        level: -3,
    };
    let n = ev.encode(&c, &mut buf).unwrap();
    assert_eq!(n, 16 + 6);
    let (id, got) = CommonFields::read(&buf).unwrap();
    assert_eq!((id, got), (1001, c));
    assert_eq!(&buf[8..12], &((6u32 << 16) | 16).to_ne_bytes());
    assert_eq!(&buf[16..22], b"hello\0");
    assert_eq!(
        DemoMsg::EVENT_TYPE.render_fields(&buf[..n]).unwrap(),
        "msg=hello level=-3"
    );

    let n = DemoFixed {
        seq: 7,
        value: u32::MAX,
    }
    .encode(&c, &mut buf)
    .unwrap();
    assert_eq!(n, 24);
    assert_eq!(
        DemoFixed::EVENT_TYPE.render_fields(&buf[..n]).unwrap(),
        "seq=7 value=4294967295"
    );

    let n = Empty {}.encode(&c, &mut buf).unwrap();
    assert_eq!(n, 8);
    let mut tiny = [0u8; 7];
    assert_eq!(
        Empty {}.encode(&c, &mut tiny),
        Err(EncodeError::BufferTooSmall { need: 8, have: 7 })
    );
}

#[test]
fn registry_maps_ids_and_refuses_clashes() {
    let r = Registry::new();
    r.register(DemoMsg::EVENT_TYPE).unwrap();
    r.register(DemoFixed::EVENT_TYPE).unwrap();
    assert_eq!(r.get(1001).map(|t| t.name), Some("demo_msg"));
    assert_eq!(r.get(1002).map(|t| t.name), Some("demo_fixed"));
    assert!(r.get(1003).is_none());
    static CLASH: ringtrace::event::EventType = ringtrace::event::EventType {
        name: "clash",
        system: "x",
        id: 1001,
        fields: &[],
        print_fmt: "",
    };
    assert!(matches!(
        r.register(&CLASH),
        Err(RegistryError::IdTaken { id: 1001, .. })
    ));
    let ids: Vec<u16> = r.iter().map(|t| t.id).collect();
    assert_eq!(ids, [1001, 1002]);
    // The global registry starts with ftrace's print and bprint.
    let g = Registry::global();
    assert_eq!(
        g.get(5).map(|t| (t.system, t.name)),
        Some(("ftrace", "print"))
    );
    assert_eq!(
        g.get(6).map(|t| (t.system, t.name)),
        Some(("ftrace", "bprint"))
    );
}
