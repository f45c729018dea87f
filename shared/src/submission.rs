//! The lead the widget posts to `POST /v1/leads`, and turning raw bytes into one.

use serde::{Deserialize, Serialize};

use crate::attribution::FirstTouch;
use crate::form::Answers;
use crate::json::ParseError;
use crate::score::{Grade, NextStep};

/// What a visitor sends when they ask for information.
///
/// Unknown fields are refused rather than ignored: a client that believes it sent something the
/// edge silently dropped would lose data without knowing. Optional text fields may be absent,
/// `null` or blank; all three mean "not given".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(deserialize_with = "crate::json::object")]
    pub consent: Consent,
    /// The page the form was submitted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    /// Chosen by the client once per submission and reused on every retry of it, so that a
    /// retried request never creates a second lead.
    pub idempotency_key: String,
    /// The form answered (`data-form` on the embed tag); the built-in default form when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<String>,
    /// The version of the form the visitor saw; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_version: Option<u32>,
    /// Answers to the form's qualification questions, by question id.
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    pub answers: Answers,
    /// The first page of the visit, for attribution.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::optional_object"
    )]
    pub first_touch: Option<FirstTouch>,
    /// A field people never see (the widget hides it from eyes and assistive technology);
    /// form-filling bots fill it in. A submission with it filled is accepted quietly but kept
    /// as spam: never followed up, not listed for sales.
    #[serde(default, rename = "website", skip_serializing_if = "Option::is_none")]
    pub honeypot: Option<String>,
    /// The token the edge gave the widget when it rendered the form
    /// (`GET /v1/sites/{site}/render-token`): proves when the form was shown, for the site's
    /// minimum fill time (see [`crate::spam`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render_token: Option<String>,
    /// The Turnstile challenge's answer, on sites that use Turnstile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turnstile_token: Option<String>,
    /// Scores are the edge's to compute: a client may send these (an older widget did), and
    /// they are read and thrown away, never trusted or stored.
    #[serde(default, rename = "score", skip_serializing)]
    pub ignored_score: Option<serde_json::Value>,
    #[serde(default, rename = "grade", skip_serializing)]
    pub ignored_grade: Option<serde_json::Value>,
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
    pub grade: Grade,
    /// What the widget should show next.
    pub next_step: NextStep,
}

impl LeadSubmission {
    /// Why this submission looks like spam, if it does.
    pub fn spam_reason(&self) -> Option<&'static str> {
        self.honeypot
            .as_deref()
            .is_some_and(|v| !v.trim().is_empty())
            .then_some("honeypot")
    }
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
    fn a_filled_honeypot_marks_spam_and_a_blank_one_does_not() {
        let mut json = valid_json();
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(parse(&body).unwrap().spam_reason(), None);
        json["website"] = serde_json::json!("  ");
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(parse(&body).unwrap().spam_reason(), None);
        json["website"] = serde_json::json!("http://cheap-pills.example");
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(parse(&body).unwrap().spam_reason(), Some("honeypot"));
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
    #[case::nested_as_array("consent", serde_json::json!([true, "v1"]), "consent", "Wrong type: invalid type: sequence, expected an object.")]
    #[case::optional_as_array("first_touch", serde_json::json!(["https://x.example/"]), "first_touch", "Wrong type: invalid type: sequence, expected an object.")]
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
        json["priority"] = serde_json::json!("high");
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(
            parse(&body),
            Err(ParseError::Shape(FieldError::new(
                "priority",
                "This field is not recognised."
            )))
        );
    }

    #[test]
    fn a_client_score_is_read_but_never_sent_on() {
        let mut json = valid_json();
        json["score"] = serde_json::json!(1000);
        json["grade"] = serde_json::json!("hot");
        let lead = parse(&serde_json::to_vec(&json).unwrap()).unwrap();
        let again = serde_json::to_value(&lead).unwrap();
        assert!(again.get("score").is_none() && again.get("grade").is_none());
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

    /// Found by fuzzing (`fuzz/`, target `submission`): serde_json's default float parsing is
    /// best-effort and read `3.555e68` one unit in the last place off, so a number answer came
    /// back changed after the widget wrote it (the codec writes the shortest exact form).
    #[rstest]
    #[case(3.555e68)]
    #[case(1.7976931348623157e308)]
    #[case(2.2250738585072014e-308)]
    #[case(0.1)]
    #[case(123_456_789.123_456_78)]
    fn number_answers_are_read_exactly_and_read_back_as_written(#[case] n: f64) {
        use crate::codec::ToJson;
        let mut json = valid_json();
        json["answers"] = serde_json::json!({ "seats": n });
        let text = serde_json::to_string(&json).unwrap();
        let lead = parse(text.as_bytes()).unwrap();
        assert_eq!(lead.answers["seats"], crate::Answer::Number(n), "{text}");
        assert_eq!(parse(lead.to_json().as_bytes()).unwrap(), lead);
    }

    #[test]
    fn null_optional_fields_mean_absent() {
        let mut json = valid_json();
        json["company"] = serde_json::Value::Null;
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(parse(&body).unwrap().company, None);
    }

    proptest::proptest! {
        /// Any bytes at all: the parser answers, never panics.
        #[test]
        fn the_parser_is_total(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        /// Any bytes inside a valid submission's text fields: parsed, or refused naming a field.
        #[test]
        fn odd_text_never_breaks_the_shape(name in "\\PC{0,64}", text in proptest::prelude::any::<String>()) {
            let mut json = valid_json();
            json["name"] = serde_json::json!(name);
            json["message"] = serde_json::json!(text);
            let parsed = parse(&serde_json::to_vec(&json).unwrap()).expect("text is text");
            proptest::prop_assert_eq!(parsed.name, name);
            proptest::prop_assert_eq!(parsed.message, Some(text));
        }

        /// A field the edge does not know is refused by its name, never silently dropped.
        #[test]
        fn any_unknown_field_is_refused_by_name(key in "[a-z_]{1,16}") {
            let known = serde_json::to_value(parse(&serde_json::to_vec(&valid_json()).unwrap()).unwrap()).unwrap();
            proptest::prop_assume!(known.get(&key).is_none() && ![
                "company", "phone", "message", "page_url", "form_id", "form_version", "answers",
                "first_touch", "website", "render_token", "turnstile_token", "score", "grade",
            ].contains(&key.as_str()));
            let mut json = valid_json();
            json[&key] = serde_json::json!(1);
            match parse(&serde_json::to_vec(&json).unwrap()) {
                Err(ParseError::Shape(error)) => proptest::prop_assert_eq!(error.field, key),
                other => proptest::prop_assert!(false, "{other:?}"),
            }
        }
    }
}
