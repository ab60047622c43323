//! Typed events' lines prepared once per event type, for a reader that
//! prints many records of each (the pipe).
//!
//! # Terms
//!
//! - **Plain type**: an event type whose fields are all integers of 1, 2,
//!   4 or 8 bytes (no array, no `__data_loc` string, no float): most
//!   declared events. Its line is `name: a=1 b=2`.
//! - **Plan**: for a plain type, each field's offset, size and sign and
//!   the text written before its value (`name: a=` for the first, ` b=`
//!   for the next), so that a record's line is a few copies and integer
//!   conversions.
//!
//! # Contract
//!
//! A plan writes exactly what `name: ` followed by
//! [`EventType::write_fields`] writes for the record. It writes only
//! records long enough for every field; for any other record, and for a
//! type that is not plain, it writes nothing and says so: the caller
//! then renders the record the general way (which names the fault).

use core::fmt::Write;

use crate::event::{Array, EventType};

/// One field of a plain type.
#[derive(Debug, Clone, Copy)]
struct PlanField {
    offset: u16,
    size: u16,
    signed: bool,
    /// End of the text written before this field's value in
    /// [`Plan::text`] (it starts where the previous one ended).
    text_end: u32,
}

/// A plain type's line, prepared.
#[derive(Debug)]
struct Plan {
    /// `name: a=` ` b=` ..., one after the other.
    text: String,
    fields: Box<[PlanField]>,
    /// Bytes a record needs for every field.
    need: usize,
}

impl Plan {
    /// `None` when `t` is not a plain type.
    fn of(t: &EventType) -> Option<Plan> {
        let mut text = String::new();
        let mut fields = Vec::with_capacity(t.fields.len());
        let mut need = 0;
        text.push_str(t.name);
        text.push_str(": ");
        for (i, f) in t.fields.iter().enumerate() {
            let plain = f.array == Array::None
                && !f.is_data_loc()
                && !f.is_float()
                && matches!(f.size, 1 | 2 | 4 | 8);
            if !plain {
                return None;
            }
            if i > 0 {
                text.push(' ');
            }
            text.push_str(f.name);
            text.push('=');
            need = need.max(usize::from(f.offset) + usize::from(f.size));
            fields.push(PlanField {
                offset: f.offset,
                size: f.size,
                signed: f.signed,
                text_end: u32::try_from(text.len()).ok()?,
            });
        }
        Some(Plan {
            text,
            fields: fields.into_boxed_slice(),
            need,
        })
    }

    /// The record's line after the context columns, without the newline.
    fn write<W: Write + ?Sized>(&self, w: &mut W, record: &[u8]) -> core::fmt::Result {
        let mut start = 0;
        for f in self.fields.iter() {
            let end = f.text_end as usize;
            w.write_str(self.text.get(start..end).unwrap_or(""))?;
            start = end;
            let at = usize::from(f.offset);
            let mut raw = [0u8; 8];
            // In range: the caller checked `need`.
            let bytes = record.get(at..at + usize::from(f.size)).unwrap_or(&[]);
            raw[..bytes.len()].copy_from_slice(bytes);
            let unsigned = u64::from_ne_bytes(raw);
            let mut digits = itoa::Buffer::new();
            let text = if f.signed {
                // Sign-extend from the field's size, as `field_text` does.
                let shift = 64 - 8 * u32::from(f.size);
                digits.format(((unsigned << shift) as i64) >> shift)
            } else {
                digits.format(unsigned)
            };
            w.write_str(text)?;
        }
        if self.fields.is_empty() {
            w.write_str(&self.text)?;
        }
        Ok(())
    }
}

/// Plans by type id, kept by a reader. An entry is checked to be the
/// type's (a session reader may learn types late; ids are not reused, but
/// the check is one comparison).
#[derive(Debug, Default)]
pub(crate) struct TypeCache {
    by_id: Vec<Option<(&'static EventType, Option<Plan>)>>,
}

impl TypeCache {
    /// Writes `name: ` and the fields of `record`, of type `t`, as
    /// `name: ` + [`EventType::write_fields`] would. False, with nothing
    /// written, when `t` is not plain or `record` is too short for its
    /// fields: render it the general way then.
    pub(crate) fn write<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        t: &'static EventType,
        record: &[u8],
    ) -> Result<bool, core::fmt::Error> {
        let i = usize::from(t.id);
        if self.by_id.len() <= i {
            self.by_id.resize_with(i + 1, || None);
        }
        let slot = &mut self.by_id[i];
        if !slot.as_ref().is_some_and(|(s, _)| core::ptr::eq(*s, t)) {
            *slot = Some((t, Plan::of(t)));
        }
        match slot {
            Some((_, Some(plan))) if record.len() >= plan.need => {
                plan.write(w, record)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CommonFields, Field};

    const fn int(name: &'static str, offset: u16, size: u16, signed: bool) -> Field {
        Field {
            name,
            c_type: "int",
            offset,
            size,
            signed,
            array: Array::None,
        }
    }

    static PLAIN_FIELDS: [Field; 8] = [
        int("a", 8, 1, false),
        int("b", 9, 1, true),
        int("c", 10, 2, false),
        int("d", 12, 2, true),
        int("e", 16, 4, false),
        int("f", 20, 4, true),
        int("g", 24, 8, false),
        int("h", 32, 8, true),
    ];
    static PLAIN: EventType = EventType {
        name: "plain",
        system: "test",
        id: 3001,
        fields: &PLAIN_FIELDS,
        print_fmt: "",
    };
    static NONE: EventType = EventType {
        name: "no_fields",
        system: "test",
        id: 3002,
        fields: &[],
        print_fmt: "",
    };
    static STR_FIELDS: [Field; 2] = [
        int("n", 8, 4, false),
        Field {
            name: "s",
            c_type: "__data_loc char[]",
            offset: 12,
            size: 4,
            signed: false,
            array: Array::None,
        },
    ];
    static WITH_STR: EventType = EventType {
        name: "with_str",
        system: "test",
        id: 3003,
        fields: &STR_FIELDS,
        print_fmt: "",
    };

    /// What the general path writes: `name: ` and `write_fields`, or
    /// `None` where that fails.
    fn general(t: &EventType, record: &[u8]) -> Option<String> {
        let mut s = format!("{}: ", t.name);
        t.write_fields(&mut s, record).ok()?.ok()?;
        Some(s)
    }

    /// A plain type's plan writes the general path's text for every size
    /// and sign at the edges of their ranges; a record cut short and a
    /// type with a string are left to the general path, nothing written.
    #[test]
    fn plans_write_what_write_fields_writes() {
        let mut cache = TypeCache::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..4000 {
            let mut rec = [0u8; 40];
            CommonFields::default().write(PLAIN.id, &mut rec);
            for b in &mut rec[8..] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Edges (0, all ones, the sign bit alone) and noise.
                *b = match round % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => 0x80,
                    _ => x as u8,
                };
            }
            let mut got = String::new();
            assert!(cache.write(&mut got, &PLAIN, &rec).unwrap());
            assert_eq!(Some(got), general(&PLAIN, &rec), "round {round}");
        }
        let mut got = String::new();
        assert!(cache.write(&mut got, &NONE, &[0; 8]).unwrap());
        assert_eq!(Some(got), general(&NONE, &[0; 8]));
        let mut untouched = String::new();
        assert!(!cache.write(&mut untouched, &PLAIN, &[0; 39]).unwrap());
        assert!(!cache.write(&mut untouched, &WITH_STR, &[0; 16]).unwrap());
        assert!(untouched.is_empty());
    }
}
