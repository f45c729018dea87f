//! Fuzz target `submission`: arbitrary bytes as a `POST /v1/leads` body, through everything the
//! edge does with one before touching D1: parse, validate against the built-in default form,
//! score. Nothing may panic, and what the code promises must hold (see the asserts).

#![no_main]

use leadglue_shared::codec::ToJson;
use leadglue_shared::form::Answer;
use leadglue_shared::score::grade;
use leadglue_shared::{LeadSubmission, default_form, score, submission, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(lead) = submission::parse(data) else {
        return;
    };
    let form = default_form();

    // The widget's writer (shared::codec, serde-free) writes exactly what serde_json writes,
    // and the edge reads it back as the same submission (less the client's score and grade,
    // which are read and dropped, never written).
    let written = lead.to_json();
    assert_eq!(
        written,
        serde_json::to_string(&lead).expect("a submission serialises"),
        "codec and serde_json disagree"
    );
    let back = submission::parse(written.as_bytes()).expect("what the codec writes parses");
    let sent = LeadSubmission {
        ignored_score: None,
        ignored_grade: None,
        ..lead.clone()
    };
    assert_eq!(back, sent, "a written submission reads back as itself");

    // Scoring takes any answers, and the grade alone is the score's grade.
    let scored = score(&form, &lead.answers);
    assert_eq!(scored.grade, grade(&form, &lead.answers));

    let Ok(valid) = validate(&lead, &form) else {
        return;
    };
    let v = valid.get();
    // Names and addresses end up in email headers: no control characters, CR and LF above all.
    for (field, text) in [
        ("email", Some(&v.email)),
        ("name", Some(&v.name)),
        ("company", v.company.as_ref()),
        ("phone", v.phone.as_ref()),
    ] {
        if let Some(text) = text {
            assert!(!text.chars().any(char::is_control), "{field}: {text:?}");
            assert_eq!(text.trim(), text, "{field} is trimmed");
        }
    }
    assert!(!v.name.is_empty());
    assert!(v.email.len() <= leadglue_shared::validate::MAX_EMAIL);
    assert_eq!(v.email.matches('@').count(), 1, "{:?}", v.email);
    if let Some(message) = &v.message {
        assert!(!message.contains('\r'), "{message:?}");
    }
    // Only finite numbers reach the scores (JSON has no NaN or infinity).
    for answer in v.answers.values() {
        if let Answer::Number(n) = answer {
            assert!(n.is_finite());
        }
    }
    // A validated lead is valid as it stands, and normalising it again changes nothing.
    let again = validate(v, &form).expect("a validated lead stays valid");
    assert_eq!(again.get(), v, "validation is idempotent");
    let scored = score(&form, &v.answers);
    assert_eq!(scored.grade, grade(&form, &v.answers));
});
