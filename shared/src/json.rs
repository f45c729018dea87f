//! Reading JSON request bodies into wire types, with errors that name the offending field.

use serde::de::DeserializeOwned;

use crate::FieldError;

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
