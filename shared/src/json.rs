//! Reading JSON request bodies into wire types, with errors that name the offending field.

use serde::de::DeserializeOwned;

use crate::FieldError;

/// A serialised JSON object with one more member, `name`, an array of already serialised JSON
/// values; `None` if `object` is not an object. For an answer that adds to a record (a lead
/// and the person's other leads) without serialising the record a second way: each way is
/// code in the edge's wasm, which has a size budget.
pub fn with_array_member(object: &str, name: &str, items: &[String]) -> Option<String> {
    let open = object.strip_suffix('}')?;
    if !open.starts_with('{') {
        return None;
    }
    let comma = if open.trim_end() == "{" { "" } else { "," };
    let key = serde_json::to_string(name).ok()?;
    Some(format!("{open}{comma}{key}:[{}]}}", items.join(",")))
}

/// Why a body is not the expected document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON at all (or cut short): nothing field-level to say.
    Malformed,
    /// Well-formed JSON of the wrong shape: a missing, unknown or mistyped field.
    Shape(FieldError),
}

/// Parses a JSON object into `T`, naming the offending field when the JSON is well-formed but
/// of the wrong shape.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    let starts_as_object = body.trim_ascii_start().first() == Some(&b'{');
    if !starts_as_object {
        // serde would read an array as a struct's fields in order; refuse any non-object.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(ParseError::Shape(FieldError::new(
                "",
                "The body must be a JSON object.",
            ))),
            Err(_) => Err(ParseError::Malformed),
        };
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = T::deserialize(&mut *de).map_err(|err| {
        if !err.is_data() {
            return ParseError::Malformed;
        }
        let message = err.to_string();
        let offset = offset_of(body, err.line(), err.column());
        let path = path_at(body, offset, &message);
        ParseError::Shape(shape_error(&path, &message))
    })?;
    de.end().map_err(|_| ParseError::Malformed)?;
    Ok(value)
}

/// The byte offset of serde_json's error position (its line counts from 1; its column is the
/// number of bytes since the line began).
fn offset_of(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        start = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |at| start + at + 1);
    }
    (start + column).min(body.len())
}

/// What the parser was reading when it stopped at byte `offset` of the well-formed JSON `body`,
/// as a path: `consent.given`, `questions[2].choices`, `.` for the document itself.
///
/// serde knows the path as it goes, but asking it (serde_path_to_error) instantiates every
/// wire type's deserializer a second time, ~17 KB of the Worker's gzipped wasm; the body is
/// well-formed up to the error, so a scan of it up to there finds the same path. Where
/// serde_json places an error depends on who raised it (the property test below holds this
/// function to serde's own path tracking):
/// - serde's own errors (a wrong type, an unknown field or variant) are placed at the value or
///   key at fault, a missing field just after the object that lacks it;
/// - an error raised by a type's own rule once its value was read (a `try_from`) is placed
///   where the object or array around that value ended: at the comma after it in an object,
///   after that comma in an array, or after the closing bracket when it was the last member.
fn path_at(body: &[u8], offset: usize, message: &str) -> String {
    enum Frame {
        /// The member whose key was read last (until the next comma).
        Object(Option<String>),
        /// The element being read, once it has begun.
        Array { index: usize, begun: bool },
    }
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let mut stack: Vec<Frame> = Vec::new();
    // The container closed last, and where its closing bracket was.
    let mut closed = None;
    // Whether the last thing read was a key.
    let mut after_key = false;
    let mut i = 0;
    while i < offset {
        let byte = body[i];
        if !is_space(&byte) {
            after_key = false;
        }
        if let Some(Frame::Array { begun, .. }) = stack.last_mut()
            && !is_space(&byte)
            && !matches!(byte, b',' | b']')
        {
            *begun = true;
        }
        match byte {
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array {
                index: 0,
                begun: false,
            }),
            b'}' | b']' => closed = stack.pop().map(|frame| (frame, i)),
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array { index, begun }) => (*index, *begun) = (*index + 1, false),
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += usize::from(body[i] == b'\\') + 1;
                }
                // A string in an object with no current member is that member's key.
                if i < offset
                    && let Some(Frame::Object(key @ None)) = stack.last_mut()
                {
                    *key = Some(serde_json::from_slice(&body[start..=i]).unwrap_or_default());
                    after_key = true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let serdes_own = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
        "duplicate field",
        "missing field",
    ]
    .iter()
    .any(|start| message.starts_with(start));
    if serdes_own {
        // Stopped on a value peeked at but not read: that element has begun too.
        if let Some(Frame::Array { begun, .. }) = stack.last_mut()
            && body
                .get(offset)
                .is_some_and(|b| !is_space(b) && !matches!(b, b',' | b']'))
        {
            *begun = true;
        }
        // `{"variant": …}` with an unknown variant: at the enum, not its key.
        if after_key
            && message.starts_with("unknown variant ")
            && let Some(Frame::Object(key)) = stack.last_mut()
        {
            *key = None;
        }
    } else if let Some((frame, _)) = closed.filter(|(_, at)| at + 1 == offset) {
        stack.push(frame);
    } else if let Some(Frame::Array { index, begun }) = stack.last_mut()
        && body[..offset].iter().rev().find(|b| !is_space(b)) == Some(&b',')
    {
        (*index, *begun) = (index.saturating_sub(1), true);
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Array { index, begun: true } => path.push_str(&format!("[{index}]")),
            _ => {}
        }
    }
    if path.is_empty() { ".".into() } else { path }
}

/// Turns serde's data error into a field error with a plain message. serde reports a missing
/// field at the path of the object that holds it, with the name only in its message.
fn shape_error(path: &str, serde_message: &str) -> FieldError {
    // serde's messages carry the position (" at line 1 column 9"); the field name says more.
    let message = serde_message
        .split(" at line ")
        .next()
        .unwrap_or(serde_message);
    let missing = message
        .strip_prefix("missing field ")
        .and_then(|rest| rest.split('`').nth(1));
    if let Some(name) = missing {
        let field = match path {
            "." | "" => name.to_owned(),
            parent => format!("{parent}.{name}"),
        };
        FieldError::new(field, "This field is required.")
    } else if message.starts_with("unknown field ") {
        // Here serde's path already ends with the unknown field's name.
        FieldError::new(path, "This field is not recognised.")
    } else {
        let field = if path == "." { "" } else { path };
        if message.starts_with("invalid ") || message.starts_with("unknown variant") {
            FieldError::new(field, format!("Wrong type: {message}."))
        } else {
            // A rule of the type itself (a `try_from` conversion): its message is for people.
            FieldError::new(field, message)
        }
    }
}

/// For `#[serde(deserialize_with = "…")]` on a struct-typed field: accepts only a JSON object.
/// (serde would also read a struct from an array, by position: `"consent": [true, "v1"]`.)
pub fn object<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct ObjectOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    de.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

/// [`object`] for an optional field (`null` or absent: `None`).
pub fn optional_object<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Optional<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Optional<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, de: D2) -> Result<Option<T>, D2::Error> {
            object(de).map(Some)
        }
    }
    de.deserialize_option(Optional(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sales::{LeadPatch, NewApiKey};
    use crate::webhooks::NewWebhook;
    use crate::{FormDefinition, LeadSubmission, SiteDefinition, form::default_form};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn adds_the_array_to_the_object() {
        let items = [
            json!({ "id": "b" }).to_string(),
            json!({ "id": "c" }).to_string(),
        ];
        let out = with_array_member(r#"{"id":"a","n":1}"#, "other_leads", &items).unwrap();
        let read: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(
            read,
            json!({ "id": "a", "n": 1, "other_leads": [{ "id": "b" }, { "id": "c" }] })
        );
        let none = with_array_member("{}", "x", &[]).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&none).unwrap(),
            json!({ "x": [] })
        );
        assert_eq!(with_array_member("[1]", "x", &[]), None);
    }

    /// What `parse` answered when serde tracked the path itself (serde_path_to_error).
    fn parse_tracked<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_data() {
                ParseError::Shape(shape_error(&path, &inner.to_string()))
            } else {
                ParseError::Malformed
            }
        })?;
        de.end().map_err(|_| ParseError::Malformed)?;
        Ok(value)
    }

    fn submission() -> Value {
        json!({
            "site_id": "demo", "email": "ada@example.com", "name": "Ada", "company": "Analytical",
            "consent": { "given": true, "text_version": "v1" },
            "idempotency_key": "0123456789abcdef", "form_id": "default", "form_version": 3,
            "page_url": "https://example.com/landing",
            "answers": { "timeline": "3_months", "topics": ["pricing", "security"], "seats": 12 },
            "first_touch": { "landing_page": "https://example.com/?utm_source=x", "referrer": null },
        })
    }

    fn site() -> Value {
        json!({
            "name": "Demo", "allowed_origins": ["https://example.com", "http://localhost:8000"],
            "consent_text": "OK", "consent_version": "v1", "double_opt_in": false,
            "sales_email": "sales@example.com", "min_fill_seconds": 3,
        })
    }

    fn lead_patch() -> Value {
        json!({ "status": "prospect", "assignee": null, "tags": ["a", "b"] })
    }

    fn api_key() -> Value {
        json!({ "name": "CRM sync", "scopes": ["leads:read", "leads:write"] })
    }

    fn webhook() -> Value {
        json!({ "url": "https://example.com/hook", "events": ["lead.created"] })
    }

    /// Every place in `value` a mutation can go: the path of each object and array, and of
    /// each member and element.
    fn places(value: &Value, at: &mut Vec<String>, path: &mut Vec<String>) {
        at.push(path.join("\u{0}"));
        match value {
            Value::Object(members) => {
                for (key, inner) in members {
                    path.push(key.clone());
                    places(inner, at, path);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (n, inner) in items.iter().enumerate() {
                    path.push(n.to_string());
                    places(inner, at, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    fn at_mut<'a>(value: &'a mut Value, path: &str) -> &'a mut Value {
        path.split('\u{0}')
            .filter(|s| !s.is_empty())
            .fold(value, |v, step| match v {
                Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
                other => &mut other[step],
            })
    }

    fn replacements() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(7),
            json!(-1.5),
            json!(""),
            json!("text\nwith \"quotes\" and \\ {[,:]}"),
            json!([]),
            json!([1, "two"]),
            json!({}),
            json!({ "x": [ { "y": 1 } ] }),
        ]
    }

    /// A valid document made wrong in one place: a value replaced, a member dropped, or an
    /// unknown member added; written compact or pretty (the error's line and column differ).
    fn mutated(example: &Value, place: usize, kind: u8, with: usize, pretty: bool) -> Vec<u8> {
        let mut doc = example.clone();
        let mut all = Vec::new();
        places(&doc, &mut all, &mut Vec::new());
        let path = &all[place % all.len()];
        let replacement = replacements()[with % replacements().len()].clone();
        match kind % 3 {
            0 => *at_mut(&mut doc, path) = replacement,
            1 => {
                let (parent, key) = path.rsplit_once('\u{0}').unwrap_or(("", path.as_str()));
                if let Value::Object(members) = at_mut(&mut doc, parent) {
                    members.remove(key);
                }
            }
            _ => {
                if let Value::Object(members) = at_mut(&mut doc, path) {
                    members.insert("unexpected \"odd\" key".into(), replacement);
                }
            }
        }
        if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        }
    }

    fn same<T: DeserializeOwned>(body: &[u8]) {
        if !body.starts_with(b"{") {
            return; // refused before serde sees it, by both
        }
        let found = parse::<T>(body).err();
        let tracked = parse_tracked::<T>(body).err();
        assert_eq!(found, tracked, "{}", String::from_utf8_lossy(body));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The path found by scanning the body is the one serde tracks, for every kind of
        /// mistake anywhere in the wire types with the deepest shapes.
        #[test]
        fn field_paths_are_the_ones_serde_tracks(
            place in 0usize..200, kind in 0u8..3, with in 0usize..10, pretty: bool,
        ) {
            same::<LeadSubmission>(&mutated(&submission(), place, kind, with, pretty));
            same::<SiteDefinition>(&mutated(&site(), place, kind, with, pretty));
            let form = serde_json::to_value(default_form()).unwrap();
            same::<FormDefinition>(&mutated(&form, place, kind, with, pretty));
            same::<LeadPatch>(&mutated(&lead_patch(), place, kind, with, pretty));
            same::<NewApiKey>(&mutated(&api_key(), place, kind, with, pretty));
            same::<NewWebhook>(&mutated(&webhook(), place, kind, with, pretty));
        }
    }

    #[test]
    fn examples_are_valid_to_begin_with() {
        let body = |example: Value| serde_json::to_vec(&example).unwrap();
        assert!(parse::<LeadPatch>(&body(lead_patch())).is_ok());
        assert!(parse::<NewApiKey>(&body(api_key())).is_ok());
        assert!(parse::<NewWebhook>(&body(webhook())).is_ok());
        assert!(parse::<LeadSubmission>(&body(submission())).is_ok());
        assert!(parse::<SiteDefinition>(&body(site())).is_ok());
        let form = serde_json::to_value(default_form()).unwrap();
        assert!(parse::<FormDefinition>(&body(form)).is_ok());
    }

    #[test]
    fn paths_name_nested_members_and_elements() {
        let shape = |body: &str| match parse::<SiteDefinition>(body.as_bytes()) {
            Err(ParseError::Shape(e)) => e.field,
            other => panic!("{other:?}"),
        };
        let mut body = site();
        body["allowed_origins"][1] = json!(5);
        assert_eq!(shape(&body.to_string()), "allowed_origins[1]");
        let mut body = site();
        body.as_object_mut().unwrap().remove("consent_text");
        assert_eq!(
            shape(&serde_json::to_string_pretty(&body).unwrap()),
            "consent_text"
        );
    }
}
