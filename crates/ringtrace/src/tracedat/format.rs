//! Parsing of ftrace event `format` text (tracefs `events/<sys>/<event>/format`).
//!
//! Layout relied on (trace-dat-format.md §3.3):
//!
//! ```text
//! name: demo_msg
//! ID: 1001
//! format:
//! \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
//! ...common fields...
//! <empty line>                    ends the common fields
//! \tfield:__data_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;
//! <empty line>                    ends the event fields
//! print fmt: "msg=%s", __get_str(msg)
//! ```
//!
//! Offsets are from the start of the record payload (`common_type`). The
//! `print fmt` is kept as text, not evaluated.

use super::error::FormatError;

/// How a field's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A scalar of `size` bytes (1, 2, 4 or 8 for integers).
    Scalar,
    /// A fixed array `type name[len]`; `char` arrays are strings.
    Array {
        /// Declared number of elements.
        len: usize,
    },
    /// `__data_loc T[] name`: a u32 `(len << 16) | offset`, offset from the
    /// payload start.
    DataLoc,
    /// `__rel_loc T[] name`: like `DataLoc` but the offset is from the end of
    /// the 4-byte field.
    RelLoc,
}

/// One field of an event format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFormat {
    /// Field name, e.g. `common_pid`.
    pub name: String,
    /// The declared C type without the name and array suffix, e.g.
    /// `unsigned short`, `char`, `__data_loc char[]`.
    pub type_name: String,
    /// Byte offset in the payload.
    pub offset: usize,
    /// Byte size in the payload.
    pub size: usize,
    /// `signed:1`.
    pub signed: bool,
    /// Layout kind.
    pub kind: FieldKind,
}

impl FieldFormat {
    /// `true` if the element type is `char` (or `signed`/`const char`):
    /// such arrays and dynamic fields are strings. `unsigned char` / `u8`
    /// arrays are bytes.
    #[must_use]
    pub fn is_char(&self) -> bool {
        let base = self
            .type_name
            .trim_start_matches("__data_loc")
            .trim_start_matches("__rel_loc")
            .trim();
        let mut words = base.split_whitespace();
        !base.contains('*')
            && !base.split_whitespace().any(|w| w == "unsigned")
            && words.any(|w| w == "char" || w.starts_with("char["))
    }
}

/// One parsed event format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat {
    /// Event system (from the file section it came from).
    pub system: String,
    /// Event name (`name:` line).
    pub name: String,
    /// Event id (`ID:` line); equals `common_type` in each record.
    pub id: u32,
    /// Fields before the first empty line (`common_*`).
    pub common_fields: Vec<FieldFormat>,
    /// The event's own fields.
    pub fields: Vec<FieldFormat>,
    /// The `print fmt:` text, unevaluated.
    pub print_fmt: String,
}

impl EventFormat {
    /// A common or own field by name.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&FieldFormat> {
        self.common_fields
            .iter()
            .chain(self.fields.iter())
            .find(|f| f.name == name)
    }
}

fn err(line: usize, reason: impl Into<String>) -> FormatError {
    FormatError {
        line,
        reason: reason.into(),
    }
}

/// Parses one `format` text. `system` is recorded as is.
pub fn parse_format(system: &str, text: &str) -> Result<EventFormat, FormatError> {
    let mut name = None;
    let mut id = None;
    let mut common_fields = Vec::new();
    let mut fields = Vec::new();
    let mut print_fmt = String::new();
    let mut in_format = false;
    let mut blank_lines = 0;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("print fmt:") {
            print_fmt = rest.trim().to_string();
            in_format = false;
            continue;
        }
        if !in_format {
            if let Some(rest) = line.strip_prefix("name:") {
                name = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("ID:") {
                let v = rest
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| err(lineno, format!("bad ID {:?}", rest.trim())))?;
                id = Some(v);
            } else if line == "format:" {
                in_format = true;
            }
            continue;
        }
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if line.starts_with("field:") || line.starts_with("field ") {
            let f = parse_field_line(line).map_err(|reason| err(lineno, reason))?;
            if blank_lines == 0 {
                common_fields.push(f);
            } else {
                fields.push(f);
            }
        }
    }
    Ok(EventFormat {
        system: system.to_string(),
        name: name.ok_or_else(|| err(1, "missing `name:` line"))?,
        id: id.ok_or_else(|| err(1, "missing `ID:` line"))?,
        common_fields,
        fields,
        print_fmt,
    })
}

fn parse_field_line(line: &str) -> Result<FieldFormat, String> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';') {
        let part = part.trim();
        if let Some(d) = part
            .strip_prefix("field:")
            .or_else(|| part.strip_prefix("field "))
        {
            decl = Some(d.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad offset {v:?}"))?,
            );
        } else if let Some(v) = part.strip_prefix("size:") {
            size = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad size {v:?}"))?,
            );
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl.ok_or("missing field declaration")?;
    let offset = offset.ok_or("missing offset")?;
    let size = size.ok_or("missing size")?;
    let (base, array_len) = match decl.strip_suffix(']') {
        Some(head) => {
            let lb = head.rfind('[').ok_or("unbalanced `]`")?;
            let len_text = head[lb + 1..].trim();
            let base = head[..lb].trim_end();
            // `__data_loc char[] name` has its brackets in the type, not here;
            // a suffix `[N]` is a fixed array (N may be a macro: keep 0).
            (base, Some(len_text.parse::<usize>().unwrap_or(0)))
        }
        None => (decl, None),
    };
    let name_start = base
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |(p, c)| p + c.len_utf8());
    let name = &base[name_start..];
    if name.is_empty() {
        return Err(format!("no field name in {decl:?}"));
    }
    let type_name = base[..name_start].trim().to_string();
    let kind = if type_name.starts_with("__data_loc") {
        FieldKind::DataLoc
    } else if type_name.starts_with("__rel_loc") {
        FieldKind::RelLoc
    } else if let Some(len) = array_len {
        FieldKind::Array { len }
    } else {
        FieldKind::Scalar
    };
    Ok(FieldFormat {
        name: name.to_string(),
        type_name,
        offset,
        size,
        signed,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = "name: demo_msg\nID: 1001\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:__data_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;\n\
\tfield:int level;\toffset:28;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"level=%d msg=%s\", REC->level, __get_str(msg)\n";

    #[test]
    fn parses_demo_format() {
        let f = parse_format("demo", DEMO).unwrap();
        assert_eq!(
            (f.name.as_str(), f.id, f.system.as_str()),
            ("demo_msg", 1001, "demo")
        );
        assert_eq!(f.common_fields.len(), 4);
        assert_eq!(f.common_fields[3].name, "common_pid");
        assert!(f.common_fields[3].signed);
        assert_eq!(f.fields.len(), 3);
        assert_eq!(f.fields[0].kind, FieldKind::DataLoc);
        assert_eq!(f.fields[0].name, "msg");
        assert!(f.fields[0].is_char());
        assert_eq!(f.fields[1].kind, FieldKind::Array { len: 16 });
        assert_eq!(f.fields[1].type_name, "char");
        assert_eq!((f.fields[2].offset, f.fields[2].size), (28, 4));
        assert_eq!(
            f.print_fmt,
            "\"level=%d msg=%s\", REC->level, __get_str(msg)"
        );
    }

    #[test]
    fn rejects_missing_parts() {
        assert!(parse_format("s", "ID: 3\nformat:\n").is_err());
        assert!(parse_format("s", "name: x\nformat:\n").is_err());
        let bad = "name: x\nID: 1\nformat:\n\tfield:int a;\toffset:zz;\tsize:4;\n";
        assert_eq!(parse_format("s", bad).unwrap_err().line, 4);
    }
}
