//! Webhook subscriptions: signed events (verified with the Standard Webhooks reference library
//! from npm, not with the project's own code), retries until delivered once, the delivery log,
//! test sends.

use std::io::Write;
use std::process::{Command, Stdio};

use leadglue_tests::{ORIGIN, Worker, eventually, lead, now_ms, unique};
use serde_json::{Value, json};

/// Verifies a received webhook with the npm `standardwebhooks` package; the payload, or the
/// library's refusal.
fn verify(secret: &str, received: &Value) -> Result<Value, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/verify-webhook.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let input =
        json!({ "secret": secret, "headers": received["headers"], "body": received["body"] });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("input written");
    let output = child.wait_with_output().expect("node finishes");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("the payload"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Subscribes a sink path to `events` on `site`; returns (id, secret, path).
fn subscribe(
    worker: &Worker,
    site: &str,
    events: &[&str],
    marker: &str,
) -> (String, String, String) {
    let path = format!("/webhook/{}{marker}", unique("sub"));
    let answer = worker.call(
        "POST",
        &format!("/v1/admin/sites/{site}/webhooks"),
        Some(worker.admin_token()),
        Some(&json!({ "url": Worker::sink_url(&path), "events": events })),
    );
    assert_eq!(answer.status, 201, "{}", answer.body);
    let body = answer.json();
    let secret = body["secret"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    (body["id"].as_str().expect("an id").to_owned(), secret, path)
}

fn hot_lead(site: &str, email: &str) -> Value {
    let mut body = lead(site);
    body["email"] = json!(email);
    body["answers"] = json!({ "timeline": "now", "role": "decision_maker", "company_size": "51_200", "follow_up": "book_demo" });
    body
}

fn deliveries(worker: &Worker, site: &str, id: &str) -> Vec<Value> {
    let answer = worker.call(
        "GET",
        &format!("/v1/admin/sites/{site}/webhooks/{id}/deliveries"),
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

#[test]
fn subscribers_receive_signed_lead_events() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let all = ["lead.created", "lead.hot", "lead.status_changed"];
    let (_, secret, path) = subscribe(&worker, &site, &all, "");
    let email = format!("{}@hooks.example", unique("hot"));
    let submission = hot_lead(&site, &email);
    let created = worker.post_lead(&submission, Some(ORIGIN));
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().expect("an id").to_owned();

    let received = eventually("lead.created and lead.hot", 20, || {
        let got = worker.webhooks_at(&path);
        (got.len() == 2).then_some(got)
    });
    let mut types = Vec::new();
    for delivery in &received {
        let payload = verify(&secret, delivery).expect("a valid Standard Webhooks signature");
        assert_eq!(
            payload.to_string(),
            serde_json::from_str::<Value>(delivery["body"].as_str().expect("a body"))
                .expect("JSON")
                .to_string()
        );
        assert_eq!(payload["data"]["lead"]["id"], id.as_str());
        assert_eq!(payload["data"]["lead"]["email"], email.as_str());
        assert_eq!(payload["data"]["lead"]["grade"], "hot");
        assert_eq!(payload["data"]["lead"]["status"], "lead");
        assert!(payload["timestamp"].is_string());
        assert!(
            delivery["headers"]["webhook-id"]
                .as_str()
                .expect("an id")
                .starts_with("msg_")
        );
        types.push(payload["type"].as_str().expect("a type").to_owned());
    }
    types.sort();
    assert_eq!(types, ["lead.created", "lead.hot"]);

    // The verifier is real: a changed body, or another secret, is refused.
    let mut tampered = received[0].clone();
    tampered["body"] = json!(
        tampered["body"]
            .as_str()
            .expect("a body")
            .replace("hot", "warm")
    );
    assert!(verify(&secret, &tampered).is_err());
    assert!(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &received[0]).is_err());

    // A status change is an event too, with who changed what.
    let (key_id, key) = worker.api_key(&["leads:write"]);
    let moved = worker.call(
        "PATCH",
        &format!("/v1/leads/{id}"),
        Some(&key),
        Some(&json!({ "status": "prospect" })),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    let changed = eventually("lead.status_changed", 20, || {
        worker.webhooks_at(&path).into_iter().find(|d| {
            d["body"]
                .as_str()
                .is_some_and(|b| b.contains("lead.status_changed"))
        })
    });
    let payload = verify(&secret, &changed).expect("a valid signature");
    assert_eq!(payload["data"]["lead"]["status"], "prospect");
    assert_eq!(payload["data"]["change"]["from"], "lead");
    assert_eq!(payload["data"]["change"]["to"], "prospect");
    assert!(
        payload["data"]["change"]["actor"]
            .as_str()
            .expect("an actor")
            .contains(&key_id)
    );
    // Tags alone are not a status change; a replayed capture tells no one twice.
    let tagged = worker.call(
        "PATCH",
        &format!("/v1/leads/{id}"),
        Some(&key),
        Some(&json!({ "tags": ["x"] })),
    );
    assert_eq!(tagged.status, 200);
    let replay = worker.post_lead(&submission, Some(ORIGIN));
    assert_eq!(replay.status, 201);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(worker.webhooks_at(&path).len(), 3);
}

#[test]
fn a_lead_that_turns_hot_when_sent_again_is_announced_once() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[ORIGIN], &json!({ "duplicate_window_hours": 24 }));
    let (_, _, path) = subscribe(&worker, &site, &["lead.created", "lead.hot"], "");
    let email = format!("{}@hooks.example", unique("returning"));
    let mut warm = lead(&site);
    warm["email"] = json!(email);
    let first = worker.post_lead(&warm, Some(ORIGIN));
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.json()["id"].as_str().expect("an id").to_owned();
    // Sent again, hot now, twice: the same lead, updated; hot once.
    for _ in 0..2 {
        let again = worker.post_lead(&hot_lead(&site, &email), Some(ORIGIN));
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.json()["id"], id.as_str());
    }
    eventually("lead.created and lead.hot", 20, || {
        (worker.webhooks_at(&path).len() >= 2).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut received: Vec<Value> = worker
        .webhooks_at(&path)
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().expect("a body")).expect("JSON"))
        .collect();
    received.sort_by_key(|body| body["type"].as_str().unwrap_or_default().to_owned());
    let types: Vec<_> = received.iter().map(|b| b["type"].clone()).collect();
    assert_eq!(types, ["lead.created", "lead.hot"], "{received:?}");
    let hot = &received[1]["data"]["lead"];
    assert_eq!(
        (hot["id"].as_str(), hot["grade"].as_str()),
        (Some(id.as_str()), Some("hot"))
    );
}

#[test]
fn a_subscription_hears_only_the_events_it_chose() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let (_, _, path) = subscribe(&worker, &site, &["lead.hot"], "");
    let mut warm = lead(&site);
    warm["email"] = json!(format!("{}@hooks.example", unique("warm")));
    assert_eq!(worker.post_lead(&warm, Some(ORIGIN)).status, 201);
    let hot = format!("{}@hooks.example", unique("hot"));
    assert_eq!(
        worker
            .post_lead(&hot_lead(&site, &hot), Some(ORIGIN))
            .status,
        201
    );
    eventually("lead.hot", 20, || {
        (!worker.webhooks_at(&path).is_empty()).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let received = worker.webhooks_at(&path);
    assert_eq!(received.len(), 1, "{received:?}");
    let body: Value =
        serde_json::from_str(received[0]["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body["type"], "lead.hot");
    assert_eq!(body["data"]["lead"]["email"], hot.as_str());
}

#[test]
fn a_failing_subscriber_gets_each_event_once_after_retries() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let (sub, secret, path) = subscribe(&worker, &site, &["lead.created"], "+fail2");
    let mut body = lead(&site);
    body["email"] = json!(format!("{}@hooks.example", unique("retry")));
    let start = now_ms();
    assert_eq!(worker.post_lead(&body, Some(ORIGIN)).status, 201);

    // First attempt refused (500): logged, rescheduled a minute later.
    let first = eventually("the first attempt", 20, || {
        deliveries(&worker, &site, &sub)
            .into_iter()
            .find(|d| d["attempts"] == 1 && d["state"] == "scheduled")
    });
    assert_eq!(first["last_status"], 500);
    assert!(
        first["last_error"]
            .as_str()
            .expect("an error")
            .contains("500")
    );
    assert!(first["due_at"].as_i64().expect("a due time") >= start + 60_000);

    // Two minutes on: refused again; four minutes on: delivered.
    worker.run_follow_ups(&site, start + 61_000);
    eventually("the second attempt", 20, || {
        deliveries(&worker, &site, &sub)
            .into_iter()
            .find(|d| d["attempts"] == 2 && d["state"] == "scheduled")
    });
    worker.run_follow_ups(&site, start + 4 * 60_000);
    let done = eventually("delivery", 20, || {
        deliveries(&worker, &site, &sub)
            .into_iter()
            .find(|d| d["state"] == "delivered")
    });
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["last_status"], 204);
    assert!(done["last_error"].is_null());

    let received = worker.webhooks_at(&path);
    assert_eq!(received.len(), 1, "delivered exactly once");
    assert_eq!(received[0]["attempts_refused"], 2);
    assert_eq!(received[0]["headers"]["webhook-id"], done["id"]);
    verify(&secret, &received[0]).expect("a valid signature on the delivered attempt");
    // Nothing more is due.
    worker.run_follow_ups(&site, start + 60 * 60_000);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(worker.webhooks_at(&path).len(), 1);
}

#[test]
fn a_lead_sales_keep_as_spam_is_never_announced() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    // A subscriber that is down when the bot's lead comes in (its first two attempts fail).
    let events = ["lead.created", "lead.status_changed"];
    let (sub, _, path) = subscribe(&worker, &site, &events, "+fail2");
    let mut body = lead(&site);
    body["email"] = json!(format!("{}@hooks.example", unique("junk")));
    let start = now_ms();
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    eventually("the first attempt", 20, || {
        deliveries(&worker, &site, &sub)
            .into_iter()
            .find(|d| d["attempts"] == 1 && d["state"] == "scheduled")
    });

    // Sales keep it as spam, then move it on: neither reaches the subscriber.
    let (_, key) = worker.api_key(&["leads:read", "leads:write"]);
    for patch in [json!({ "spam": true }), json!({ "status": "disqualified" })] {
        let answer = worker.call(
            "PATCH",
            &format!("/v1/leads/{id}"),
            Some(&key),
            Some(&patch),
        );
        assert_eq!(answer.status, 200, "{patch}: {}", answer.body);
    }
    let log = deliveries(&worker, &site, &sub);
    assert_eq!(log.len(), 1, "no status event: {log:?}");
    assert_eq!(log[0]["state"], "dead");
    assert_eq!(log[0]["last_error"], "cancelled: kept as spam");
    worker.run_follow_ups(&site, start + 60 * 60_000);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(worker.webhooks_at(&path).is_empty());
}

#[test]
fn subscriptions_are_listed_tested_and_deleted() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let admin = worker.admin_token().to_owned();
    let (sub, secret, path) = subscribe(&worker, &site, &["lead.created", "lead.hot"], "");

    let listed = worker.call(
        "GET",
        &format!("/v1/admin/sites/{site}/webhooks"),
        Some(&admin),
        None,
    );
    assert_eq!(listed.status, 200);
    let hooks = listed.json()["webhooks"].clone();
    assert_eq!(hooks[0]["id"], sub.as_str());
    assert_eq!(hooks[0]["events"], json!(["lead.created", "lead.hot"]));
    assert!(hooks[0].get("secret").is_none() && !listed.body.contains(&secret));

    // A test send goes out at once and says how it went.
    let test = worker.call(
        "POST",
        &format!("/v1/admin/sites/{site}/webhooks/{sub}/test"),
        Some(&admin),
        None,
    );
    assert_eq!(test.status, 200, "{}", test.body);
    assert_eq!(test.json()["state"], "delivered");
    assert_eq!(test.json()["last_status"], 204);
    assert_eq!(test.json()["event"], "webhook.test");
    let received = worker.webhooks_at(&path);
    assert_eq!(received.len(), 1);
    let payload = verify(&secret, &received[0]).expect("a valid signature");
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(deliveries(&worker, &site, &sub).len(), 1);

    // Bad subscriptions say what to fix; unknown ones are 404.
    let problem = worker
        .call(
            "POST",
            &format!("/v1/admin/sites/{site}/webhooks"),
            Some(&admin),
            Some(&json!({ "url": "ftp://x", "events": [] })),
        )
        .problem(422);
    let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["url", "events"]);
    let problem = worker
        .call(
            "POST",
            &format!("/v1/admin/sites/{site}/webhooks"),
            Some(&admin),
            Some(&json!({ "url": "https://x.example", "events": ["lead.deleted"] })),
        )
        .problem(422);
    assert_eq!(problem.errors[0].field, "events[0]");
    worker
        .call(
            "POST",
            &format!("/v1/admin/sites/{}/webhooks", unique("nosite")),
            Some(&admin),
            Some(&json!({ "url": "https://x.example", "events": ["lead.hot"] })),
        )
        .problem(404);
    worker
        .call(
            "POST",
            &format!("/v1/admin/sites/{site}/webhooks/wh_nope/test"),
            Some(&admin),
            None,
        )
        .problem(404);

    // Deleted: gone from the list, and told nothing more.
    let deleted = worker.call(
        "DELETE",
        &format!("/v1/admin/sites/{site}/webhooks/{sub}"),
        Some(&admin),
        None,
    );
    assert_eq!(deleted.status, 204);
    worker
        .call(
            "DELETE",
            &format!("/v1/admin/sites/{site}/webhooks/{sub}"),
            Some(&admin),
            None,
        )
        .problem(404);
    let listed = worker.call(
        "GET",
        &format!("/v1/admin/sites/{site}/webhooks"),
        Some(&admin),
        None,
    );
    assert_eq!(listed.json()["webhooks"], json!([]));
    let mut body = lead(&site);
    body["email"] = json!(format!("{}@hooks.example", unique("after")));
    assert_eq!(worker.post_lead(&body, Some(ORIGIN)).status, 201);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(worker.webhooks_at(&path).len(), 1);
}
