//! The lead the widget posts to `POST /v1/leads`, and turning raw bytes into one.

use serde::{Deserialize, Serialize};

use crate::json::ParseError;

/// What a visitor sends when they ask for information.
///
/// Unknown fields are refused rather than ignored: a client that believes it sent something the
/// edge silently dropped would lose data without knowing. Optional text fields may be absent,
/// `null` or blank; all three mean "not given".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadSubmission {
    /// The site the form belongs to (`data-site` on the embed tag).
    pub site_id: String,
    pub email: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub consent: Consent,
    /// The page the form was submitted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// Chosen by the client once per submission and reused on every retry of it, so that a
    /// retried request never creates a second lead.
    pub idempotency_key: String,
}

/// The visitor's consent to be contacted, and which wording of the site's consent text they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub given: bool,
    pub text_version: String,
}

/// The edge's answer to an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCreated {
    /// Opaque and time-ordered: later leads sort after earlier ones.
    pub id: String,
}

/// Parses a request body into a submission (see [`crate::json::parse`]).
pub fn parse(body: &[u8]) -> Result<LeadSubmission, ParseError> {
    crate::json::parse(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldError;
    use rstest::rstest;

    fn valid_json() -> serde_json::Value {
        serde_json::json!({
            "site_id": "demo",
            "email": "ada@example.com",
            "name": "Ada",
            "consent": { "given": true, "text_version": "v1" },
            "idempotency_key": "0123456789abcdef",
        })
    }

    #[test]
    fn parses_a_minimal_submission() {
        let body = serde_json::to_vec(&valid_json()).unwrap();
        let lead = parse(&body).unwrap();
        assert_eq!(lead.email, "ada@example.com");
        assert_eq!(lead.company, None);
        assert!(lead.consent.given);
    }

    #[rstest]
    #[case::empty(b"")]
    #[case::truncated(br#"{"site_id": "demo""#)]
    #[case::not_json(b"site_id=demo&email=x")]
    #[case::trailing_garbage(br#"{"site_id": "demo", "email": "a@b.c", "name": "A", "consent": {"given": true, "text_version": "v1"}, "idempotency_key": "0123456789abcdef"} x"#)]
    fn malformed_bodies_are_malformed(#[case] body: &[u8]) {
        assert_eq!(parse(body), Err(ParseError::Malformed));
    }

    #[rstest]
    #[case::missing("email", serde_json::Value::Null, "email", "This field is required.")]
    #[case::wrong_type("name", serde_json::json!(5), "name", "Wrong type: invalid type: integer `5`, expected a string.")]
    #[case::nested_missing("consent", serde_json::json!({"given": true}), "consent.text_version", "This field is required.")]
    #[case::nested_wrong_type("consent", serde_json::json!({"given": "yes", "text_version": "v1"}), "consent.given", "Wrong type: invalid type: string \"yes\", expected a boolean.")]
    fn shape_errors_name_the_field(
        #[case] key: &str,
        #[case] value: serde_json::Value,
        #[case] field: &str,
        #[case] message: &str,
    ) {
        let mut json = valid_json();
        if value.is_null() {
            json.as_object_mut().unwrap().remove(key);
        } else {
            json[key] = value;
        }
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(
            parse(&body),
            Err(ParseError::Shape(FieldError::new(field, message)))
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let mut json = valid_json();
        json["score"] = serde_json::json!(100);
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(
            parse(&body),
            Err(ParseError::Shape(FieldError::new(
                "score",
                "This field is not recognised."
            )))
        );
    }

    #[test]
    fn a_non_object_is_a_shape_error() {
        for body in [&b"[1, 2]"[..], b" \"text\"", b"null", b"42"] {
            assert_eq!(
                parse(body),
                Err(ParseError::Shape(FieldError::new(
                    "",
                    "The body must be a JSON object."
                )))
            );
        }
    }

    #[test]
    fn null_optional_fields_mean_absent() {
        let mut json = valid_json();
        json["company"] = serde_json::Value::Null;
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(parse(&body).unwrap().company, None);
    }
}
