//! `report`'s record filters: `-e NAME|GLOB` (event selection by name),
//! `--pid`, `--comm`, and trace-cmd's `-F` filter strings.
//!
//! `-F` takes the subset of libtraceevent's filter language that
//! `trace-cmd report -F` users write most:
//!
//! ```text
//! filter  := events [ ':' cond ]
//! events  := event { ',' event }          event := [ system '/' ] name
//!            names are regular expressions, anchored and case-insensitive,
//!            as libtraceevent matches them (`sched.*`, `print`)
//! cond    := or ;  or := and { '||' and } ;  and := not { '&&' not }
//! not     := '!' not | '(' cond ')' | field op value
//! op      := '==' | '!=' | '<' | '<=' | '>' | '>=' | '~' (glob, strings)
//! field   := an event field, common_pid, common_flags,
//!            common_preempt_count, COMM (the thread name) or CPU
//! value   := a number (decimal or 0x hex, may be negative) or a string
//!            ('...' or "..." or a bare word)
//! ```
//!
//! As trace-cmd: a record is shown when it passes one of the `-F` filters
//! (none given: all pass); `-v` negates every `-F` after it. A field the
//! event lacks makes its comparison false. `-e`, `--pid` and `--comm`
//! narrow further (each list: any of its entries). Bad filter text is an
//! error naming the filter and what was expected there.

use regex::{Regex, RegexBuilder};
use ringtrace::tracedat::{DecodedRecord, FieldValue};

/// Everything a record must pass to be printed.
#[derive(Debug, Default)]
pub struct RecordFilter {
    /// `-e`: event names or globs (any).
    events: Vec<Regex>,
    pids: Vec<i32>,
    comms: Vec<String>,
    /// `-F` filters, each with its negation (`-v` before it).
    filters: Vec<(bool, Filter)>,
}

/// What a filter sees of a record.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The decoded record.
    pub rec: &'a DecodedRecord<'a>,
    /// Its thread name.
    pub comm: &'a str,
    /// Its CPU.
    pub cpu: u32,
}

impl RecordFilter {
    /// Builds the filter of `report`'s options; `negate_from` is the index
    /// of the first `-F` that `-v` negates.
    pub fn new(
        events: &[String],
        pids: &[i32],
        comms: &[String],
        filters: &[String],
        negate_from: Option<usize>,
    ) -> Result<Self, String> {
        let events = events
            .iter()
            .map(|e| glob_regex(e))
            .collect::<Result<_, _>>()?;
        let filters = filters
            .iter()
            .enumerate()
            .map(|(i, f)| Ok((negate_from.is_some_and(|n| i >= n), Filter::parse(f)?)))
            .collect::<Result<_, String>>()?;
        Ok(RecordFilter {
            events,
            pids: pids.to_vec(),
            comms: comms.to_vec(),
            filters,
        })
    }

    /// Whether it filters anything at all.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.pids.is_empty()
            && self.comms.is_empty()
            && self.filters.is_empty()
    }

    /// Whether `s` is printed.
    pub fn passes(&self, s: &Subject<'_>) -> bool {
        let f = s.rec.format;
        let names = [
            f.name.clone(),
            format!("{}/{}", f.system, f.name),
            format!("{}:{}", f.system, f.name),
        ];
        if !self.events.is_empty()
            && !self
                .events
                .iter()
                .any(|re| names.iter().any(|n| re.is_match(n)))
        {
            return false;
        }
        if !self.pids.is_empty() && !self.pids.contains(&s.rec.pid) {
            return false;
        }
        if !self.comms.is_empty() && !self.comms.iter().any(|c| c == s.comm) {
            return false;
        }
        self.filters.is_empty() || self.filters.iter().any(|(neg, f)| f.matches(s) != *neg)
    }
}

/// A glob (`*`, `?`) as an anchored regular expression; also accepts a
/// plain name.
fn glob_regex(glob: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("-e {glob}: {e}"))
}

/// One `-F` filter: the events it applies to and its condition.
#[derive(Debug)]
struct Filter {
    /// `(system, name)` patterns; the system is optional.
    events: Vec<(Option<Regex>, Regex)>,
    cond: Option<Cond>,
}

/// A condition over a record's fields.
#[derive(Debug)]
enum Cond {
    Or(Box<Cond>, Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Cmp(String, Op, Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Glob,
}

#[derive(Debug)]
enum Value {
    Num(i128),
    Text(String, Option<Regex>),
}

fn name_regex(p: &str, filter: &str) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{p})$"))
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("-F {filter:?}: bad event name {p:?}: {e}"))
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, String> {
        let (events, cond) = match text.split_once(':') {
            Some((e, c)) => (e, Some(c)),
            None => (text, None),
        };
        let mut evs = Vec::new();
        for e in events.split(',') {
            let e = e.trim();
            if e.is_empty() {
                return Err(format!("-F {text:?}: an empty event name"));
            }
            evs.push(match e.split_once('/') {
                Some((sys, name)) => (Some(name_regex(sys, text)?), name_regex(name, text)?),
                None => (None, name_regex(e, text)?),
            });
        }
        let cond = match cond {
            Some(c) => {
                let mut p = Parser {
                    toks: tokenize(c).map_err(|e| format!("-F {text:?}: {e}"))?,
                    at: 0,
                };
                let cond = p.or().map_err(|e| format!("-F {text:?}: {e}"))?;
                if let Some(t) = p.toks.get(p.at) {
                    return Err(format!("-F {text:?}: unexpected {t:?} after the condition"));
                }
                Some(cond)
            }
            None => None,
        };
        Ok(Filter { events: evs, cond })
    }

    fn matches(&self, s: &Subject<'_>) -> bool {
        let f = s.rec.format;
        let applies = self.events.iter().any(|(sys, name)| {
            name.is_match(&f.name)
                && match sys {
                    Some(re) => re.is_match(&f.system),
                    None => true,
                }
        });
        applies
            && match &self.cond {
                Some(c) => c.eval(s),
                None => true,
            }
    }
}

impl Cond {
    fn eval(&self, s: &Subject<'_>) -> bool {
        match self {
            Cond::Or(a, b) => a.eval(s) || b.eval(s),
            Cond::And(a, b) => a.eval(s) && b.eval(s),
            Cond::Not(a) => !a.eval(s),
            Cond::Cmp(field, op, v) => compare(s, field, *op, v),
        }
    }
}

/// A field of the record, as a number or as text.
enum Got {
    Num(i128),
    Text(String),
}

fn field_of(s: &Subject<'_>, name: &str) -> Option<Got> {
    let r = s.rec;
    Some(match name {
        "common_pid" => Got::Num(r.pid.into()),
        "common_flags" => Got::Num(r.flags.into()),
        "common_preempt_count" => Got::Num(r.preempt_count.into()),
        "common_type" => Got::Num(r.format.id.into()),
        "COMM" => Got::Text(s.comm.to_string()),
        "CPU" => Got::Num(s.cpu.into()),
        _ => match &r.fields.iter().find(|(n, _)| *n == name)?.1 {
            FieldValue::Unsigned(u) => Got::Num((*u).into()),
            FieldValue::Signed(i) => Got::Num((*i).into()),
            FieldValue::Str(t) => Got::Text(t.clone()),
            _ => return None,
        },
    })
}

fn compare(s: &Subject<'_>, field: &str, op: Op, v: &Value) -> bool {
    match (field_of(s, field), v) {
        (Some(Got::Num(a)), Value::Num(b)) => match op {
            Op::Eq => a == *b,
            Op::Ne => a != *b,
            Op::Lt => a < *b,
            Op::Le => a <= *b,
            Op::Gt => a > *b,
            Op::Ge => a >= *b,
            Op::Glob => false,
        },
        (Some(Got::Text(a)), Value::Text(b, glob)) => match op {
            Op::Eq => a == *b,
            Op::Ne => a != *b,
            Op::Glob => glob.as_ref().is_some_and(|g| g.is_match(&a)),
            _ => false,
        },
        _ => false,
    }
}

/// A token of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    const SYMS: [&str; 12] = [
        "&&", "||", "==", "!=", "<=", ">=", "<", ">", "~", "!", "(", ")",
    ];
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    'outer: while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' {
            let end = s[i + 1..]
                .find(c as char)
                .ok_or_else(|| format!("a string opened at byte {i} is not closed"))?;
            toks.push(Tok::Quoted(s[i + 1..i + 1 + end].to_string()));
            i += end + 2;
            continue;
        }
        for sym in SYMS {
            if s[i..].starts_with(sym) {
                toks.push(Tok::Sym(sym));
                i += sym.len();
                continue 'outer;
            }
        }
        let start = i;
        while i < b.len()
            && !b[i].is_ascii_whitespace()
            && !matches!(
                b[i],
                b'&' | b'|' | b'=' | b'!' | b'<' | b'>' | b'~' | b'(' | b')'
            )
        {
            i += 1;
        }
        if start == i {
            return Err(format!("unexpected {:?} at byte {i}", c as char));
        }
        toks.push(Tok::Word(s[start..i].to_string()));
    }
    Ok(toks)
}

/// A recursive-descent parser over the tokens (depth bounded by the
/// filter's length, which the command line bounds).
struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, sym: &'static str) -> bool {
        if self.peek() == Some(&Tok::Sym(sym)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut c = self.and()?;
        while self.eat("||") {
            c = Cond::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut c = self.not()?;
        while self.eat("&&") {
            c = Cond::And(Box::new(c), Box::new(self.not()?));
        }
        Ok(c)
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.eat("!") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        if self.eat("(") {
            let c = self.or()?;
            if !self.eat(")") {
                return Err("a `(` is not closed".into());
            }
            return Ok(c);
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Cond, String> {
        let field = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            Some(t) => return Err(format!("expected a field name, found {t:?}")),
            None => return Err("expected a field name, found the end".into()),
        };
        self.at += 1;
        let op = match self.peek() {
            Some(Tok::Sym("==")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Sym("~")) => Op::Glob,
            _ => return Err(format!("expected one of == != < <= > >= ~ after `{field}`")),
        };
        self.at += 1;
        let value = match self.peek() {
            Some(Tok::Word(w)) => match number(w) {
                Some(n) => Value::Num(n),
                None => text_value(w, op)?,
            },
            Some(Tok::Quoted(q)) => text_value(q, op)?,
            _ => return Err(format!("expected a value after `{field}`")),
        };
        self.at += 1;
        if matches!(value, Value::Num(_)) && op == Op::Glob {
            return Err(format!("`~` compares text: `{field} ~ \"glob*\"`"));
        }
        Ok(Cond::Cmp(field, op, value))
    }
}

fn text_value(t: &str, op: Op) -> Result<Value, String> {
    let glob = if op == Op::Glob {
        Some(glob_regex(t)?)
    } else {
        None
    };
    Ok(Value::Text(t.to_string(), glob))
}

/// A decimal or `0x` hex number, possibly negative.
fn number(w: &str) -> Option<i128> {
    let (neg, digits) = match w.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, w),
    };
    let n = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i128::from_str_radix(h, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_trace_cmd_users_write() {
        for ok in [
            "print",
            "ftrace/print",
            "job,print",
            "j.*",
            "job: worker == 1",
            "job: worker == 1 && id >= 0x10",
            "job: (worker == 1 || worker == 2) && !(id < 3)",
            "print: COMM ~ \"work*\"",
            "job: common_pid == 42",
            "job: COMM == 'a b'",
        ] {
            Filter::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn bad_filters_say_what_and_where() {
        for (bad, says) in [
            ("job: worker", "expected one of"),
            ("job: worker ==", "expected a value"),
            ("job: (worker == 1", "not closed"),
            ("job: worker == 1 )", "unexpected"),
            ("job: 'abc", "not closed"),
            (",job", "empty event name"),
            ("job: worker ~ 3", "compares text"),
            ("job: == 3", "expected a field name"),
            ("(: x == 1", "bad event name"),
        ] {
            let e = Filter::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: the error names the filter: {e}");
        }
    }
}
