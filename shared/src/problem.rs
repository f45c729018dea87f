//! Problem details for HTTP APIs ([RFC 9457](https://www.rfc-editor.org/rfc/rfc9457)): the body
//! of every error the edge returns, and what the widget reads back.

use serde::{Deserialize, Serialize};

/// The media type of a problem body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// One problem with one field of the input, in words a visitor can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as it appears on the wire (`email`, `consent.text_version`, …).
    pub field: String,
    /// What is wrong and how to fix it, shown next to the field.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, with the `errors` extension member for per-field detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI reference naming the kind of problem (RFC 9457 §3.1.1). Relative references are
    /// allowed; ours point at the edge's own documentation paths.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}
