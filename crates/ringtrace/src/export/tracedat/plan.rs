//! Decode plans: what [`TraceDatInfo::decode`](super::read::TraceDatInfo::decode)
//! and the renderer need to know about each event format, worked out once
//! per format when the file is opened instead of once per record (the
//! `char` test of a type name, the float types, the common fields' places,
//! which fields a field list leaves out), and the event-id table.

use super::format::{EventFormat, FieldFormat, FieldKind};

/// How a field's value is read, beyond its offset, size and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldPlan {
    /// [`FieldFormat::is_char`].
    pub is_char: bool,
    /// A `float` (4 bytes) or `double` (8 bytes) scalar.
    pub float: Option<Float>,
    /// Whether a field list shows the field: not a flexible array (size 0)
    /// as the first field of that name ([`EventFormat::field`]) says.
    pub listed: bool,
}

/// A floating-point field's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Float {
    /// `float`, 4 bytes.
    F32,
    /// `double`, 8 bytes.
    F64,
}

/// The plan of one event format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodePlan {
    /// Where `common_flags`, `common_preempt_count` and `common_pid` are, as
    /// [`EventFormat::field`] finds them (`None`: absent, read as 0).
    pub common: [Option<(FieldRef, FieldPlan)>; 3],
    /// One per entry of [`EventFormat::fields`].
    pub fields: Vec<FieldPlan>,
    /// Whether any entry of `fields` is not `listed`.
    pub any_unlisted: bool,
}

/// A field of a format: in `common_fields` or in `fields`, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldRef {
    /// Index into [`EventFormat::common_fields`].
    Common(usize),
    /// Index into [`EventFormat::fields`].
    Own(usize),
}

impl FieldRef {
    /// The field this refers to in `format` (the format it was made from).
    pub fn get(self, format: &EventFormat) -> Option<&FieldFormat> {
        match self {
            FieldRef::Common(i) => format.common_fields.get(i),
            FieldRef::Own(i) => format.fields.get(i),
        }
    }
}

/// The first field named `name`, searched as [`EventFormat::field`] does.
fn find(format: &EventFormat, name: &str) -> Option<FieldRef> {
    if let Some(i) = format.common_fields.iter().position(|f| f.name == name) {
        return Some(FieldRef::Common(i));
    }
    format
        .fields
        .iter()
        .position(|f| f.name == name)
        .map(FieldRef::Own)
}

impl FieldPlan {
    /// The plan of field `f` of `format`.
    fn new(format: &EventFormat, f: &FieldFormat) -> Self {
        FieldPlan {
            is_char: f.is_char(),
            float: match (f.type_name.as_str(), f.size) {
                ("double", 8) => Some(Float::F64),
                ("float", 4) => Some(Float::F32),
                _ => None,
            },
            listed: format
                .field(&f.name)
                .is_none_or(|f| !(f.size == 0 && matches!(f.kind, FieldKind::Array { .. }))),
        }
    }
}

impl DecodePlan {
    /// The plan of `format`.
    pub fn new(format: &EventFormat) -> Self {
        let common = |name: &str| {
            let r = find(format, name)?;
            Some((r, FieldPlan::new(format, r.get(format)?)))
        };
        let fields: Vec<FieldPlan> = format
            .fields
            .iter()
            .map(|f| FieldPlan::new(format, f))
            .collect();
        DecodePlan {
            common: [
                common("common_flags"),
                common("common_preempt_count"),
                common("common_pid"),
            ],
            any_unlisted: fields.iter().any(|p| !p.listed),
            fields,
        }
    }
}

/// Event ids of 16 bits (all a record's `common_type` can hold) to the
/// index of their first format, in a table indexed by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdTable {
    /// `u32::MAX`: no format.
    index: Vec<u32>,
}

impl IdTable {
    /// The table of `events` (the first format of an id wins).
    pub fn new(events: &[EventFormat]) -> Self {
        let max = events
            .iter()
            .filter(|e| e.id <= u32::from(u16::MAX))
            .map(|e| e.id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut index = vec![u32::MAX; max];
        for (i, e) in events.iter().enumerate() {
            if let Some(slot) = index.get_mut(e.id as usize) {
                if *slot == u32::MAX {
                    *slot = i as u32;
                }
            }
        }
        IdTable { index }
    }

    /// The index of the first format of `id`.
    pub fn get(&self, id: u16) -> Option<usize> {
        match self.index.get(usize::from(id)) {
            Some(&i) if i != u32::MAX => Some(i as usize),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tracedat::format::parse_format;

    const FMT: &str = "name: e\nID: 7\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:double d;\toffset:8;\tsize:8;\tsigned:1;\n\
        \tfield:__data_loc char[] s;\toffset:16;\tsize:4;\tsigned:0;\n\
        \tfield:u8 tail[];\toffset:20;\tsize:0;\tsigned:0;\n\n\
        print fmt: \"\"\n";

    #[test]
    fn plan_matches_the_per_record_answers() {
        let f = parse_format("s", FMT).expect("format");
        let p = DecodePlan::new(&f);
        assert_eq!(p.common[0], None);
        assert_eq!(p.common[2].map(|c| c.0), Some(FieldRef::Common(1)));
        assert_eq!(p.fields[0].float, Some(Float::F64));
        assert!(p.fields[1].is_char && !p.fields[0].is_char);
        assert_eq!(
            p.fields.iter().map(|f| f.listed).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert!(p.any_unlisted);
    }

    #[test]
    fn id_table_first_format_wins_and_misses_are_none() {
        let f = parse_format("s", FMT).expect("format");
        let t = IdTable::new(&[f.clone(), f]);
        assert_eq!(t.get(7), Some(0));
        assert_eq!(t.get(6), None);
        assert_eq!(t.get(u16::MAX), None);
    }
}
