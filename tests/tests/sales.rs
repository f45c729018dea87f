//! The Sales API against a running Worker: keys and scopes, listing with filters and cursors,
//! a lead's whole record, the lifecycle, notes, export, and the person's data and its erasure.

use leadglue_tests::{ORIGIN, SeedLead, Worker, lead, now_ms, unique};
use serde_json::{Value, json};

/// Seeds `n` leads of the varied population on a new site; returns the site and the leads.
fn seeded_site(worker: &Worker, n: usize) -> (String, Vec<SeedLead>) {
    let site = worker.new_site(&[ORIGIN]);
    let leads: Vec<SeedLead> = (0..n).map(|i| SeedLead::nth(&site, i)).collect();
    worker.seed_leads(&leads);
    (site, leads)
}

/// Newest first, as the API lists them.
fn newest_first(mut leads: Vec<SeedLead>) -> Vec<SeedLead> {
    leads.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
    leads
}

/// Every page of a listing, following cursors; `between` runs after each page.
fn all_pages(worker: &Worker, key: &str, query: &str, mut between: impl FnMut()) -> Vec<Value> {
    let mut leads = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/leads?{query}&cursor={c}"),
            None => format!("/v1/leads?{query}"),
        };
        let answer = worker.call("GET", &path, Some(key), None);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let page = answer.json();
        leads.extend(page["leads"].as_array().expect("leads").iter().cloned());
        between();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return leads,
        }
    }
}

fn ids(leads: &[Value]) -> Vec<String> {
    leads
        .iter()
        .map(|l| l["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn capture(worker: &Worker, site: &str) -> String {
    capture_as(worker, site, "ada@example.com")
}

fn capture_as(worker: &Worker, site: &str, email: &str) -> String {
    let mut body = lead(site);
    body["email"] = json!(email);
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_str().expect("an id").to_owned()
}

#[test]
fn api_keys_are_shown_once_stored_as_a_hash_and_revocable() {
    let worker = Worker::from_env();
    let (id, key) = worker.api_key(&["leads:read"]);
    assert!(key.starts_with("lg_") && key.contains(&id), "{key}");

    // Listed without the secret; stored without it.
    let listed = worker.call(
        "GET",
        "/v1/admin/api-keys",
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(listed.status, 200);
    let entry = listed.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("the new key is listed");
    assert_eq!(entry["scopes"], json!(["leads:read"]));
    assert!(entry.get("key").is_none(), "{entry}");
    assert!(!listed.body.contains(&key));
    let secret = key.rsplit('_').next().expect("a secret");
    let stored: String = worker
        .d1()
        .query_row(
            "SELECT id || name || scopes || secret_hash FROM api_keys WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .expect("the key row");
    assert!(!stored.contains(secret), "the secret itself is stored");

    // It works, and its use is recorded.
    let site = worker.new_site(&[ORIGIN]);
    let answer = worker.call("GET", &format!("/v1/leads?site={site}"), Some(&key), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let used: Option<String> = worker
        .d1()
        .query_row(
            "SELECT last_used_at FROM api_keys WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .expect("the key row");
    assert!(used.is_some());

    // Revoked: refused from then on; revoking an unknown key is a 404.
    let revoke = worker.call(
        "DELETE",
        &format!("/v1/admin/api-keys/{id}"),
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(revoke.status, 204, "{}", revoke.body);
    worker
        .call("GET", &format!("/v1/leads?site={site}"), Some(&key), None)
        .problem(401);
    worker
        .call(
            "DELETE",
            "/v1/admin/api-keys/0123456789abcdef",
            Some(worker.admin_token()),
            None,
        )
        .problem(404);

    // Bad requests for keys say what to fix.
    let problem = worker
        .call(
            "POST",
            "/v1/admin/api-keys",
            Some(worker.admin_token()),
            Some(&json!({ "name": "", "scopes": [] })),
        )
        .problem(422);
    let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "scopes"]);
    let problem = worker
        .call(
            "POST",
            "/v1/admin/api-keys",
            Some(worker.admin_token()),
            Some(&json!({ "name": "x", "scopes": ["leads:delete"] })),
        )
        .problem(422);
    assert_eq!(problem.errors[0].field, "scopes[0]");
}

/// Every protected endpoint refuses missing, malformed, unknown and revoked keys (401) and keys
/// without its scope (403), and lets the right scope through.
#[test]
fn every_protected_endpoint_checks_keys_and_scopes() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let lead_id = capture(&worker, &site);
    let (_, read) = worker.api_key(&["leads:read"]);
    let (_, write) = worker.api_key(&["leads:write"]);
    let (_, admin) = worker.api_key(&["admin"]);
    let (revoked_id, revoked) = worker.api_key(&["admin"]);
    let answer = worker.call(
        "DELETE",
        &format!("/v1/admin/api-keys/{revoked_id}"),
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(answer.status, 204);
    let unknown = format!("lg_{}_{}", "0".repeat(16), "0".repeat(64));
    // The right key's secret with another id, and a well-formed id with a wrong secret.
    let wrong_secret = format!(
        "{}{}",
        &read[..read.len() - 1],
        if read.ends_with('0') { '1' } else { '0' }
    );

    let note = json!({ "body": "Called; wants a quote." });
    let patch = json!({ "tags": ["auth-matrix"] });
    let site_body = leadglue_tests::site_definition(&[ORIGIN]);
    let form_body = json!({ "questions": [] });
    let key_body = json!({ "name": "k", "scopes": ["leads:read"] });
    let hook_body = json!({ "url": "https://crm.example/hook", "events": ["lead.hot"] });
    // (method, path, body, the scope it needs, a key lacking that scope)
    let endpoints: Vec<(&str, String, Option<&Value>, &str, &str)> = vec![
        (
            "GET",
            format!("/v1/leads?site={site}"),
            None,
            "leads:read",
            &write,
        ),
        (
            "GET",
            format!("/v1/leads/export?format=csv&site={site}"),
            None,
            "leads:read",
            &write,
        ),
        (
            "GET",
            format!("/v1/leads/{lead_id}"),
            None,
            "leads:read",
            &write,
        ),
        (
            "GET",
            format!("/v1/leads/{lead_id}/data"),
            None,
            "leads:read",
            &write,
        ),
        (
            "PATCH",
            format!("/v1/leads/{lead_id}"),
            Some(&patch),
            "leads:write",
            &read,
        ),
        (
            "POST",
            format!("/v1/leads/{lead_id}/notes"),
            Some(&note),
            "leads:write",
            &read,
        ),
        (
            "DELETE",
            format!("/v1/leads/{}", unique("missing")),
            None,
            "leads:write",
            &read,
        ),
        ("GET", "/v1/admin/api-keys".into(), None, "admin", &write),
        (
            "POST",
            "/v1/admin/api-keys".into(),
            Some(&key_body),
            "admin",
            &read,
        ),
        (
            "DELETE",
            "/v1/admin/api-keys/0123456789abcdef".into(),
            None,
            "admin",
            &write,
        ),
        (
            "PUT",
            format!("/v1/admin/sites/{site}"),
            Some(&site_body),
            "admin",
            &write,
        ),
        (
            "PUT",
            format!("/v1/admin/sites/{site}/forms/other"),
            Some(&form_body),
            "admin",
            &read,
        ),
        (
            "GET",
            format!("/v1/admin/sites/{site}/templates/welcome"),
            None,
            "admin",
            &write,
        ),
        (
            "POST",
            format!("/v1/admin/sites/{site}/webhooks"),
            Some(&hook_body),
            "admin",
            &write,
        ),
        (
            "GET",
            format!("/v1/admin/sites/{site}/webhooks"),
            None,
            "admin",
            &read,
        ),
        (
            "DELETE",
            format!("/v1/admin/sites/{site}/webhooks/wh_nope"),
            None,
            "admin",
            &write,
        ),
        (
            "GET",
            format!("/v1/admin/sites/{site}/webhooks/wh_nope/deliveries"),
            None,
            "admin",
            &read,
        ),
        (
            "POST",
            format!("/v1/admin/sites/{site}/webhooks/wh_nope/test"),
            None,
            "admin",
            &write,
        ),
        (
            "POST",
            format!("/v1/admin/follow-ups/run?site={site}"),
            None,
            "admin",
            &read,
        ),
    ];
    for (method, path, body, scope, lacking) in &endpoints {
        let what = format!("{method} {path}");
        let raw = |authorization: Option<&str>| {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = authorization {
                headers.push(("authorization", a));
            }
            let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
            worker.send(method, path, &headers, bytes.as_deref())
        };
        for (case, answer) in [
            ("no key", raw(None)),
            ("not bearer", raw(Some(&format!("Basic {read}")))),
            ("malformed key", raw(Some("Bearer lg_nope"))),
            ("unknown key", raw(Some(&format!("Bearer {unknown}")))),
            ("wrong secret", raw(Some(&format!("Bearer {wrong_secret}")))),
            ("revoked key", raw(Some(&format!("Bearer {revoked}")))),
        ] {
            assert_eq!(answer.status, 401, "{what}, {case}: {}", answer.body);
            assert_eq!(
                answer.header("content-type"),
                Some("application/problem+json")
            );
        }
        let forbidden = worker.call(method, path, Some(lacking), *body);
        let problem = forbidden.problem(403);
        assert!(
            problem
                .detail
                .as_deref()
                .unwrap_or_default()
                .contains(scope),
            "{what}: {problem:?}"
        );
        // The right scope, and admin (which holds them all), get past the check.
        for key in [
            if *scope == "admin" {
                &admin
            } else if *scope == "leads:read" {
                &read
            } else {
                &write
            },
            &admin,
        ] {
            let answer = worker.call(method, path, Some(key), *body);
            assert!(
                ![401, 403].contains(&answer.status),
                "{what}: {} {}",
                answer.status,
                answer.body
            );
        }
    }
}

#[test]
fn pages_cover_every_lead_exactly_once_while_new_leads_arrive() {
    let worker = Worker::for_seeding();
    let (site, seeded) = seeded_site(&worker, 1_050);
    let (_, key) = worker.api_key(&["leads:read"]);
    let mut arrived = Vec::new();
    let listed = all_pages(&worker, &key, &format!("site={site}&limit=200"), || {
        // Three real submissions between every two pages: newer than anything listed so far.
        for _ in 0..3 {
            arrived.push(capture(&worker, &site));
        }
    });
    let expected: Vec<String> = newest_first(seeded).into_iter().map(|l| l.id).collect();
    assert_eq!(
        ids(&listed),
        expected,
        "every seeded lead once, newest first"
    );
    assert_eq!(arrived.len(), 3 * 6);

    // A new listing starts with the leads that arrived meanwhile.
    let first = worker.call(
        "GET",
        &format!("/v1/leads?site={site}&limit=18"),
        Some(&key),
        None,
    );
    let mut newest = ids(first.json()["leads"].as_array().expect("leads"));
    newest.sort();
    arrived.sort();
    assert_eq!(newest, arrived);

    // The default page is 50; limits and cursors are checked.
    let page = worker.call("GET", &format!("/v1/leads?site={site}"), Some(&key), None);
    assert_eq!(page.json()["leads"].as_array().expect("leads").len(), 50);
    let problem = worker
        .call(
            "GET",
            &format!("/v1/leads?site={site}&limit=500"),
            Some(&key),
            None,
        )
        .problem(422);
    assert_eq!(problem.errors[0].field, "limit");
    let problem = worker
        .call("GET", "/v1/leads?cursor=bm9wZQ", Some(&key), None)
        .problem(422);
    assert_eq!(problem.errors[0].field, "cursor");
    let problem = worker
        .call("GET", "/v1/leads?grad=hot", Some(&key), None)
        .problem(422);
    assert_eq!(problem.errors[0].field, "grad");
}

#[test]
fn each_filter_finds_exactly_the_matching_leads() {
    let worker = Worker::for_seeding();
    let (site, seeded) = seeded_site(&worker, 240);
    let (_, key) = worker.api_key(&["leads:read"]);
    let expect = |keep: &dyn Fn(&SeedLead) -> bool| -> Vec<String> {
        newest_first(seeded.iter().filter(|l| keep(l)).cloned().collect())
            .into_iter()
            .map(|l| l.id)
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("grade=hot", expect(&|l| l.grade == "hot")),
        ("status=prospect", expect(&|l| l.status == "prospect")),
        ("form=demo", expect(&|l| l.form_id == "demo")),
        (
            "channel=paid_search",
            expect(&|l| l.channel == "paid_search"),
        ),
        // Times: 2 leads per millisecond from midnight, so 00:00:00.050 is lead 100.
        (
            "since=2026-01-01T00:00:00.050Z",
            expect(&|l| l.created_at.as_str() >= "2026-01-01T00:00:00.050Z"),
        ),
        (
            "until=2026-01-01T00:00:00.050Z",
            expect(&|l| l.created_at.as_str() < "2026-01-01T00:00:00.050Z"),
        ),
        ("since=2026-01-01&until=2026-01-02", expect(&|_| true)),
        ("since=2026-01-02", Vec::new()),
        // Text search: email, name or company, any case.
        (
            "q=PERSON17%40",
            expect(&|l| l.email.starts_with("person17@")),
        ),
        (
            "q=comma%2C%20inc",
            expect(&|l| {
                l.name.to_lowercase().contains("comma, inc")
                    || l.company
                        .as_deref()
                        .is_some_and(|c| c.to_lowercase().contains("comma, inc"))
            }),
        ),
        (
            // ØRSTED: beyond A-Z, which SQLite's own lower() is limited to.
            "q=%C3%98RSTED",
            expect(&|l| {
                l.name.contains("Ørsted")
                    || l.company.as_deref().is_some_and(|c| c.contains("Ørsted"))
            }),
        ),
        (
            "q=%E6%9D%B1%E4%BA%AC",
            expect(&|l| {
                l.name.contains("東京") || l.company.as_deref().is_some_and(|c| c.contains("東京"))
            }),
        ),
        (
            "grade=warm&status=lead&channel=direct",
            expect(&|l| l.grade == "warm" && l.status == "lead" && l.channel == "direct"),
        ),
    ];
    for (query, expected) in cases {
        let listed = all_pages(
            &worker,
            &key,
            &format!("site={site}&limit=200&{query}"),
            || {},
        );
        assert_eq!(ids(&listed), expected, "{query}");
    }
    // The site filter itself: another site's leads are not listed.
    let other = worker.new_site(&[ORIGIN]);
    let listed = all_pages(&worker, &key, &format!("site={other}"), || {});
    assert!(listed.is_empty());
}

#[test]
fn text_search_finds_a_name_in_any_case_whatever_its_letters() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let mut body = lead(&site);
    body["email"] = json!(format!("{}@example.com", unique("zoe")));
    body["name"] = json!("Zoë Öztürk");
    body["company"] = json!("Ørsted A/S");
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let (_, key) = worker.api_key(&["leads:read"]);
    // öztürk, ÖZTÜRK, Öztürk and "ørsted a/s": SQLite's lower() alone folds none of these.
    for q in [
        "%C3%B6zt%C3%BCrk",
        "%C3%96ZT%C3%9CRK",
        "%C3%96zt%C3%BCrk",
        "%C3%B8rsted%20a/s",
    ] {
        let listed = all_pages(&worker, &key, &format!("site={site}&q={q}"), || {});
        assert_eq!(ids(&listed), std::slice::from_ref(&id), "{q}");
    }
}

#[test]
fn the_lifecycle_allows_forward_moves_explains_refusals_and_stops_nurture() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let email = format!("{}@lifecycle.example", unique("ada"));
    let id = capture_as(&worker, &site, &email); // a warm lead: welcome now, then a sequence
    let (key_id, write) = worker.api_key(&["leads:read", "leads:write"]);
    let patch = |body: Value| {
        worker.call(
            "PATCH",
            &format!("/v1/leads/{id}"),
            Some(&write),
            Some(&body),
        )
    };

    // Let the capture's first steps run, so a sequence is scheduled.
    let now = now_ms();
    leadglue_tests::eventually("the sequence to be planned", 20, || {
        worker.run_follow_ups(&site, now + 1_000);
        (worker.follow_ups(&id).len() > 2).then_some(())
    });
    leadglue_tests::eventually("the welcome email", 20, || {
        (worker.mail_to(&email).len() == 1).then_some(())
    });
    let pending_before = worker
        .follow_ups(&id)
        .iter()
        .filter(|(_, _, state, _)| state == "scheduled")
        .count();
    assert!(pending_before > 0, "{:?}", worker.follow_ups(&id));

    let answer = patch(
        json!({ "status": "prospect", "assignee": "sam@northwind.example", "tags": ["demo-booked"] }),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let record = answer.json();
    assert_eq!(record["status"], "prospect");
    assert_eq!(record["assignee"], "sam@northwind.example");
    assert_eq!(record["tags"], json!(["demo-booked"]));
    let history = record["history"].as_array().expect("history");
    let status_change = history
        .iter()
        .find(|c| c["field"] == "status")
        .expect("a status change");
    assert_eq!(status_change["from"], "lead");
    assert_eq!(status_change["to"], "prospect");
    assert!(
        status_change["actor"]
            .as_str()
            .expect("an actor")
            .contains(&key_id)
    );
    assert_eq!(history.len(), 3, "{history:?}");

    // Nurture stopped: nothing pending, and running the whole schedule sends nothing more.
    let states = worker.follow_ups(&id);
    assert!(
        states
            .iter()
            .all(|(_, _, state, _)| state != "scheduled" && state != "queued"),
        "{states:?}"
    );
    worker.run_follow_ups(&site, now_ms() + 60 * 86_400_000);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(worker.mail_to(&email).len(), 1, "only the welcome");

    // Backwards is refused with the reason and the way forward.
    let problem = patch(json!({ "status": "lead" })).problem(409);
    let detail = problem.detail.expect("an explanation");
    assert!(
        detail.contains("prospect") && detail.contains("customer or disqualified"),
        "{detail}"
    );
    // Forward, step by step; the same status again is no change.
    for status in ["customer", "customer", "repeat_customer"] {
        let answer = patch(json!({ "status": status }));
        assert_eq!(answer.status, 200, "{status}: {}", answer.body);
    }
    patch(json!({ "status": "customer" })).problem(409);
    let record = worker
        .call("GET", &format!("/v1/leads/{id}"), Some(&write), None)
        .json();
    let moves: Vec<(String, String)> = record["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|c| c["field"] == "status")
        .map(|c| {
            (
                c["from"].as_str().unwrap_or_default().to_owned(),
                c["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("lead", "prospect"),
            ("prospect", "customer"),
            ("customer", "repeat_customer")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // Disqualified leads can be reopened; bad values name their field; unknown leads are 404.
    let other = capture(&worker, &site);
    for status in ["disqualified", "lead"] {
        let answer = worker.call(
            "PATCH",
            &format!("/v1/leads/{other}"),
            Some(&write),
            Some(&json!({ "status": status })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let problem = worker
        .call(
            "PATCH",
            &format!("/v1/leads/{other}"),
            Some(&write),
            Some(&json!({ "status": "won" })),
        )
        .problem(422);
    assert_eq!(problem.errors[0].field, "status");
    let problem = worker
        .call(
            "PATCH",
            &format!("/v1/leads/{other}"),
            Some(&write),
            Some(&json!({ "tags": ["x".repeat(51)] })),
        )
        .problem(422);
    assert_eq!(problem.errors[0].field, "tags[0]");
    worker
        .call(
            "PATCH",
            &format!("/v1/leads/{}", unique("nobody")),
            Some(&write),
            Some(&json!({ "status": "prospect" })),
        )
        .problem(404);
}

#[test]
fn sales_release_a_person_kept_as_spam_and_keep_a_lead_as_spam_by_hand() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let (_, write) = worker.api_key(&["leads:read", "leads:write"]);
    let listed = |query: &str| {
        let answer = worker.call(
            "GET",
            &format!("/v1/leads?site={site}{query}"),
            Some(&write),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        ids(answer.json()["leads"].as_array().unwrap())
    };
    let patch = |id: &str, body: Value| {
        let answer = worker.call(
            "PATCH",
            &format!("/v1/leads/{id}"),
            Some(&write),
            Some(&body),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };

    // A person whose browser filled in the hidden field: kept as spam, for review.
    let mut body = lead(&site);
    body["email"] = json!(format!("{}@example.com", unique("autofill")));
    body["website"] = json!("https://autofill.example");
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let person = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(listed("&spam=true"), std::slice::from_ref(&person));
    assert!(listed("").is_empty());

    let record = patch(&person, json!({ "spam": false }));
    assert_eq!(record["spam_reason"], Value::Null);
    let change = &record["history"][0];
    assert_eq!(
        (&change["field"], &change["from"], &change["to"]),
        (&json!("spam"), &json!("honeypot"), &Value::Null)
    );
    assert_eq!(listed(""), std::slice::from_ref(&person), "a lead again");
    assert!(listed("&spam=true").is_empty());

    // Junk that got through: kept as spam by hand, and nothing more goes out about it.
    let junk = capture_as(&worker, &site, &format!("{}@example.com", unique("junk")));
    let record = patch(&junk, json!({ "spam": true }));
    assert_eq!(record["spam_reason"], "manual");
    let states: Vec<String> = worker.follow_ups(&junk).into_iter().map(|s| s.2).collect();
    assert!(
        !states.iter().any(|s| s == "scheduled" || s == "queued"),
        "{states:?}"
    );
    assert!(listed("&spam=true").contains(&junk));
    assert!(!listed("").contains(&junk));
}

#[test]
fn a_lead_reads_in_full_with_notes_consent_and_follow_ups() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let id = capture(&worker, &site);
    let (_, key) = worker.api_key(&["leads:read", "leads:write"]);
    let note = worker.call(
        "POST",
        &format!("/v1/leads/{id}/notes"),
        Some(&key),
        Some(&json!({ "body": "  Called back; <b>wants</b> a quote for 40 seats.\nFollow up Friday. " })),
    );
    assert_eq!(note.status, 201, "{}", note.body);
    assert_eq!(
        note.json()["body"],
        "Called back; <b>wants</b> a quote for 40 seats.\nFollow up Friday."
    );
    worker
        .call(
            "POST",
            &format!("/v1/leads/{id}/notes"),
            Some(&key),
            Some(&json!({ "body": "  " })),
        )
        .problem(422);
    worker
        .call(
            "POST",
            &format!("/v1/leads/{}/notes", unique("nobody")),
            Some(&key),
            Some(&json!({ "body": "hi" })),
        )
        .problem(404);

    leadglue_tests::eventually("the welcome email", 20, || {
        worker
            .follow_ups(&id)
            .iter()
            .any(|(_, template, state, _)| template == "welcome" && state == "sent")
            .then_some(())
    });
    let record = worker
        .call("GET", &format!("/v1/leads/{id}"), Some(&key), None)
        .json();
    assert_eq!(record["email"], "ada@example.com");
    assert_eq!(record["company"], "Analytical Engines");
    assert_eq!(record["status"], "lead");
    assert_eq!(record["grade"], "warm");
    assert_eq!(record["answers"]["timeline"], "3_months");
    assert!(!record["reasons"].as_array().expect("reasons").is_empty());
    assert_eq!(
        record["attribution"]["landing_page"],
        "https://www.example.com/pricing"
    );
    assert_eq!(record["consent"]["text_version"], "v1");
    assert_eq!(
        record["consent"]["page_url"],
        "https://www.example.com/pricing"
    );
    assert_eq!(record["consent"]["given_at"], record["created_at"]);
    let follow_ups = record["follow_ups"].as_array().expect("follow-ups");
    assert!(
        follow_ups
            .iter()
            .any(|f| f["template"] == "welcome" && f["state"] == "sent"),
        "{follow_ups:?}"
    );
    assert_eq!(
        record["notes"][0]["author"]
            .as_str()
            .map(|a| a.contains("key")),
        Some(true)
    );

    // The person's data, as a download, holds the same.
    let data = worker.call("GET", &format!("/v1/leads/{id}/data"), Some(&key), None);
    assert_eq!(data.status, 200);
    assert!(
        data.header("content-disposition")
            .is_some_and(|d| d.contains("attachment"))
    );
    assert_eq!(data.json()["email"], "ada@example.com");
    assert_eq!(data.json()["notes"], record["notes"]);

    worker
        .call(
            "GET",
            &format!("/v1/leads/{}", unique("nobody")),
            Some(&key),
            None,
        )
        .problem(404);
}

/// What a cell of the export should hold: the value, neutralised if a spreadsheet would run it.
fn cell(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[test]
fn ten_thousand_leads_export_row_by_row_in_csv_and_ndjson() {
    let worker = Worker::for_seeding();
    let (site, seeded) = seeded_site(&worker, 10_000);
    let expected = newest_first(seeded);
    let (_, key) = worker.api_key(&["leads:read"]);

    let answer = worker.call(
        "GET",
        &format!("/v1/leads/export?format=csv&site={site}"),
        Some(&key),
        None,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        &answer.body[..answer.body.len().min(500)]
    );
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/csv"))
    );
    assert!(answer.body.ends_with("\r\n"));
    let mut reader = csv::ReaderBuilder::new().from_reader(answer.body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, leadglue_shared::sales::CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .map(|r| r.expect("a well-formed record"))
        .collect();
    assert_eq!(rows.len(), expected.len());
    for (row, lead) in rows.iter().zip(&expected) {
        let want = [
            cell(&lead.id),
            cell(&lead.created_at),
            cell(&lead.site_id),
            cell(&lead.form_id),
            cell(&lead.status),
            cell(&lead.grade),
            cell(&lead.score.to_string()),
            cell(&lead.email),
            cell(&lead.name),
            cell(lead.company.as_deref().unwrap_or_default()),
            cell(lead.phone.as_deref().unwrap_or_default()),
            cell(lead.message.as_deref().unwrap_or_default()),
            cell(&lead.channel),
            cell(lead.assignee.as_deref().unwrap_or_default()),
            cell(&lead.tags.join("; ")),
        ]
        .into_iter()
        // Seeded without answers or attribution (`answers_attribution_and_consent_export_…`
        // checks those); consent given when the lead was created, to the wording `v1`.
        .chain(std::iter::repeat_n(String::new(), 12))
        .chain([cell(&lead.created_at), "v1".to_owned()])
        .chain(std::iter::repeat_n(String::new(), 4))
        .collect::<Vec<_>>();
        let got: Vec<&str> = row.iter().collect();
        assert_eq!(got, want, "row of {}", lead.id);
    }

    let answer = worker.call(
        "GET",
        &format!("/v1/leads/export?format=ndjson&site={site}&grade=hot"),
        Some(&key),
        None,
    );
    assert_eq!(answer.status, 200);
    let hot: Vec<&SeedLead> = expected.iter().filter(|l| l.grade == "hot").collect();
    let lines: Vec<Value> = answer
        .body
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), hot.len());
    for (line, lead) in lines.iter().zip(hot) {
        assert_eq!(line["id"], lead.id.as_str());
        assert_eq!(line["name"], lead.name.as_str());
        assert_eq!(line["message"], json!(lead.message));
        assert_eq!(line["tags"], json!(lead.tags));
    }

    let problem = worker
        .call("GET", "/v1/leads/export?format=xlsx", Some(&key), None)
        .problem(422);
    assert_eq!(problem.errors[0].field, "format");
}

/// Sales import exports into their CRM: a lead's answers, where it came from and the consent
/// given travel with it, as its record gives them.
#[test]
fn answers_attribution_and_consent_export_as_the_record_gives_them() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let mut body = lead(&site);
    body["page_url"] = json!("https://www.example.com/pricing?plan=team");
    body["first_touch"] = json!({
        "landing_page": "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov&gclid=g-1&ref=p42",
        "referrer": "https://mail.example.net/",
    });
    body["answers"]["interest"] = json!(["pricing", "integrations"]);
    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.json()["id"].as_str().expect("an id").to_owned();
    let (_, key) = worker.api_key(&["leads:read"]);
    let record = worker
        .call("GET", &format!("/v1/leads/{id}"), Some(&key), None)
        .json();
    let export = |format: &str| {
        let answer = worker.call(
            "GET",
            &format!("/v1/leads/export?format={format}&site={site}"),
            Some(&key),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    };

    let line: Value = serde_json::from_str(export("ndjson").trim_end()).expect("one lead");
    for field in ["id", "email", "grade", "answers", "attribution", "consent"] {
        assert_eq!(line[field], record[field], "{field}");
    }
    assert_eq!(line["answers"]["timeline"], "3_months");
    assert_eq!(line["attribution"]["gclid"], "g-1");
    assert_eq!(
        line["consent"]["page_url"],
        "https://www.example.com/pricing?plan=team"
    );

    let csv = export("csv");
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let row = reader
        .records()
        .next()
        .expect("one lead")
        .expect("a well-formed record");
    let column = |name: &str| {
        let at = header.iter().position(|h| h == name);
        row.get(at.unwrap_or_else(|| panic!("no column {name}")))
            .expect("a cell")
            .to_owned()
    };
    let answers: Value = serde_json::from_str(&column("answers")).expect("the answers as JSON");
    assert_eq!(answers, record["answers"]);
    for (name, want) in [
        ("utm_source", "newsletter"),
        ("utm_medium", "email"),
        ("utm_campaign", "nov"),
        ("utm_term", ""),
        ("gclid", "g-1"),
        ("ref", "p42"),
        ("referrer", "https://mail.example.net/"),
        // A click id makes it paid search, whatever the medium says.
        ("channel", "paid_search"),
        ("consent_text_version", "v1"),
        (
            "consent_page_url",
            "https://www.example.com/pricing?plan=team",
        ),
        ("unsubscribed_at", ""),
    ] {
        assert_eq!(column(name), want, "{name}");
    }
    assert_eq!(
        column("landing_page"),
        record["attribution"]["landing_page"]
            .as_str()
            .expect("a landing page")
    );
    assert_eq!(
        column("consent_given_at"),
        record["consent"]["given_at"].as_str().expect("a time")
    );
    assert_eq!(
        column("consent_ip"),
        record["consent"]["ip"].as_str().unwrap_or_default()
    );
}

#[test]
fn erasure_leaves_no_personal_data_behind() {
    let worker = Worker::from_env();
    // Each form a lead of its own, so the person has two leads here.
    let site = worker.new_site_with(&[ORIGIN], &json!({ "duplicate_window_hours": 0 }));
    // A subscriber, so webhook payloads about the person exist too.
    let hook = worker.call(
        "POST",
        &format!("/v1/admin/sites/{site}/webhooks"),
        Some(worker.admin_token()),
        Some(&json!({ "url": Worker::sink_url("/webhook/erasure"), "events": ["lead.created"] })),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let marker = unique("zq").replace('-', "");
    let email = format!("{marker}@erase.example");
    let mut body = lead(&site);
    body["email"] = json!(email);
    body["name"] = json!(format!("Name{marker}"));
    body["company"] = json!(format!("Company{marker}"));
    body["phone"] = json!("+1 555 013 7777");
    body["message"] = json!(format!("Message{marker}"));
    body["page_url"] = json!(format!("https://www.example.com/p?{marker}"));
    let post = |body: &Value| {
        let answer = worker.post_lead(body, Some(ORIGIN));
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.json()["id"].as_str().expect("an id").to_owned()
    };
    let id = post(&body);
    // The same person weeks later, their address typed in capitals, and someone else.
    let shouted = format!("{}@erase.example", marker.to_uppercase());
    let mut again = body.clone();
    again["email"] = json!(shouted);
    again["message"] = json!(format!("Again{marker}"));
    again["idempotency_key"] = json!(unique("key-0123456789"));
    let second = post(&again);
    assert_ne!(second, id);
    let someone = format!("{}@else.example", unique("someone").replace('-', "."));
    let mut other = lead(&site);
    other["email"] = json!(someone);
    let other = post(&other);
    let (_, key) = worker.api_key(&["leads:read", "leads:write"]);
    for (lead, note) in [(&id, "Note"), (&second, "Second note")] {
        let added = worker.call(
            "POST",
            &format!("/v1/leads/{lead}/notes"),
            Some(&key),
            Some(&json!({ "body": format!("{note}{marker}") })),
        );
        assert_eq!(added.status, 201);
    }
    let tagged = worker.call(
        "PATCH",
        &format!("/v1/leads/{id}"),
        Some(&key),
        Some(&json!({ "tags": [format!("tag{marker}")], "assignee": format!("rep{marker}") })),
    );
    assert_eq!(tagged.status, 200);
    leadglue_tests::eventually("the three welcome emails", 20, || {
        let person = worker.mail_to(&email).len() + worker.mail_to(&shouted).len();
        (person >= 2 && !worker.mail_to(&someone).is_empty()).then_some(())
    });

    // Every text cell of every table that mentions the person: (table.column, needle).
    let upper = marker.to_uppercase();
    let traces = || {
        let db = worker.d1();
        let tables: Vec<String> = db
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations'",
            )
            .expect("tables")
            .query_map([], |r| r.get(0))
            .expect("tables")
            .collect::<Result<_, _>>()
            .expect("tables");
        let mut found = std::collections::BTreeSet::new();
        for table in &tables {
            let columns: Vec<String> = db
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .expect("columns")
                .query_map([], |r| r.get(0))
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("columns");
            for column in columns {
                for needle in [marker.as_str(), upper.as_str(), "0137777"] {
                    let hits: i64 = db
                        .query_row(
                            &format!(
                                "SELECT count(*) FROM \"{table}\"
                                 WHERE instr(CAST(\"{column}\" AS TEXT), ?1) > 0"
                            ),
                            [needle],
                            |r| r.get(0),
                        )
                        .expect("a count");
                    if hits > 0 {
                        found.insert(format!("{table}.{column}"));
                    }
                }
            }
        }
        found
    };
    let before = traces();
    for place in [
        "leads.email",
        "leads.phone",
        "leads.page_url",
        "lead_notes.body",
        "lead_changes.to_value",
        "webhook_deliveries.payload",
    ] {
        assert!(before.contains(place), "the scan finds {place}: {before:?}");
    }

    // What the person may ask to see: every lead of theirs here, and no one else's.
    let data = worker
        .call("GET", &format!("/v1/leads/{id}/data"), Some(&key), None)
        .json();
    assert_eq!(data["id"], id.as_str());
    let others = data["other_leads"].as_array().expect("other leads");
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others[0]["id"], second.as_str());
    assert_eq!(others[0]["email"], shouted.as_str());
    assert_eq!(
        others[0]["notes"][0]["body"],
        format!("Second note{marker}")
    );

    let erased = worker.call("DELETE", &format!("/v1/leads/{id}"), Some(&key), None);
    assert_eq!(erased.status, 204, "{}", erased.body);
    let after = traces();
    assert!(after.is_empty(), "personal data left in {after:?}");

    // Anonymous tombstones remain, so counts stay right; they are no longer listed.
    assert_eq!(worker.lead_count(&site), 3);
    let record = worker
        .call("GET", &format!("/v1/leads/{id}"), Some(&key), None)
        .json();
    assert!(record["erased_at"].is_string());
    assert_eq!(record["email"], "");
    assert_eq!(record["grade"], "warm");
    assert!(record["notes"].as_array().expect("notes").is_empty());
    let listed = all_pages(&worker, &key, &format!("site={site}"), || {});
    let listed: Vec<&str> = listed.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(listed, [other.as_str()], "only the other person is listed");
    // Nothing more is sent to the person, and erasing again is harmless.
    for lead in [&id, &second] {
        assert!(
            worker
                .follow_ups(lead)
                .iter()
                .all(|(_, _, state, _)| state == "sent" || state == "cancelled"),
            "{lead}: {:?}",
            worker.follow_ups(lead)
        );
    }
    assert!(
        worker
            .follow_ups(&other)
            .iter()
            .any(|(_, _, state, _)| state == "scheduled"),
        "the other person's sequence goes on"
    );
    assert_eq!(
        worker
            .call("DELETE", &format!("/v1/leads/{id}"), Some(&key), None)
            .status,
        204
    );
    worker
        .call(
            "PATCH",
            &format!("/v1/leads/{id}"),
            Some(&key),
            Some(&json!({ "status": "prospect" })),
        )
        .problem(409);
}
