//! The edge's per-lead CPU work, natively: parse a submission, validate it against the default
//! form, score it, and serialise what is stored. `cargo xtask bench` runs it and reports the
//! means.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use leadglue_shared::{default_form, score, submission, validate};

const BODY: &str = r#"{
  "site_id": "demo", "email": " Ada@Example.COM ", "name": "Ada Lovelace",
  "company": "Analytical Engines", "phone": "+44 20 7946 0958",
  "message": "Could you send pricing for 40 seats?",
  "consent": { "given": true, "text_version": "2026-11" },
  "page_url": "https://www.example.com/pricing",
  "idempotency_key": "9f1c2e0a7b3d4c5e8f9a0b1c2d3e4f5a",
  "form_id": "default", "form_version": 0,
  "answers": { "timeline": "now", "role": "decision_maker", "company_size": "51_200",
               "interest": ["pricing"], "follow_up": "book_demo" },
  "first_touch": { "landing_page": "https://www.example.com/?utm_source=google&utm_medium=cpc",
                   "referrer": "https://www.google.com/" }
}"#;

fn hot_path(c: &mut Criterion) {
    let form = default_form();
    let parsed = submission::parse(BODY.as_bytes()).expect("a valid body");
    let valid = validate(&parsed, &form).expect("a valid lead");
    c.bench_function("parse", |b| {
        b.iter(|| submission::parse(black_box(BODY.as_bytes())))
    });
    c.bench_function("validate", |b| {
        b.iter(|| validate(black_box(&parsed), &form))
    });
    c.bench_function("score", |b| {
        b.iter(|| score(&form, black_box(&valid.get().answers)))
    });
    c.bench_function("serialise", |b| {
        b.iter(|| serde_json::to_string(black_box(valid.get())))
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
