//! Spam screening beyond the honeypot, and duplicate suppression: the minimum fill time (signed
//! render tokens), Turnstile, per-IP and per-site rate limits, and the same person sending the
//! form twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leadglue_tests::{Answer, ORIGIN, Worker, lead, unique};
use serde_json::{Value, json};

fn render_token(worker: &Worker, site: &str) -> String {
    let answer = worker.get(
        &format!("/v1/sites/{site}/render-token"),
        &[("origin", ORIGIN)],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    answer.json()["token"].as_str().expect("a token").to_owned()
}

fn id(answer: &Answer) -> String {
    answer.json()["id"].as_str().expect("an id").to_owned()
}

fn with_email(site: &str, email: &str) -> Value {
    let mut body = lead(site);
    body["email"] = json!(email);
    body
}

#[test]
fn a_form_sent_sooner_than_the_minimum_fill_time_is_kept_as_spam() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[ORIGIN], &json!({ "min_fill_seconds": 1 }));
    let other = worker.new_site_with(&[ORIGIN], &json!({ "min_fill_seconds": 1 }));
    let token = render_token(&worker, &site);
    let foreign = render_token(&worker, &other);

    let mut cases = vec![
        ("too_fast", Some(token.clone())),
        ("no_render_token", None),
        ("bad_render_token", Some(foreign)),
        ("bad_render_token", Some(format!("{token}x"))),
        (
            "bad_render_token",
            Some("v1.1700000000000.AAAAAAAAAAAAAAAAAAAAAA".into()),
        ),
    ];
    let mut spam = Vec::new();
    for (reason, token) in cases.drain(..) {
        let mut body = with_email(&site, &format!("{}@example.com", unique("quick")));
        if let Some(token) = token {
            body["render_token"] = json!(token);
        }
        let answer = worker.post_lead(&body, Some(ORIGIN));
        // Quietly: the same answer a person gets.
        assert_eq!(answer.status, 201, "{}", answer.body);
        let id = id(&answer);
        assert_eq!(
            worker.lead_column(&id, "spam_reason").as_deref(),
            Some(reason),
            "{body}"
        );
        assert!(
            worker.follow_ups(&id).is_empty(),
            "spam is never followed up"
        );
        spam.push(id);
    }

    // A person takes longer than a second: the same token, a moment later, passes.
    std::thread::sleep(Duration::from_millis(1100));
    let mut body = with_email(&site, &format!("{}@example.com", unique("person")));
    body["render_token"] = json!(token);
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let person = id(&answer);
    assert_eq!(worker.lead_column(&person, "spam_reason"), None);
    assert!(
        !worker.follow_ups(&person).is_empty(),
        "a person's lead is followed up"
    );

    // The token is only for pages the site allows, and only for known sites.
    let path = format!("/v1/sites/{site}/render-token");
    worker
        .get(&path, &[("origin", "https://elsewhere.example")])
        .problem(403);
    worker
        .get(&format!("/v1/sites/{}/render-token", unique("nosite")), &[])
        .problem(404);
}

#[test]
fn turnstile_sites_need_a_passing_single_use_challenge() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(
        &[ORIGIN],
        &json!({ "turnstile_site_key": "1x00000000000000000000AA" }),
    );
    // The widget learns it must show the challenge, and where the script is.
    let config = worker
        .get(
            &format!("/v1/sites/{site}/forms/default"),
            &[("origin", ORIGIN)],
        )
        .json();
    assert_eq!(
        config["site"]["turnstile"]["site_key"],
        "1x00000000000000000000AA"
    );
    assert!(
        config["site"]["turnstile"]["script_url"]
            .as_str()
            .is_some_and(|u| u.contains("/turnstile/api.js"))
    );

    let refused = |body: &Value, why: &str| {
        let problem = worker.post_lead(body, Some(ORIGIN)).problem(422);
        assert_eq!(problem.errors.len(), 1, "{why}: {problem:?}");
        assert_eq!(problem.errors[0].field, "turnstile_token", "{why}");
    };
    let email = format!("{}@example.com", unique("turnstile"));
    let mut body = with_email(&site, &email);
    refused(&body, "no token");
    body["turnstile_token"] = json!(format!("{}:fail", unique("t")));
    refused(&body, "a token Cloudflare refuses");
    body["turnstile_token"] = json!(format!("{}:pass:evil.example", unique("t")));
    refused(&body, "solved on another host");
    assert_eq!(worker.lead_count(&site), 0, "nothing refused is stored");

    let token = format!("{}:pass:www.example.com", unique("t"));
    body["turnstile_token"] = json!(token);
    let first = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(first.status, 201, "{}", first.body);
    // A retry of the same submission (same idempotency key) verifies again and replays.
    let again = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(id(&again), id(&first));
    // The same answer to the challenge cannot be used for another submission.
    let mut reused = with_email(&site, &format!("{}@example.com", unique("reuse")));
    reused["turnstile_token"] = json!(token);
    refused(&reused, "a token already used");
    assert_eq!(worker.lead_count(&site), 1);

    // Sites without Turnstile check nothing of the sort.
    let plain = worker.new_site(&[ORIGIN]);
    assert_eq!(worker.post_lead(&lead(&plain), Some(ORIGIN)).status, 201);
}

#[test]
fn the_same_email_within_the_window_updates_the_first_lead() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[ORIGIN], &json!({ "duplicate_window_hours": 24 }));
    let email = format!("{}@example.com", unique("twice"));
    let first_body = with_email(&site, &email);
    let first = worker.post_lead(&first_body, Some(ORIGIN));
    assert_eq!(first.status, 201, "{}", first.body);
    let lead_id = id(&first);
    assert_eq!(first.json()["grade"], "warm");

    // Back a day later (well, a moment), in a hurry now, with another message and in capitals.
    let mut second = with_email(&site, &email.to_uppercase());
    second["message"] = json!("Actually, can someone call me?");
    second["phone"] = json!("+44 20 7946 0000");
    second["answers"] = json!({ "timeline": "now", "role": "decision_maker",
                                "company_size": "51_200", "follow_up": "book_demo" });
    // From another network, too: the consent on record is this submission's.
    let answer = worker.send(
        "POST",
        "/v1/leads",
        &[
            ("content-type", "application/json"),
            ("origin", ORIGIN),
            ("cf-connecting-ip", "203.0.113.77"),
        ],
        Some(&serde_json::to_vec(&second).unwrap()),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(id(&answer), lead_id, "the first lead, updated");
    assert_eq!(answer.json()["grade"], "hot");
    // Replaying the resubmission counts nothing twice.
    let replay = worker.post_lead(&second, Some(ORIGIN));
    assert_eq!((replay.status, id(&replay)), (200, lead_id.clone()));
    // …and replaying the first submission still answers as the first time.
    let replay = worker.post_lead(&first_body, Some(ORIGIN));
    assert_eq!((replay.status, id(&replay)), (201, lead_id.clone()));

    assert_eq!(worker.lead_count(&site), 1);
    let (_, key) = worker.api_key(&["leads:read"]);
    let record = worker
        .call("GET", &format!("/v1/leads/{lead_id}"), Some(&key), None)
        .json();
    assert_eq!(record["resubmissions"], 1);
    assert!(record["last_submitted_at"].is_string());
    // The consent record is one submission's, not a mix: the wording, time and IP of the last.
    assert_eq!(record["consent"]["given_at"], record["last_submitted_at"]);
    assert_eq!(record["consent"]["ip"], "203.0.113.77");
    assert_eq!(record["grade"], "hot");
    assert_eq!(
        record["phone"], "+442079460000",
        "the new number, normalised"
    );
    assert_eq!(
        record["message"], "Please send me the brochure.\n\nActually, can someone call me?",
        "nothing the person wrote is lost"
    );
    // One welcome, not two: a resubmission starts no new sequence.
    let welcomes = worker
        .follow_ups(&lead_id)
        .into_iter()
        .filter(|(step, ..)| *step == 0)
        .count();
    assert_eq!(welcomes, 1);

    // Spam never merges into a person's lead, and a site with the window off keeps both.
    let mut bot = with_email(&site, &email);
    bot["website"] = json!("http://spam.example");
    let bot = worker.post_lead(&bot, Some(ORIGIN));
    assert_ne!(id(&bot), lead_id);
    let off = worker.new_site(&[ORIGIN]);
    let a = worker.post_lead(&with_email(&off, &email), Some(ORIGIN));
    let b = worker.post_lead(&with_email(&off, &email), Some(ORIGIN));
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(id(&a), id(&b));
}

/// Waits, if fewer than `needed` are left, for the local rate limiter's next window. Miniflare's
/// limiter counts in fixed windows of the clock (`Date.now() / period`, a minute here) and forgets
/// every count when one turns: a step that needs a count to hold must not straddle that moment.
fn with_window_left(needed: Duration) {
    const WINDOW_MS: u128 = 60_000;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis();
    let left = WINDOW_MS - now % WINDOW_MS;
    if left < needed.as_millis() {
        // A little past the turn, so that the Worker's clock has turned too.
        std::thread::sleep(Duration::from_millis(
            u64::try_from(left).expect("under a minute") + 100,
        ));
    }
}

/// The Worker running `edge/wrangler.toml` as shipped: 20 leads a minute per IP, 1,000 per
/// site. (Under `wrangler dev` the visitor's IP is whatever `CF-Connecting-IP` says; on
/// Cloudflare it is set by the edge, not the client.)
#[test]
fn rate_limits_answer_429_with_retry_after_and_store_nothing() {
    let worker = Worker::limited();
    let site = worker.new_site(&[ORIGIN]);
    let post = |body: &Value, ip: &str| {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        worker.send(
            "POST",
            "/v1/leads",
            &[
                ("content-type", "application/json"),
                ("origin", ORIGIN),
                ("cf-connecting-ip", ip),
            ],
            Some(&bytes),
        )
    };

    // One visitor: limited after 20 (or up to 40, should a minute's window turn meanwhile). The
    // stranger's request below needs the count to hold after the limit, so this part starts in a
    // window with time to spare (it takes 1–2 s).
    with_window_left(Duration::from_secs(20));
    let ip = format!("198.51.100.{}", std::process::id() % 250);
    let mut accepted: i64 = 0;
    let limited = loop {
        let answer = post(&lead(&site), &ip);
        if answer.status != 201 {
            break answer;
        }
        accepted += 1;
        assert!(accepted <= 40, "never limited");
    };
    assert!(accepted >= 20, "limited after {accepted}");
    let problem = limited.problem(429);
    assert_eq!(problem.kind, "/problems/rate-limited");
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(
        limited.header("access-control-allow-origin"),
        Some(ORIGIN),
        "the widget can read why"
    );
    assert_eq!(
        limited.header("access-control-expose-headers"),
        Some("retry-after"),
        "…and for how long"
    );
    assert_eq!(
        worker.lead_count(&site),
        accepted,
        "nothing limited is stored"
    );
    // Answered without a D1 read, readable whichever page sent it (it says nothing of a site).
    let bytes = serde_json::to_vec(&lead(&site)).expect("serialisable");
    let stranger = worker.send(
        "POST",
        "/v1/leads",
        &[
            ("content-type", "application/json"),
            ("origin", "https://stranger.example"),
            ("cf-connecting-ip", &ip),
        ],
        Some(&bytes),
    );
    stranger.problem(429);
    assert_eq!(
        stranger.header("access-control-allow-origin"),
        Some("https://stranger.example")
    );
    // Another visitor is not held up by the first.
    assert_eq!(post(&lead(&site), "203.0.113.7").status, 201);

    // One site, many visitors: limited after 1,000. Submissions that fail validation count too
    // (they cost the same to refuse), which keeps this quick.
    let busy = worker.new_site(&[ORIGIN]);
    let mut invalid = lead(&busy);
    invalid["email"] = json!("not an address");
    let mut counted = 0;
    let limited = loop {
        let ip = format!("10.{}.{}.1", counted / 250 % 250, counted % 250 / 10);
        let answer = post(&invalid, &ip);
        if answer.status != 422 {
            break answer;
        }
        counted += 1;
        assert!(counted <= 2_000, "never limited");
    };
    assert!(counted >= 1_000, "limited after {counted}");
    limited.problem(429);
    let mut person = lead(&busy);
    person["email"] = json!(format!("{}@example.com", unique("late")));
    assert_eq!(
        post(&person, "192.0.2.99").status,
        429,
        "the site is limited"
    );
    assert_eq!(worker.lead_count(&busy), 0);
}
