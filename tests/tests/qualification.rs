//! Self-qualification, scoring and attribution, through the real Worker and D1.

use leadglue_tests::{Worker, lead, unique};
use serde_json::{Value, json};

fn answers(timeline: &str, role: &str, size: &str, follow_up: &str) -> Value {
    json!({ "timeline": timeline, "role": role, "company_size": size, "follow_up": follow_up })
}

fn created(worker: &Worker, body: &Value) -> Value {
    let answer = worker.post_lead(body, None);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()
}

#[test]
fn a_ready_decision_maker_is_hot_and_invited_to_call() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let mut body = lead(&site);
    body["answers"] = answers("now", "decision_maker", "51_200", "book_demo");
    body["answers"]["interest"] = json!(["pricing", "integrations"]);

    let created = created(&worker, &body);
    assert_eq!(created["grade"], "hot");
    assert_eq!(created["next_step"], "call_now");
    let id = created["id"].as_str().unwrap();
    assert_eq!(worker.lead_column(id, "score").as_deref(), Some("95"));
    assert_eq!(worker.lead_column(id, "grade").as_deref(), Some("hot"));
    assert_eq!(
        worker.lead_column(id, "form_id").as_deref(),
        Some("default")
    );
    assert_eq!(worker.lead_column(id, "form_version").as_deref(), Some("0"));
    let stored: Value = serde_json::from_str(&worker.lead_column(id, "answers").unwrap()).unwrap();
    assert_eq!(stored["interest"], json!(["pricing", "integrations"]));
    let reasons: Value =
        serde_json::from_str(&worker.lead_column(id, "score_reasons").unwrap()).unwrap();
    assert!(
        reasons
            .as_array()
            .unwrap()
            .contains(&json!({ "question": "timeline", "answer": "now", "points": 40 }))
    );
}

#[test]
fn grades_and_next_steps_follow_the_answers() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let cases = [
        (
            answers("3_months", "influencer", "11_50", "send_information"),
            "warm",
            "expect_email",
        ),
        (
            answers("browsing", "researcher", "1_10", "send_information"),
            "cold",
            "browse",
        ),
        (
            answers("browsing", "researcher", "1_10", "call_me"),
            "cold",
            "call_now",
        ),
    ];
    for (given, grade, step) in cases {
        let mut body = lead(&site);
        body["answers"] = given;
        body["phone"] = json!("+1 555 010 0199");
        let created = created(&worker, &body);
        assert_eq!(
            (created["grade"].as_str(), created["next_step"].as_str()),
            (Some(grade), Some(step))
        );
    }
}

#[test]
fn a_score_sent_by_the_client_is_ignored() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let mut body = lead(&site);
    body["answers"] = answers("browsing", "researcher", "1_10", "send_information");
    body["score"] = json!(1000);
    body["grade"] = json!("hot");
    let created = created(&worker, &body);
    assert_eq!(created["grade"], "cold");
    let id = created["id"].as_str().unwrap();
    assert_eq!(worker.lead_column(id, "score").as_deref(), Some("0"));
}

#[test]
fn unknown_questions_and_invalid_answers_are_refused() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let cases = [
        ("colour", json!("red"), "answers.colour"),
        ("timeline", json!("yesterday"), "answers.timeline"),
        ("interest", json!("pricing"), "answers.interest"),
        ("role", json!(["decision_maker"]), "answers.role"),
    ];
    for (question, value, field) in cases {
        let mut body = lead(&site);
        body["answers"][question] = value;
        let problem = worker.post_lead(&body, None).problem(422);
        let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, [field], "{question}");
    }
    let mut body = lead(&site);
    body["answers"].as_object_mut().unwrap().remove("timeline");
    let problem = worker.post_lead(&body, None).problem(422);
    assert_eq!(problem.errors[0].field, "answers.timeline");
    assert_eq!(problem.errors[0].message, "Please answer this question.");
    assert_eq!(worker.lead_count(&site), 0);
}

#[test]
fn asking_for_a_call_needs_a_number() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let mut body = lead(&site);
    body["answers"] = answers("now", "decision_maker", "51_200", "call_me");
    let problem = worker.post_lead(&body, None).problem(422);
    assert_eq!(problem.errors[0].field, "phone");
    body["phone"] = json!("+44 20 7946 0958");
    assert_eq!(created(&worker, &body)["next_step"], "call_now");
}

fn custom_form(hot_points: i32) -> Value {
    json!({
        "title": "Get a quote",
        "questions": [
            { "id": "seats", "label": "How many seats?", "type": "number", "min": 1, "max": 100000,
              "required": true, "bands": [ { "from": 50, "points": 50 }, { "to": 49, "points": 5 } ] },
            { "id": "budget", "label": "Budget approved?", "type": "single_choice", "required": true,
              "options": [ { "value": "yes", "label": "Yes", "points": hot_points },
                           { "value": "no", "label": "No" } ] },
            { "id": "approver", "label": "Who approves it?", "type": "short_text",
              "show_if": { "question": "budget", "equals": "yes" }, "points": 5 }
        ],
        "thresholds": { "hot": 80, "warm": 40 }
    })
}

#[test]
fn a_marketer_defines_a_form_and_it_is_served_versioned_and_cacheable() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let v1 = worker.put_form(&site, "quote", &custom_form(30));
    assert_eq!(v1.status, 200, "{}", v1.body);
    assert_eq!(v1.json()["version"], 1);

    let path = format!("/v1/sites/{site}/forms/quote");
    let served = worker.get(&path, &[]);
    assert_eq!(served.status, 200, "{}", served.body);
    let embed = served.json();
    assert_eq!(embed["form"]["version"], 1);
    assert_eq!(embed["form"]["title"], "Get a quote");
    assert_eq!(embed["site"]["id"], site.as_str());
    assert_eq!(served.header("cache-control"), Some("public, max-age=60"));
    let etag = served.header("etag").expect("an ETag").to_owned();
    let again = worker.get(&path, &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // A new version changes the ETag and becomes what is served.
    assert_eq!(
        worker.put_form(&site, "quote", &custom_form(40)).json()["version"],
        2
    );
    let newer = worker.get(&path, &[("if-none-match", &etag)]);
    assert_eq!(newer.status, 200);
    assert_eq!(newer.json()["form"]["version"], 2);
    assert_ne!(newer.header("etag"), Some(etag.as_str()));
}

#[test]
fn leads_score_against_the_version_their_visitor_saw() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    worker.put_form(&site, "quote", &custom_form(30));
    worker.put_form(&site, "quote", &custom_form(40));
    let submit = |version: Option<u32>| {
        let mut body = lead(&site);
        body["form_id"] = json!("quote");
        if let Some(v) = version {
            body["form_version"] = json!(v);
        }
        body["answers"] = json!({ "seats": 60, "budget": "yes", "approver": "Our CFO" });
        worker.post_lead(&body, None)
    };
    // Version 1: 50 + 30 + 5 = 85, hot. Version 2 (and latest): 50 + 40 + 5 = 95.
    let old = submit(Some(1)).json();
    assert_eq!(old["grade"], "hot");
    let old_id = old["id"].as_str().unwrap();
    assert_eq!(worker.lead_column(old_id, "score").as_deref(), Some("85"));
    assert_eq!(
        worker.lead_column(old_id, "form_version").as_deref(),
        Some("1")
    );
    let latest = submit(None).json();
    assert_eq!(
        worker
            .lead_column(latest["id"].as_str().unwrap(), "score")
            .as_deref(),
        Some("95")
    );
    let gone = submit(Some(99)).problem(422);
    assert_eq!(gone.errors[0].field, "form_version");
    // The built-in default form's version 0 stays valid for pages rendered before.
    let mut body = lead(&site);
    body["form_version"] = json!(0);
    assert_eq!(worker.post_lead(&body, None).status, 201);
}

#[test]
fn hidden_questions_do_not_count() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    worker.put_form(&site, "quote", &custom_form(30));
    let mut body = lead(&site);
    body["form_id"] = json!("quote");
    body["answers"] = json!({ "seats": 10, "budget": "no", "approver": "Nobody" });
    let created = created(&worker, &body);
    let id = created["id"].as_str().unwrap();
    assert_eq!(worker.lead_column(id, "score").as_deref(), Some("5"));
    let stored: Value = serde_json::from_str(&worker.lead_column(id, "answers").unwrap()).unwrap();
    assert_eq!(stored, json!({ "seats": 10.0, "budget": "no" }));
}

#[test]
fn admin_form_endpoints_check_token_definition_and_site() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let path = format!("/v1/admin/sites/{site}/forms/quote");
    let body = serde_json::to_vec(&custom_form(30)).unwrap();
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        worker
            .send("PUT", &path, &headers, Some(&body))
            .problem(401);
    }
    let mut bad = custom_form(30);
    bad["thresholds"] = json!({ "hot": 10, "warm": 20 });
    bad["questions"][2]["show_if"] = json!({ "question": "budget", "equals": "maybe" });
    bad["questions"][0]["colour"] = json!("blue");
    let problem = worker.put_form(&site, "quote", &bad).problem(422);
    assert_eq!(
        problem.errors[0].field, "questions[0].colour",
        "{problem:?}"
    );
    bad["questions"][0]
        .as_object_mut()
        .unwrap()
        .remove("colour");
    let problem = worker.put_form(&site, "quote", &bad).problem(422);
    let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["thresholds.warm", "questions[2].show_if"]);
    worker
        .put_form(&unique("nosite"), "quote", &custom_form(30))
        .problem(404);
    // Nothing stored: the public endpoint still serves no such form.
    worker
        .get(&format!("/v1/sites/{site}/forms/quote"), &[])
        .problem(404);
}

#[test]
fn the_default_form_is_served_with_no_configuration() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let embed = worker
        .get(&format!("/v1/sites/{site}/forms/default"), &[])
        .json();
    assert_eq!(embed["form"]["version"], 0);
    let ids: Vec<_> = embed["form"]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["timeline", "role", "company_size", "interest", "follow_up"]
    );
}

#[test]
fn first_touch_attribution_is_stored_with_its_channel() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let mut body = lead(&site);
    body["first_touch"] = json!({
        "landing_page": "https://www.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov&ref=p42",
        "referrer": "https://mail.example.net/",
    });
    let id = created(&worker, &body)["id"].as_str().unwrap().to_owned();
    assert_eq!(worker.lead_column(&id, "channel").as_deref(), Some("email"));
    let attribution: Value =
        serde_json::from_str(&worker.lead_column(&id, "attribution").unwrap()).unwrap();
    assert_eq!(attribution["utm_source"], "newsletter");
    assert_eq!(attribution["utm_campaign"], "nov");
    assert_eq!(attribution["ref"], "p42");
    assert_eq!(attribution["referrer"], "https://mail.example.net/");

    // No first touch: the submission page is the landing page, and the visit is direct.
    let plain = created(&worker, &lead(&site))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        worker.lead_column(&plain, "channel").as_deref(),
        Some("direct")
    );
    let attribution: Value =
        serde_json::from_str(&worker.lead_column(&plain, "attribution").unwrap()).unwrap();
    assert_eq!(
        attribution["landing_page"],
        "https://www.example.com/pricing"
    );
}
