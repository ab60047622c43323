//! The JSON export's number and string writers: the bytes serde_json
//! writes, without its formatting machinery on the common path (itoa for
//! integers; a string with nothing to escape copied as it is).

use std::io::{self, Write};

/// Writes `s` as a JSON string, byte for byte as `serde_json::to_writer`
/// does: serde_json escapes only `"`, `\` and the control characters
/// below 0x20, so a string without them is copied between quotes.
pub(crate) fn write_str<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        w.write_all(b"\"")?;
        w.write_all(s.as_bytes())?;
        w.write_all(b"\"")
    } else {
        serde_json::to_writer(w, s).map_err(io::Error::other)
    }
}

/// Writes an integer as JSON (and as `{}` formats it).
pub(crate) fn write_int<W: Write, I: itoa::Integer>(w: &mut W, i: I) -> io::Result<()> {
    w.write_all(itoa::Buffer::new().format(i).as_bytes())
}

/// The bytes of a typed event's instant that depend on its format only:
/// `,"name":N,"cat":C,"args":{` and each own field's `"key":`.
#[derive(Debug)]
pub(crate) struct TypedHead {
    pub name_cat_args: Vec<u8>,
    pub keys: Vec<(String, Vec<u8>)>,
}

impl TypedHead {
    /// The head of `format`'s instants.
    pub(crate) fn new(format: &crate::tracedat::EventFormat) -> io::Result<Self> {
        let mut name_cat_args = b",\"name\":".to_vec();
        write_str(&mut name_cat_args, &format.name)?;
        name_cat_args.extend_from_slice(b",\"cat\":");
        write_str(&mut name_cat_args, &format.system)?;
        name_cat_args.extend_from_slice(b",\"args\":{");
        let keys = format
            .fields
            .iter()
            .map(|f| {
                let mut k = Vec::new();
                write_str(&mut k, &f.name)?;
                k.push(b':');
                Ok((f.name.clone(), k))
            })
            .collect::<io::Result<_>>()?;
        Ok(TypedHead {
            name_cat_args,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_match_serde_json() {
        for s in [
            "",
            "plain",
            "caf\u{e9} \u{7f}",
            "q\"uote",
            "back\\slash",
            "tab\there",
            "\u{1}",
        ] {
            let mut ours = Vec::new();
            write_str(&mut ours, s).unwrap();
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        for i in [0i64, -1, i64::MIN, i64::MAX] {
            let mut ours = Vec::new();
            write_int(&mut ours, i).unwrap();
            assert_eq!(ours, i.to_string().into_bytes());
        }
        let mut ours = Vec::new();
        write_int(&mut ours, u64::MAX).unwrap();
        assert_eq!(ours, u64::MAX.to_string().into_bytes());
    }
}
