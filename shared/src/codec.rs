//! JSON for the few wire types the widget sends and reads, without serde.
//!
//! The edge reads and writes these types with serde and serde_json; the widget uses this module
//! instead, because serde's generic code (a visitor per type, per field and per deserializer,
//! and the formatting behind its error messages) was about a fifth of the widget's wasm (issue 7,
//! docs/benchmarks.md). The format is serde's, to the byte: [`to_json`](ToJson::to_json) writes
//! exactly what `serde_json::to_string` writes (tests below check it on generated values), and
//! the readers give the same value for every document serde_json accepts. They are more lenient
//! in one way only: fields they do not know are skipped rather than refused, so a widget is
//! never broken by an edge that learned something new.
//!
//! Only the types the widget needs are here; everything else keeps using serde.

use crate::attribution::FirstTouch;
use crate::form::{
    Answer, Answers, Band, Choice, Condition, FormDefinition, Question, QuestionType, RawQuestion,
    Resource, Thresholds, VersionedForm,
};
use crate::score::{Grade, NextStep};
use crate::site::TurnstileConfig;
use crate::{EmbedConfig, FieldError, LeadCreated, LeadSubmission, Problem, SiteConfig};

/// A parsed JSON document. Numbers keep their text: each reader converts to the type it needs,
/// as serde would (`1.5` is no `u32`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order.
    Object(Vec<(String, Value)>),
}

/// Parses one JSON document (RFC 8259), with nothing but whitespace after it.
pub fn parse(text: &str) -> Option<Value> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = p.value()?;
    p.space();
    (p.at == p.bytes.len()).then_some(value)
}

/// serde_json's nesting limit: deeper documents are refused rather than overflow the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn word(&mut self, word: &str, value: Value) -> Option<Value> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            value
        })
    }

    fn value(&mut self) -> Option<Value> {
        self.space();
        match self.peek()? {
            b'n' => self.word("null", Value::Null),
            b't' => self.word("true", Value::Bool(true)),
            b'f' => self.word("false", Value::Bool(false)),
            b'"' => self.string().map(Value::String),
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return None;
                }
                let value = if self.peek()? == b'[' {
                    self.array()
                } else {
                    self.object()
                };
                self.depth -= 1;
                value
            }
            _ => self.number(),
        }
    }

    fn array(&mut self) -> Option<Value> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.space();
        if self.eat(b']').is_some() {
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.space();
            if self.eat(b']').is_some() {
                return Some(Value::Array(items));
            }
            self.eat(b',')?;
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.eat(b'{')?;
        let mut members = Vec::new();
        self.space();
        if self.eat(b'}').is_some() {
            return Some(Value::Object(members));
        }
        loop {
            self.space();
            let key = self.string()?;
            self.space();
            self.eat(b':')?;
            members.push((key, self.value()?));
            self.space();
            if self.eat(b'}').is_some() {
                return Some(Value::Object(members));
            }
            self.eat(b',')?;
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        Some(Value::Number(text.to_owned()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let byte = self.peek()?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = self.peek()?;
                    self.at += 1;
                    let c = match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.escaped_char()?,
                        _ => return None,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                // Control characters must be escaped.
                0..0x20 => return None,
                _ => out.push(byte),
            }
        }
    }

    /// The character of a `\uXXXX` escape (its `\u` read), with a surrogate pair's second half.
    fn escaped_char(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            return char::from_u32(first);
        }
        self.eat(b'\\')?;
        self.eat(b'u')?;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = (self.peek()? as char).to_digit(16)?;
            self.at += 1;
            n = n * 16 + digit;
        }
        Some(n)
    }
}

/// Writes a value as JSON, exactly as `serde_json::to_string` writes it.
pub trait ToJson {
    fn write_json(&self, out: &mut String);

    fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
}

/// Reads a value from a parsed document, as serde would; `None` when serde would fail.
pub trait FromJson: Sized {
    fn from_value(value: &Value) -> Option<Self>;

    fn from_json(text: &str) -> Option<Self> {
        Self::from_value(&parse(text)?)
    }
}

impl ToJson for str {
    /// serde_json's escaping: `"` and `\`, the short escapes for five control characters and
    /// `\u00XX` (lower-case hex) for the others; everything else as it is.
    fn write_json(&self, out: &mut String) {
        out.push('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0'..='\u{1f}' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[c as usize >> 4] as char);
                    out.push(HEX[c as usize & 0xf] as char);
                }
                _ => out.push(c),
            }
        }
        out.push('"');
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        self.as_str().write_json(out);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl ToJson for u32 {
    fn write_json(&self, out: &mut String) {
        write_u64(u64::from(*self), out);
    }
}

impl ToJson for u64 {
    fn write_json(&self, out: &mut String) {
        write_u64(*self, out);
    }
}

fn write_u64(mut n: u64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

impl ToJson for f64 {
    /// serde_json's float format (the `zmij` crate it uses: `40.0`, `0.1`, `1e21`), and `null`
    /// for a non-finite number.
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            out.push_str(zmij::Buffer::new().format_finite(*self));
        } else {
            out.push_str("null");
        }
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

/// Writes an object member by member, skipping what serde skips.
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    pub fn member(&mut self, key: &str, value: &(impl ToJson + ?Sized)) -> &mut Self {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        key.write_json(self.out);
        self.out.push(':');
        value.write_json(self.out);
        self
    }

    /// A member that serde skips when absent (`skip_serializing_if = "Option::is_none"`).
    pub fn optional(&mut self, key: &str, value: Option<&(impl ToJson + ?Sized)>) -> &mut Self {
        if let Some(value) = value {
            self.member(key, value);
        }
        self
    }

    pub fn end(&mut self) {
        self.out.push('}');
    }
}

/// A parsed document written back: numbers as they were written, members in their order.
impl ToJson for Value {
    fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => b.write_json(out),
            Value::Number(text) => out.push_str(text),
            Value::String(s) => s.write_json(out),
            Value::Array(items) => items.write_json(out),
            Value::Object(members) => {
                let mut object = ObjectWriter::new(out);
                for (key, value) in members {
                    object.member(key, value);
                }
                object.end();
            }
        }
    }
}

/// The JSON object `document` with member `key` set to the string `value`: in its place, or
/// added at the end. `None` when `document` is not an object.
pub fn with_member(document: &str, key: &str, value: &str) -> Option<String> {
    let Value::Object(mut members) = parse(document)? else {
        return None;
    };
    let value = Value::String(value.to_owned());
    match members.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => members.push((key.to_owned(), value)),
    }
    Some(Value::Object(members).to_json())
}

impl ToJson for Answer {
    fn write_json(&self, out: &mut String) {
        match self {
            Answer::Text(text) => text.write_json(out),
            Answer::Many(values) => values.write_json(out),
            Answer::Number(n) => n.write_json(out),
        }
    }
}

impl ToJson for Answers {
    fn write_json(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        for (question, answer) in self {
            object.member(question, answer);
        }
        object.end();
    }
}

impl ToJson for FirstTouch {
    fn write_json(&self, out: &mut String) {
        ObjectWriter::new(out)
            .member("landing_page", &self.landing_page)
            .optional("referrer", self.referrer.as_ref())
            .end();
    }
}

impl ToJson for LeadSubmission {
    fn write_json(&self, out: &mut String) {
        let mut object = ObjectWriter::new(out);
        object
            .member("site_id", &self.site_id)
            .member("email", &self.email)
            .member("name", &self.name)
            .optional("company", self.company.as_ref())
            .optional("phone", self.phone.as_ref())
            .optional("message", self.message.as_ref())
            .member("consent", &Consent(&self.consent))
            .optional("page_url", self.page_url.as_ref())
            .member("idempotency_key", &self.idempotency_key)
            .optional("form_id", self.form_id.as_ref())
            .optional("form_version", self.form_version.as_ref());
        if !self.answers.is_empty() {
            object.member("answers", &self.answers);
        }
        // `score` and `grade` are never serialised (`skip_serializing`).
        object
            .optional("first_touch", self.first_touch.as_ref())
            .optional("website", self.honeypot.as_ref())
            .optional("render_token", self.render_token.as_ref())
            .optional("turnstile_token", self.turnstile_token.as_ref())
            .end();
    }
}

struct Consent<'a>(&'a crate::Consent);

impl ToJson for Consent<'_> {
    fn write_json(&self, out: &mut String) {
        ObjectWriter::new(out)
            .member("given", &self.0.given)
            .member("text_version", &self.0.text_version)
            .end();
    }
}

/// The members of an object, read by name.
struct Object<'a>(&'a [(String, Value)]);

impl<'a> Object<'a> {
    fn of(value: &'a Value) -> Option<Self> {
        match value {
            Value::Object(members) => Some(Self(members)),
            _ => None,
        }
    }

    /// serde keeps the last of duplicate keys only for maps; for structs it refuses them, and
    /// our edge never sends any: the first wins.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn required<T: FromJson>(&self, key: &str) -> Option<T> {
        T::from_value(self.get(key)?)
    }

    /// An `Option` member: absent or `null` is `None`; anything else must read as `T`.
    fn optional<T: FromJson>(&self, key: &str) -> Option<Option<T>> {
        match self.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(value) => T::from_value(value).map(Some),
        }
    }

    /// A `#[serde(default)]` member: absent is the default (`null` is not).
    fn or<T: FromJson>(&self, key: &str, default: T) -> Option<T> {
        match self.get(key) {
            None => Some(default),
            Some(value) => T::from_value(value),
        }
    }
}

impl FromJson for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromJson for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Integers as serde_json reads them: written without fraction or exponent, and in range.
macro_rules! integers {
    ($($t:ty),*) => {$(
        impl FromJson for $t {
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::Number(text) => text.parse().ok(),
                    _ => None,
                }
            }
        }
    )*};
}
integers!(u16, u32, i32, i64, u64);

impl<T: FromJson> FromJson for Vec<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Array(items) => items.iter().map(T::from_value).collect(),
            _ => None,
        }
    }
}

impl FromJson for FirstTouch {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(FirstTouch {
            landing_page: o.required("landing_page")?,
            referrer: o.optional("referrer")?,
        })
    }
}

impl FromJson for SiteConfig {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(SiteConfig {
            id: o.required("id")?,
            name: o.required("name")?,
            consent_text: o.required("consent_text")?,
            consent_version: o.required("consent_version")?,
            phone: o.optional("phone")?,
            booking_url: o.optional("booking_url")?,
            first_touch_attribution: o.or("first_touch_attribution", true)?,
            double_opt_in: o.or("double_opt_in", false)?,
            turnstile: o.optional("turnstile")?,
            min_fill_seconds: o.or("min_fill_seconds", crate::site::DEFAULT_MIN_FILL_SECONDS)?,
        })
    }
}

impl FromJson for TurnstileConfig {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(TurnstileConfig {
            site_key: o.required("site_key")?,
            script_url: o.required("script_url")?,
        })
    }
}

impl FromJson for VersionedForm {
    /// The form's definition is flattened into the same object as its id and version.
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(VersionedForm {
            id: o.required("id")?,
            version: o.required("version")?,
            definition: FormDefinition {
                title: o.required("title")?,
                intro: o.optional("intro")?,
                questions: o.required("questions")?,
                thresholds: o.required("thresholds")?,
                follow_up_question: o.optional("follow_up_question")?,
                resource: o.optional("resource")?,
            },
        })
    }
}

impl FromJson for Thresholds {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Thresholds {
            hot: o.required("hot")?,
            warm: o.required("warm")?,
        })
    }
}

impl FromJson for Resource {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Resource {
            label: o.required("label")?,
            url: o.required("url")?,
        })
    }
}

impl FromJson for Question {
    /// Through [`RawQuestion`], as serde does, so that the same rules refuse the same shapes.
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        let kind = match o.get("type")? {
            Value::String(t) => match t.as_str() {
                "single_choice" => QuestionType::SingleChoice,
                "multiple_choice" => QuestionType::MultipleChoice,
                "short_text" => QuestionType::ShortText,
                "number" => QuestionType::Number,
                _ => return None,
            },
            _ => return None,
        };
        let raw = RawQuestion {
            id: o.required("id")?,
            label: o.required("label")?,
            kind,
            required: o.or("required", false)?,
            show_if: o.optional("show_if")?,
            options: o.optional("options")?,
            points: o.optional("points")?,
            min: o.optional("min")?,
            max: o.optional("max")?,
            bands: o.optional("bands")?,
        };
        Question::try_from(raw).ok()
    }
}

impl FromJson for Condition {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Condition {
            question: o.required("question")?,
            equals: o.required("equals")?,
        })
    }
}

impl FromJson for Choice {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Choice {
            value: o.required("value")?,
            label: o.required("label")?,
            points: o.or("points", 0)?,
        })
    }
}

impl FromJson for Band {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Band {
            from: o.optional("from")?,
            to: o.optional("to")?,
            points: o.required("points")?,
        })
    }
}

impl FromJson for EmbedConfig {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(EmbedConfig {
            site: o.required("site")?,
            form: o.required("form")?,
        })
    }
}

impl FromJson for Grade {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => match s.as_str() {
                "cold" => Some(Grade::Cold),
                "warm" => Some(Grade::Warm),
                "hot" => Some(Grade::Hot),
                _ => None,
            },
            _ => None,
        }
    }
}

impl FromJson for NextStep {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => match s.as_str() {
                "call_now" => Some(NextStep::CallNow),
                "expect_email" => Some(NextStep::ExpectEmail),
                "browse" => Some(NextStep::Browse),
                _ => None,
            },
            _ => None,
        }
    }
}

impl FromJson for LeadCreated {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(LeadCreated {
            id: o.required("id")?,
            grade: o.required("grade")?,
            next_step: o.required("next_step")?,
        })
    }
}

impl FromJson for FieldError {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(FieldError {
            field: o.required("field")?,
            message: o.required("message")?,
        })
    }
}

impl FromJson for Problem {
    fn from_value(value: &Value) -> Option<Self> {
        let o = Object::of(value)?;
        Some(Problem {
            kind: o.required("type")?,
            title: o.required("title")?,
            status: o.required("status")?,
            detail: o.optional("detail")?,
            errors: o.or("errors", Vec::new())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{QuestionKind, default_form};
    use proptest::prelude::*;
    use rstest::rstest;

    fn answer() -> impl Strategy<Value = Answer> {
        prop_oneof![
            any::<String>().prop_map(Answer::Text),
            proptest::collection::vec(any::<String>(), 0..3).prop_map(Answer::Many),
            any::<f64>().prop_map(Answer::Number),
            prop_oneof![
                Just(40.0),
                Just(-0.0),
                Just(1e21),
                Just(0.1),
                Just(f64::NAN)
            ]
            .prop_map(Answer::Number),
        ]
    }

    #[test]
    fn a_member_is_set_only_in_an_object() {
        assert_eq!(
            with_member(r#"{"a":[1,2.5e3,null,true],"b":{"c":"d"}}"#, "b", "x").as_deref(),
            Some(r#"{"a":[1,2.5e3,null,true],"b":"x"}"#)
        );
        assert_eq!(with_member("[1]", "b", "x"), None);
        assert_eq!(with_member("{", "b", "x"), None);
    }

    prop_compose! {
        fn submission()(
            texts in proptest::collection::vec(any::<String>(), 5),
            optional in proptest::collection::vec(proptest::option::of(any::<String>()), 6),
            given in any::<bool>(),
            form_version in proptest::option::of(any::<u32>()),
            answers in proptest::collection::btree_map(any::<String>(), answer(), 0..4),
            touch in proptest::option::of((any::<String>(), proptest::option::of(any::<String>()))),
        ) -> LeadSubmission {
            LeadSubmission {
                site_id: texts[0].clone(),
                email: texts[1].clone(),
                name: texts[2].clone(),
                company: optional[0].clone(),
                phone: optional[1].clone(),
                message: optional[2].clone(),
                consent: crate::Consent { given, text_version: texts[3].clone() },
                page_url: optional[3].clone(),
                idempotency_key: texts[4].clone(),
                form_id: optional[4].clone(),
                form_version,
                answers,
                first_touch: touch.map(|(landing_page, referrer)| FirstTouch { landing_page, referrer }),
                honeypot: optional[5].clone(),
                render_token: optional[0].clone(),
                turnstile_token: optional[3].clone(),
                ignored_score: Some(serde_json::json!(5)),
                ignored_grade: None,
            }
        }
    }

    /// Forms with every kind of question and every optional part, with arbitrary text.
    fn embed_config() -> impl Strategy<Value = EmbedConfig> {
        (
            proptest::collection::vec(any::<String>(), 6),
            proptest::collection::vec(proptest::option::of(any::<String>()), 4),
            any::<(bool, bool, u32, i32, i32)>(),
            proptest::option::of((any::<i64>(), any::<i64>())),
        )
            .prop_map(|(texts, optional, (a, b, version, hot, warm), range)| {
                let mut definition = default_form();
                definition.title = texts[0].clone();
                definition.intro = optional[0].clone();
                definition.thresholds = Thresholds { hot, warm };
                definition.follow_up_question = optional[1].clone();
                definition.resource = optional[2].clone().map(|url| Resource {
                    label: texts[1].clone(),
                    url,
                });
                definition.questions[0].show_if = optional[3].clone().map(|equals| Condition {
                    question: texts[2].clone(),
                    equals,
                });
                definition.questions.push(Question {
                    id: texts[3].clone(),
                    label: texts[4].clone(),
                    kind: QuestionKind::ShortText { points: hot },
                    required: a,
                    show_if: None,
                });
                definition.questions.push(Question {
                    id: "seats".into(),
                    label: "Seats".into(),
                    kind: QuestionKind::Number {
                        min: range.map(|r| r.0),
                        max: range.map(|r| r.1),
                        bands: vec![
                            Band {
                                from: range.map(|r| r.0),
                                to: None,
                                points: warm,
                            },
                            Band {
                                from: None,
                                to: Some(7),
                                points: -3,
                            },
                        ],
                    },
                    required: b,
                    show_if: None,
                });
                EmbedConfig {
                    site: SiteConfig {
                        id: texts[5].clone(),
                        name: texts[0].clone(),
                        consent_text: texts[1].clone(),
                        consent_version: texts[2].clone(),
                        phone: optional[0].clone(),
                        booking_url: optional[1].clone(),
                        first_touch_attribution: a,
                        double_opt_in: b,
                        turnstile: optional[3].clone().map(|site_key| TurnstileConfig {
                            site_key,
                            script_url: texts[3].clone(),
                        }),
                        min_fill_seconds: u32::from(a) * 600,
                    },
                    form: VersionedForm {
                        id: texts[4].clone(),
                        version,
                        definition,
                    },
                }
            })
    }

    proptest! {
        /// What the widget sends is, to the byte, what serde_json would have sent.
        #[test]
        fn submissions_are_written_as_serde_json_writes_them(lead in submission()) {
            prop_assert_eq!(lead.to_json(), serde_json::to_string(&lead).unwrap());
        }

        /// A member set in a submission's JSON is the submission with that member, to the byte:
        /// what the widget sends again with a fresh Turnstile token.
        #[test]
        fn a_member_set_in_a_submission_is_that_submission(lead in submission(), token in any::<String>()) {
            let with_token = LeadSubmission { turnstile_token: Some(token.clone()), ..lead.clone() };
            prop_assert_eq!(
                with_member(&lead.to_json(), "turnstile_token", &token),
                Some(with_token.to_json())
            );
        }

        /// What the edge sends reads as serde reads it.
        #[test]
        fn embed_configs_read_as_serde_reads_them(config in embed_config()) {
            let json = serde_json::to_string(&config).unwrap();
            prop_assert_eq!(EmbedConfig::from_json(&json), Some(config));
        }

        #[test]
        fn problems_read_as_serde_reads_them(
            title in any::<String>(),
            status in any::<u16>(),
            detail in proptest::option::of(any::<String>()),
            errors in proptest::collection::vec((any::<String>(), any::<String>()), 0..3),
        ) {
            let problem = Problem {
                kind: "/problems/x".into(),
                title,
                status,
                detail,
                errors: errors.into_iter().map(|(f, m)| FieldError::new(f, m)).collect(),
            };
            let json = serde_json::to_string(&problem).unwrap();
            prop_assert_eq!(Problem::from_json(&json), Some(problem));
        }

        /// Any text is a JSON string that reads back as itself.
        #[test]
        fn strings_round_trip(text in any::<String>()) {
            let json = text.to_json();
            prop_assert_eq!(&json, &serde_json::to_string(&text).unwrap());
            prop_assert_eq!(String::from_json(&json), Some(text));
        }

        /// Timestamps (the widget's outbox) are written as serde writes them and read back.
        #[test]
        fn u64s_round_trip(n in any::<u64>()) {
            let json = n.to_json();
            prop_assert_eq!(&json, &serde_json::to_string(&n).unwrap());
            prop_assert_eq!(u64::from_json(&json), Some(n));
        }

        /// Whatever serde_json accepts as a document, so does `parse`, and the other way round.
        #[test]
        fn parse_accepts_what_serde_json_accepts(text in r#"[ \[\]{}":,0-9.eE+\-a-z\\]{0,12}"#) {
            prop_assert_eq!(
                parse(&text).is_some(),
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{:?}", text
            );
        }
    }

    #[test]
    fn lead_answers_read_as_serde_reads_them() {
        for grade in [Grade::Cold, Grade::Warm, Grade::Hot] {
            for next_step in [NextStep::CallNow, NextStep::ExpectEmail, NextStep::Browse] {
                let created = LeadCreated {
                    id: "0190".into(),
                    grade,
                    next_step,
                };
                let json = serde_json::to_string(&created).unwrap();
                assert_eq!(LeadCreated::from_json(&json), Some(created));
            }
        }
    }

    #[rstest]
    #[case::escapes(
        r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#,
        Some("a\"\\/\u{8}\u{c}\n\r\té😀")
    )]
    #[case::lone_surrogate(r#""\ud83d""#, None)]
    #[case::raw_control("\"a\u{1}\"", None)]
    #[case::bad_escape(r#""\x""#, None)]
    #[case::unterminated(r#""abc"#, None)]
    fn strings_are_read_as_json_says(#[case] json: &str, #[case] expected: Option<&str>) {
        assert_eq!(String::from_json(json).as_deref(), expected);
        assert_eq!(
            serde_json::from_str::<String>(json).ok().as_deref(),
            expected
        );
    }

    #[rstest]
    #[case::plain(r#"{"value": "a", "label": "A"}"#)]
    #[case::points(r#"{"value": "a", "label": "A", "points": -5}"#)]
    #[case::fractional_points(r#"{"value": "a", "label": "A", "points": 1.5}"#)]
    #[case::null_points(r#"{"value": "a", "label": "A", "points": null}"#)]
    #[case::missing_label(r#"{"value": "a"}"#)]
    #[case::too_big(r#"{"value": "a", "label": "A", "points": 3000000000}"#)]
    fn numbers_and_defaults_read_as_serde_reads_them(#[case] json: &str) {
        assert_eq!(
            Choice::from_json(json),
            serde_json::from_str::<Choice>(json).ok()
        );
    }

    #[rstest]
    #[case::choice_without_options(r#"{"id": "a", "label": "A", "type": "single_choice"}"#)]
    #[case::misplaced_points(r#"{"id": "a", "label": "A", "type": "number", "points": 3}"#)]
    #[case::unknown_type(r#"{"id": "a", "label": "A", "type": "date"}"#)]
    #[case::number(r#"{"id": "a", "label": "A", "type": "number", "min": 1, "bands": []}"#)]
    #[case::text(
        r#"{"id": "a", "label": "A", "type": "short_text", "required": true, "points": 2}"#
    )]
    fn questions_are_checked_as_serde_checks_them(#[case] json: &str) {
        assert_eq!(
            Question::from_json(json),
            serde_json::from_str::<Question>(json).ok()
        );
    }
}
