//! Hostile input and concurrency (issue 6, first part): nothing a client sends makes the edge
//! fail or store a damaged lead, and concurrent duplicates of one submission store one lead.

use std::sync::Arc;

use leadglue_tests::{ORIGIN, Worker, lead, unique};
use serde_json::{Value, json};

/// Bodies that must be refused with a problem document (4xx) and store nothing: broken JSON,
/// wrong shapes and types, missing or unknown fields, bad values, out-of-range sizes.
fn refused(site: &str) -> Vec<(String, Vec<u8>)> {
    let mut corpus: Vec<(String, Vec<u8>)> = Vec::new();
    let mut raw = |name: &str, body: &[u8]| corpus.push((name.to_owned(), body.to_vec()));
    for (name, body) in [
        ("empty", &b""[..]),
        ("whitespace", b"   \n\t "),
        ("null", b"null"),
        ("true", b"true"),
        ("number", b"42"),
        ("string", b"\"lead\""),
        ("array", b"[]"),
        ("array of lead", b"[{\"site_id\":\"x\"}]"),
        ("unclosed object", b"{"),
        ("unclosed string", b"{\"site_id\": \"abc"),
        ("trailing comma", b"{\"site_id\": \"x\",}"),
        ("single quotes", b"{'site_id': 'x'}"),
        ("comment", b"{/* hi */}"),
        ("NaN", b"{\"site_id\": NaN}"),
        ("bare word", b"{site_id: 1}"),
        ("two objects", b"{}{}"),
        ("garbage after", b"{} trailing"),
        ("nul byte", b"{\"site_id\": \"a\0b\"}"),
        ("invalid utf-8", b"{\"site_id\": \"\xff\xfe\"}"),
        ("lone surrogate", b"{\"name\": \"\\ud800\"}"),
        ("bad escape", b"{\"name\": \"\\q\"}"),
        ("deep nesting", &[b'['; 100_000][..]),
        ("deep objects", "{\"a\":".repeat(5_000).as_bytes()),
        ("utf-16 bom", b"\xfe\xff{}"),
        ("xml", b"<lead><site_id>x</site_id></lead>"),
        ("form encoded", b"site_id=x&email=a%40b.c"),
    ] {
        raw(name, body);
    }
    let base = lead(site);
    let mut with = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut body = base.clone();
        edit(&mut body);
        corpus.push((name.to_owned(), serde_json::to_vec(&body).expect("json")));
    };
    // Missing each required field.
    for field in ["site_id", "email", "name", "consent", "idempotency_key"] {
        with(&format!("without {field}"), &|b| {
            b.as_object_mut().expect("object").remove(field);
        });
    }
    // Wrong types in every field.
    for field in [
        "site_id",
        "email",
        "name",
        "company",
        "phone",
        "message",
        "consent",
        "page_url",
        "idempotency_key",
        "form_id",
        "form_version",
        "answers",
        "first_touch",
    ] {
        for (kind, value) in [
            ("number", json!(1)),
            ("array", json!(["x"])),
            ("object", json!({ "x": 1 })),
            ("bool", json!(true)),
        ] {
            let ok_for_field = matches!(
                (field, kind),
                ("answers" | "consent" | "first_touch", "object") | ("form_version", "number")
            );
            if !ok_for_field {
                with(&format!("{field} as {kind}"), &|b| b[field] = value.clone());
            }
        }
    }
    let long = |n: usize| "x".repeat(n);
    for (name, field, value) in [
        ("unknown field", "admin", json!(true)),
        ("email without @", "email", json!("ada.example.com")),
        (
            "email with space",
            "email",
            json!("ada lovelace@example.com"),
        ),
        ("email two @", "email", json!("a@b@example.com")),
        (
            "email CRLF",
            "email",
            json!("ada@example.com\r\nBcc: all@example.com"),
        ),
        (
            "email too long",
            "email",
            json!(format!("{}@example.com", long(300))),
        ),
        ("email empty", "email", json!("")),
        ("name empty", "name", json!("   ")),
        ("name control", "name", json!("Ada\u{7}")),
        ("name newline", "name", json!("Ada\nLovelace")),
        ("name too long", "name", json!(long(10_000))),
        ("phone letters", "phone", json!("call me maybe")),
        ("phone too long", "phone", json!("+1".repeat(40))),
        ("message huge", "message", json!(long(31_000))),
        (
            "page_url javascript",
            "page_url",
            json!("javascript:alert(1)"),
        ),
        ("page_url relative", "page_url", json!("/pricing")),
        ("idempotency short", "idempotency_key", json!("k")),
        ("idempotency huge", "idempotency_key", json!(long(500))),
        ("form_version negative", "form_version", json!(-1)),
        ("form_version huge", "form_version", json!(1u64 << 40)),
        ("form_version float", "form_version", json!(1.5)),
        ("form unknown", "form_id", json!("no-such-form")),
        (
            "answer unknown option",
            "answers",
            json!({ "timeline": "yesterday" }),
        ),
        (
            "answer unknown question",
            "answers",
            json!({ "favourite_colour": "blue" }),
        ),
        ("answer wrong type", "answers", json!({ "timeline": 3 })),
        (
            "answer nested",
            "answers",
            json!({ "timeline": { "a": 1 } }),
        ),
        (
            "consent not given",
            "consent",
            json!({ "given": false, "text_version": "v1" }),
        ),
        (
            "consent no version",
            "consent",
            json!({ "given": true, "text_version": "" }),
        ),
        (
            "consent extra",
            "consent",
            json!({ "given": true, "text_version": "v1", "x": 1 }),
        ),
        (
            "first_touch bad",
            "first_touch",
            json!({ "landing_page": 5 }),
        ),
    ] {
        with(name, &|b| b[field] = value.clone());
    }
    corpus
}

/// Submissions that are odd but legitimate: stored, and stored exactly as sent.
fn accepted(site: &str) -> Vec<(String, Value)> {
    let mut corpus = Vec::new();
    for (name, message) in [
        ("sql quote", "'; DROP TABLE leads; --"),
        ("sql union", "1 UNION SELECT email FROM leads"),
        (
            "html",
            "<script>alert('x')</script><img src=x onerror=alert(1)>",
        ),
        ("template", "{{7*7}} ${7*7} {site}"),
        ("formula", "=HYPERLINK(\"http://evil\",\"x\")"),
        ("emoji", "Hello 👋🏽 from 東京, Zoë & Ørsted"),
        ("rtl", "\u{202e}gnp.exe"),
        ("zero width", "a\u{200b}b\u{feff}c"),
        ("multi-line", "line one\nline two\r\nline three"),
        ("backslashes", "C:\\temp\\new\\x"),
        ("quotes", "\"double\" and 'single' and `back`"),
        ("json in text", "{\"email\":\"other@example.com\"}"),
    ] {
        let mut body = lead(site);
        body["email"] = json!(format!("{}@odd.example", unique("odd")));
        body["message"] = json!(message);
        body["company"] = json!(
            message
                .chars()
                .take(100)
                .collect::<String>()
                .replace(['\n', '\r'], " ")
        );
        corpus.push((name.to_owned(), body));
    }
    corpus
}

#[test]
fn hostile_input_is_refused_with_a_problem_and_stores_nothing() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let corpus = refused(&site);
    assert!(corpus.len() >= 100, "{} inputs", corpus.len());
    for (name, body) in &corpus {
        let answer = worker.send(
            "POST",
            "/v1/leads",
            &[("content-type", "application/json"), ("origin", ORIGIN)],
            Some(body),
        );
        assert!(
            (400..500).contains(&answer.status),
            "{name}: {} {}",
            answer.status,
            answer.body
        );
        let problem = answer.problem(answer.status);
        assert!(!problem.title.is_empty(), "{name}");
        // No internal detail leaks into the answer.
        for leak in ["panicked", "RuntimeError", "D1", "SQLITE", "unwrap", "src/"] {
            assert!(!answer.body.contains(leak), "{name}: {}", answer.body);
        }
    }
    assert_eq!(worker.lead_count(&site), 0, "nothing refused was stored");
    eprintln!(
        "hostile input: {} requests, each a 4xx problem, 0 stored",
        corpus.len()
    );
    // And the Worker still takes a good lead afterwards.
    assert_eq!(worker.post_lead(&lead(&site), Some(ORIGIN)).status, 201);
}

#[test]
fn odd_but_legitimate_input_is_stored_verbatim() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    for (name, body) in accepted(&site) {
        let answer = worker.post_lead(&body, Some(ORIGIN));
        assert_eq!(answer.status, 201, "{name}: {}", answer.body);
        let id = answer.json()["id"].as_str().expect("an id").to_owned();
        // Line ends are normalised to LF; nothing else changes.
        let sent = body["message"]
            .as_str()
            .expect("a message")
            .replace("\r\n", "\n");
        assert_eq!(worker.lead_column(&id, "message"), Some(sent), "{name}");
        assert_eq!(
            worker.lead_column(&id, "company").as_deref(),
            body["company"].as_str(),
            "{name}"
        );
    }
}

/// 2,000 requests from 16 threads: 200 submissions each sent 10 times, interleaved. Every copy
/// answers 201 with its submission's one id, and D1 holds exactly 200 leads.
/// 2,000 submissions over 32 parallel connections, 10% of them replays (a double click, a
/// retry after a lost answer) sent while the original may still be in flight: exactly the
/// distinct leads are stored, and every copy of a submission gets its one id.
#[test]
fn concurrent_replays_store_each_submission_once() {
    const DISTINCT: usize = 1_800;
    const REPLAYS: usize = 200;
    const CONNECTIONS: usize = 32;
    let worker = Arc::new(Worker::for_seeding());
    // The site's defaults (duplicate suppression on): distinct people, distinct addresses.
    let site = worker.new_site_with(&[ORIGIN], &json!({ "duplicate_window_hours": 24 }));
    let submissions: Arc<Vec<Value>> = Arc::new(
        (0..DISTINCT)
            .map(|i| {
                let mut body = lead(&site);
                body["email"] = json!(format!("burst{i}@example.com"));
                body
            })
            .collect(),
    );
    // Every tenth request replays the submission sent just before it, so that copies travel at
    // the same time on different connections.
    let plan: Arc<Vec<usize>> = Arc::new(
        (0..DISTINCT)
            .flat_map(|i| if i % 9 == 8 { vec![i, i - 1] } else { vec![i] })
            .collect(),
    );
    assert_eq!(plan.len(), DISTINCT + REPLAYS);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (worker, submissions, plan, next) = (
                Arc::clone(&worker),
                Arc::clone(&submissions),
                Arc::clone(&plan),
                Arc::clone(&next),
            );
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = plan.get(n) else { break seen };
                    let answer = worker.post_lead(&submissions[i], Some(ORIGIN));
                    assert_eq!(answer.status, 201, "{}", answer.body);
                    seen.push((i, answer.json()["id"].as_str().expect("an id").to_owned()));
                }
            })
        })
        .collect();
    let mut ids: Vec<Option<String>> = vec![None; DISTINCT];
    let mut answers = 0;
    for thread in threads {
        for (i, id) in thread.join().expect("a thread") {
            answers += 1;
            match &ids[i] {
                Some(first) => assert_eq!(first, &id, "submission {i} got two ids"),
                None => ids[i] = Some(id),
            }
        }
    }
    let distinct_ids: std::collections::BTreeSet<_> = ids.iter().flatten().collect();
    let stored = worker.lead_count(&site);
    eprintln!(
        "concurrency: {answers} sent over {CONNECTIONS} connections ({REPLAYS} replays), \
         {} distinct ids, {stored} stored, {} duplicated",
        distinct_ids.len(),
        stored - DISTINCT as i64
    );
    assert_eq!(answers, DISTINCT + REPLAYS);
    assert_eq!(distinct_ids.len(), DISTINCT);
    assert_eq!(stored, DISTINCT as i64);
}

/// A bot that fills the hidden honeypot field gets the usual answer, but its lead is kept as
/// spam: no email, no sales alert, no webhook, not listed for sales unless asked for.
#[test]
fn a_filled_honeypot_is_accepted_quietly_and_kept_as_spam() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[ORIGIN], &json!({ "sales_email": "sales@example.com" }));
    let hook = worker.call(
        "POST",
        &format!("/v1/admin/sites/{site}/webhooks"),
        Some(worker.admin_token()),
        Some(&json!({ "url": Worker::sink_url(&format!("/webhook/{site}")), "events": ["lead.created", "lead.hot"] })),
    );
    assert_eq!(hook.status, 201);
    let email = format!("{}@bots.example", unique("bot"));
    let mut bot = lead(&site);
    bot["email"] = json!(email);
    bot["website"] = json!("http://cheap-pills.example");
    bot["answers"] = json!({ "timeline": "now", "role": "decision_maker", "company_size": "51_200", "follow_up": "book_demo" });
    let answer = worker.post_lead(&bot, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.json()["grade"], "hot", "the bot learns nothing");
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        worker.lead_column(&id, "spam_reason").as_deref(),
        Some("honeypot")
    );
    assert!(worker.follow_ups(&id).is_empty());

    // A person (the field left blank) on the same site is followed up as usual.
    let mut person = lead(&site);
    person["website"] = json!("");
    person["email"] = json!(format!("{}@people.example", unique("person")));
    let person_id = worker.post_lead(&person, Some(ORIGIN)).json()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    leadglue_tests::eventually("the person's lead.created", 20, || {
        (!worker.webhooks_at(&format!("/webhook/{site}")).is_empty()).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let told = worker.webhooks_at(&format!("/webhook/{site}"));
    assert_eq!(told.len(), 1, "only the person's lead is announced");
    assert!(
        told[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains(&person_id))
    );
    assert!(worker.mail_to(&email).is_empty());

    let (_, key) = worker.api_key(&["leads:read"]);
    let listed = worker
        .call("GET", &format!("/v1/leads?site={site}"), Some(&key), None)
        .json();
    let ids: Vec<&str> = listed["leads"]
        .as_array()
        .expect("leads")
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert_eq!(ids, [person_id.as_str()]);
    let spam = worker
        .call(
            "GET",
            &format!("/v1/leads?site={site}&spam=true"),
            Some(&key),
            None,
        )
        .json();
    assert_eq!(spam["leads"][0]["id"], id.as_str());
    let record = worker
        .call("GET", &format!("/v1/leads/{id}"), Some(&key), None)
        .json();
    assert_eq!(record["spam_reason"], "honeypot");
}

/// Internationalised addresses: a domain in any script is welcome and stored as mail is
/// addressed (IDNA's ASCII form); letters beyond ASCII before the @ are refused with a reason,
/// since no email provider promises to deliver to them.
#[test]
fn internationalised_email_domains_are_stored_in_ascii() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let mut body = lead(&site);
    body["email"] = json!("Zoë@Bücher.example");
    let problem = worker.post_lead(&body, Some(ORIGIN)).problem(422);
    assert_eq!(problem.errors[0].field, "email");
    assert!(problem.errors[0].message.contains("before the @"));

    body["email"] = json!("zoe@Bücher.example");
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        worker.lead_column(&id, "email").as_deref(),
        Some("zoe@xn--bcher-kva.example")
    );
}
