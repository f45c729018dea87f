//! The OpenAPI document is true: a tour of every documented operation checks each real answer
//! (its status, media type and body) against what the document says, and that nothing the
//! document lists goes unvisited.

use std::collections::BTreeSet;
use std::sync::Mutex;

use leadglue_tests::{Answer, ORIGIN, Worker, eventually, lead, unique};
use serde_json::{Value, json};

struct Spec {
    doc: Value,
    visited: Mutex<BTreeSet<(String, String)>>,
}

impl Spec {
    fn load(worker: &Worker) -> Self {
        let served = worker.get("/v1/openapi.json", &[]);
        assert_eq!(served.status, 200);
        let doc = served.json();
        let file: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
            .expect("docs/openapi.json is JSON");
        assert_eq!(doc, file, "the Worker serves docs/openapi.json");
        assert_eq!(doc["openapi"], "3.1.0");
        Self {
            doc,
            visited: Mutex::new(BTreeSet::new()),
        }
    }

    /// Asserts that `answer` is one the document describes for `method` on `path` (a path
    /// template as the document spells it), body included.
    fn check(&self, method: &str, path: &str, answer: &Answer) {
        let what = format!("{method} {path} → {}", answer.status);
        let operation = &self.doc["paths"][path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{what}: the document has no such operation"
        );
        let response = &operation["responses"][answer.status.to_string()];
        assert!(
            response.is_object(),
            "{what}: status not documented; body: {}",
            answer.body
        );
        self.visited
            .lock()
            .expect("a lock")
            .insert((method.to_lowercase(), path.to_owned()));
        let Some(content) = response.get("content") else {
            assert!(
                answer.body.is_empty(),
                "{what}: undocumented body {}",
                answer.body
            );
            return;
        };
        let media = answer
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let schema = content
            .get(&media)
            .map(|c| &c["schema"])
            .unwrap_or_else(|| panic!("{what}: media type {media} not documented"));
        // Newline-delimited JSON: each line against the item schema.
        let (schema, documents): (&Value, Vec<&str>) = match media.as_str() {
            "application/x-ndjson" => (&schema["x-itemSchema"], answer.body.lines().collect()),
            m if m.ends_with("json") => (schema, vec![answer.body.as_str()]),
            _ => return,
        };
        self.validate(schema, &documents, &what);
    }

    /// Validates JSON texts against a schema of the document (its references resolved).
    fn validate(&self, schema: &Value, documents: &[&str], what: &str) {
        // The schema, with the document's components beside it so its references resolve.
        let wrapper = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::validator_for(&wrapper)
            .unwrap_or_else(|e| panic!("{what}: the documented schema does not compile: {e}"));
        for text in documents {
            let text = *text;
            let body: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{what}: {errors:#?}\nbody: {text}");
        }
    }

    /// Asserts that a received webhook's body is what the document's `webhooks` section says.
    fn check_webhook(&self, event: &str, body: &str) {
        let schema = &self.doc["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert!(schema.is_object(), "webhook {event} is not documented");
        self.validate(schema, &[body], &format!("webhook {event}"));
    }

    fn unvisited(&self) -> Vec<String> {
        let visited = self.visited.lock().expect("a lock");
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if method != "parameters" && !visited.contains(&(method.clone(), path.clone())) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        missing
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let worker = Worker::from_env();
    let spec = Spec::load(&worker);
    spec.check(
        "GET",
        "/v1/openapi.json",
        &worker.get("/v1/openapi.json", &[]),
    );
    spec.check("GET", "/healthz", &worker.get("/healthz", &[]));
    let admin = worker.admin_token().to_owned();

    // Sites and forms.
    let site = worker.new_site_with(&[ORIGIN], &json!({ "sales_email": "sales@example.com" }));
    let definition = leadglue_tests::site_definition(&[ORIGIN]);
    spec.check(
        "PUT",
        "/v1/admin/sites/{site}",
        &worker.put_site(&site, &definition, Some(&admin)),
    );
    spec.check(
        "PUT",
        "/v1/admin/sites/{site}",
        &worker.put_site(&site, &definition, None),
    );
    spec.check(
        "PUT",
        "/v1/admin/sites/{site}",
        &worker.put_site(&site, &json!({ "name": "" }), Some(&admin)),
    );
    let site_path = format!("/v1/admin/sites/{site}");
    for (path, token) in [
        (site_path.as_str(), Some(admin.as_str())),
        (site_path.as_str(), None),
        ("/v1/admin/sites/no-such-site", Some(admin.as_str())),
    ] {
        spec.check(
            "GET",
            "/v1/admin/sites/{site}",
            &worker.call("GET", path, token, None),
        );
    }
    spec.check(
        "PUT",
        "/v1/admin/sites/{site}/forms/{form}",
        &worker.put_form(
            &site,
            "tour",
            &json!({ "questions": [{ "id": "x", "kind": "?" }] }),
        ),
    );
    let form = json!({
        "title": "Tour",
        "questions": [{ "id": "timeline", "label": "When?", "type": "single_choice",
                        "options": [{ "value": "now", "label": "Now", "points": 50 }] }],
        "thresholds": { "warm": 10, "hot": 40 },
    });
    spec.check(
        "PUT",
        "/v1/admin/sites/{site}/forms/{form}",
        &worker.put_form(&site, "tour", &form),
    );
    let origin = [("origin", ORIGIN)];
    spec.check(
        "GET",
        "/v1/sites/{site}",
        &worker.get(&format!("/v1/sites/{site}"), &origin),
    );
    spec.check(
        "GET",
        "/v1/sites/{site}",
        &worker.get(&format!("/v1/sites/{}", unique("nosite")), &origin),
    );
    spec.check(
        "GET",
        "/v1/sites/{site}/render-token",
        &worker.get(&format!("/v1/sites/{site}/render-token"), &origin),
    );
    spec.check(
        "GET",
        "/v1/sites/{site}/render-token",
        &worker.get(
            &format!("/v1/sites/{site}/render-token"),
            &[("origin", "https://elsewhere.example")],
        ),
    );
    let form_path = format!("/v1/sites/{site}/forms/tour");
    let got = worker.get(&form_path, &origin);
    spec.check("GET", "/v1/sites/{site}/forms/{form}", &got);
    let etag = got.header("etag").expect("an etag").to_owned();
    spec.check(
        "GET",
        "/v1/sites/{site}/forms/{form}",
        &worker.get(&form_path, &[("origin", ORIGIN), ("if-none-match", &etag)]),
    );
    let preflight = [("origin", ORIGIN), ("access-control-request-method", "GET")];
    spec.check(
        "OPTIONS",
        "/v1/sites/{site}/forms/{form}",
        &worker.send("OPTIONS", &form_path, &preflight, None),
    );
    let html = worker.get(&format!("{form_path}/html"), &origin);
    spec.check("GET", "/v1/sites/{site}/forms/{form}/html", &html);
    assert!(html.body.contains("data-render-token=\""), "{}", html.body);
    spec.check(
        "GET",
        "/v1/sites/{site}/forms/{form}/html",
        &worker.get(
            &format!("{form_path}/html"),
            &[("origin", "https://elsewhere.example")],
        ),
    );
    spec.check(
        "GET",
        "/v1/sites/{site}/forms/{form}/html",
        &worker.get(&format!("/v1/sites/{site}/forms/nosuchform/html"), &origin),
    );
    spec.check(
        "OPTIONS",
        "/v1/sites/{site}/forms/{form}/html",
        &worker.send("OPTIONS", &format!("{form_path}/html"), &preflight, None),
    );
    spec.check(
        "GET",
        "/v1/admin/sites/{site}/templates/{template}",
        &worker.call(
            "GET",
            &format!("/v1/admin/sites/{site}/templates/welcome"),
            Some(&admin),
            None,
        ),
    );

    // Capture, and its failures.
    let tourist = format!("{}@tour.example", unique("ada"));
    let mut first = lead(&site);
    first["email"] = json!(tourist);
    let created = worker.post_lead(&first, Some(ORIGIN));
    spec.check("POST", "/v1/leads", &created);
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    let mut bad = lead(&site);
    bad["email"] = json!("not an address");
    spec.check("POST", "/v1/leads", &worker.post_lead(&bad, Some(ORIGIN)));
    spec.check(
        "POST",
        "/v1/leads",
        &worker.post_lead(&lead(&site), Some("https://evil.example")),
    );
    spec.check(
        "POST",
        "/v1/leads",
        &worker.post_lead(&lead(&unique("nosite")), None),
    );
    let json_header = [("content-type", "application/json")];
    spec.check(
        "POST",
        "/v1/leads",
        &worker.send("POST", "/v1/leads", &json_header, Some(b"{")),
    );
    spec.check(
        "POST",
        "/v1/leads",
        &worker.send("POST", "/v1/leads", &[], Some(b"x=1")),
    );
    spec.check(
        "OPTIONS",
        "/v1/leads",
        &worker.send(
            "OPTIONS",
            "/v1/leads",
            &[
                ("origin", ORIGIN),
                ("access-control-request-method", "POST"),
            ],
            None,
        ),
    );
    spec.check(
        "OPTIONS",
        "/v1/leads",
        &worker.send(
            "OPTIONS",
            "/v1/leads",
            &[("origin", "https://evil.example")],
            None,
        ),
    );
    let run = format!("/v1/admin/follow-ups/run?site={site}");
    spec.check(
        "POST",
        "/v1/admin/follow-ups/run",
        &worker.call("POST", &run, Some(&admin), None),
    );
    spec.check(
        "POST",
        "/v1/admin/follow-ups/run",
        &worker.call("POST", &run, None, None),
    );

    // Unsubscribe and confirm links, real and forged.
    let welcome = eventually("the welcome email", 20, || {
        worker.mail_to(&tourist).into_iter().next()
    });
    let list = welcome["email"]["headers"]["List-Unsubscribe"]
        .as_str()
        .expect("a header");
    let link = &list[1..list.find('>').expect("a link")];
    let unsubscribe = link
        .strip_prefix(&worker.base)
        .expect("our link")
        .to_owned();
    spec.check(
        "GET",
        "/v1/unsubscribe/{token}",
        &worker.get(&unsubscribe, &[]),
    );
    spec.check(
        "GET",
        "/v1/unsubscribe/{token}",
        &worker.get("/v1/unsubscribe/forged", &[]),
    );
    let one_click = [("content-type", "application/x-www-form-urlencoded")];
    let body = b"List-Unsubscribe=One-Click";
    spec.check(
        "POST",
        "/v1/unsubscribe/{token}",
        &worker.send("POST", &unsubscribe, &one_click, Some(body)),
    );
    spec.check(
        "POST",
        "/v1/unsubscribe/{token}",
        &worker.send("POST", "/v1/unsubscribe/forged", &one_click, Some(body)),
    );
    let opt_in_site = worker.new_site_with(&[ORIGIN], &json!({ "double_opt_in": true }));
    let email = format!("{}@tour.example", unique("optin"));
    let mut opt_in = lead(&opt_in_site);
    opt_in["email"] = json!(email);
    assert_eq!(worker.post_lead(&opt_in, Some(ORIGIN)).status, 201);
    let confirmation = eventually("the confirmation email", 20, || {
        worker.mail_to(&email).into_iter().next()
    });
    let text = confirmation["email"]["text"].as_str().expect("a text part");
    let start = text
        .find(&format!("{}/v1/confirm/", worker.base))
        .expect("a confirm link");
    let confirm: String = text[start + worker.base.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    spec.check("GET", "/v1/confirm/{token}", &worker.get(&confirm, &[]));
    spec.check(
        "GET",
        "/v1/confirm/{token}",
        &worker.get("/v1/confirm/forged", &[]),
    );
    spec.check(
        "POST",
        "/v1/confirm/{token}",
        &worker.send("POST", &confirm, &[], None),
    );
    spec.check(
        "POST",
        "/v1/confirm/{token}",
        &worker.send("POST", "/v1/confirm/forged", &[], None),
    );

    // API keys.
    let new_key = json!({ "name": "tour", "scopes": ["leads:read", "leads:write"] });
    let created_key = worker.call("POST", "/v1/admin/api-keys", Some(&admin), Some(&new_key));
    spec.check("POST", "/v1/admin/api-keys", &created_key);
    let key = created_key.json()["key"]
        .as_str()
        .expect("a key")
        .to_owned();
    let key_id = created_key.json()["id"].as_str().expect("an id").to_owned();
    spec.check(
        "POST",
        "/v1/admin/api-keys",
        &worker.call(
            "POST",
            "/v1/admin/api-keys",
            Some(&admin),
            Some(&json!({ "name": "x" })),
        ),
    );
    spec.check(
        "POST",
        "/v1/admin/api-keys",
        &worker.call("POST", "/v1/admin/api-keys", Some(&key), Some(&new_key)),
    );
    spec.check(
        "GET",
        "/v1/admin/api-keys",
        &worker.call("GET", "/v1/admin/api-keys", Some(&admin), None),
    );
    spec.check(
        "GET",
        "/v1/admin/api-keys",
        &worker.call("GET", "/v1/admin/api-keys", None, None),
    );

    // The Sales API.
    let with_key = |method: &str, path: &str, body: Option<&Value>| {
        worker.call(method, path, Some(&key), body)
    };
    spec.check(
        "GET",
        "/v1/leads",
        &with_key("GET", &format!("/v1/leads?site={site}&limit=1"), None),
    );
    spec.check(
        "GET",
        "/v1/leads",
        &with_key("GET", "/v1/leads?grade=tepid", None),
    );
    spec.check(
        "GET",
        "/v1/leads",
        &worker.call("GET", "/v1/leads", None, None),
    );
    spec.check(
        "GET",
        "/v1/leads/export",
        &with_key(
            "GET",
            &format!("/v1/leads/export?format=csv&site={site}"),
            None,
        ),
    );
    spec.check(
        "GET",
        "/v1/leads/export",
        &with_key(
            "GET",
            &format!("/v1/leads/export?format=ndjson&site={site}"),
            None,
        ),
    );
    spec.check(
        "GET",
        "/v1/leads/export",
        &with_key("GET", "/v1/leads/export", None),
    );
    let lead_path = format!("/v1/leads/{id}");
    spec.check("GET", "/v1/leads/{id}", &with_key("GET", &lead_path, None));
    spec.check(
        "GET",
        "/v1/leads/{id}",
        &with_key("GET", "/v1/leads/nobody", None),
    );
    spec.check(
        "PATCH",
        "/v1/leads/{id}",
        &with_key(
            "PATCH",
            &lead_path,
            Some(&json!({ "status": "prospect", "tags": ["tour"] })),
        ),
    );
    spec.check(
        "PATCH",
        "/v1/leads/{id}",
        &with_key("PATCH", &lead_path, Some(&json!({ "status": "lead" }))),
    );
    spec.check(
        "PATCH",
        "/v1/leads/{id}",
        &with_key("PATCH", &lead_path, Some(&json!({ "tags": [""] }))),
    );
    spec.check(
        "PATCH",
        "/v1/leads/{id}",
        &worker.send(
            "PATCH",
            &lead_path,
            &[
                ("authorization", &bearer(&key)),
                ("content-type", "application/json"),
            ],
            Some(b"{"),
        ),
    );
    spec.check(
        "POST",
        "/v1/leads/{id}/notes",
        &with_key(
            "POST",
            &format!("{lead_path}/notes"),
            Some(&json!({ "body": "Tour note" })),
        ),
    );
    spec.check(
        "POST",
        "/v1/leads/{id}/notes",
        &with_key(
            "POST",
            &format!("{lead_path}/notes"),
            Some(&json!({ "body": "" })),
        ),
    );
    spec.check(
        "GET",
        "/v1/leads/{id}/data",
        &with_key("GET", &format!("{lead_path}/data"), None),
    );
    spec.check("GET", "/v1/leads/{id}", &with_key("GET", &lead_path, None));
    spec.check(
        "DELETE",
        "/v1/leads/{id}",
        &with_key("DELETE", &lead_path, None),
    );
    spec.check("GET", "/v1/leads/{id}", &with_key("GET", &lead_path, None));
    spec.check(
        "DELETE",
        "/v1/leads/{id}",
        &with_key("DELETE", "/v1/leads/nobody", None),
    );
    let read_only = worker.api_key(&["leads:read"]).1;
    spec.check(
        "DELETE",
        "/v1/leads/{id}",
        &worker.call("DELETE", &lead_path, Some(&read_only), None),
    );

    spec.check(
        "DELETE",
        "/v1/admin/api-keys/{id}",
        &worker.call(
            "DELETE",
            &format!("/v1/admin/api-keys/{key_id}"),
            Some(&admin),
            None,
        ),
    );
    spec.check(
        "DELETE",
        "/v1/admin/api-keys/{id}",
        &worker.call(
            "DELETE",
            "/v1/admin/api-keys/0000000000000000",
            Some(&admin),
            None,
        ),
    );
    spec.check("GET", "/v1/leads", &with_key("GET", "/v1/leads", None));

    // Webhook subscriptions, and what a subscriber receives.
    let hooks = format!("/v1/admin/sites/{site}/webhooks");
    let hook_path = format!("/webhook/{}", unique("tour"));
    let subscription = json!({ "url": Worker::sink_url(&hook_path), "events": ["lead.created", "lead.status_changed"] });
    let created_hook = worker.call("POST", &hooks, Some(&admin), Some(&subscription));
    spec.check("POST", "/v1/admin/sites/{site}/webhooks", &created_hook);
    let hook_id = created_hook.json()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    spec.check(
        "POST",
        "/v1/admin/sites/{site}/webhooks",
        &worker.call(
            "POST",
            &hooks,
            Some(&admin),
            Some(&json!({ "url": "x", "events": [] })),
        ),
    );
    spec.check(
        "POST",
        "/v1/admin/sites/{site}/webhooks",
        &worker.call(
            "POST",
            &format!("/v1/admin/sites/{}/webhooks", unique("nosite")),
            Some(&admin),
            Some(&subscription),
        ),
    );
    spec.check(
        "GET",
        "/v1/admin/sites/{site}/webhooks",
        &worker.call("GET", &hooks, Some(&admin), None),
    );
    spec.check(
        "POST",
        "/v1/admin/sites/{site}/webhooks/{id}/test",
        &worker.call(
            "POST",
            &format!("{hooks}/{hook_id}/test"),
            Some(&admin),
            None,
        ),
    );
    spec.check(
        "POST",
        "/v1/admin/sites/{site}/webhooks/{id}/test",
        &worker.call("POST", &format!("{hooks}/wh_nope/test"), Some(&admin), None),
    );
    let mut evented = lead(&site);
    evented["email"] = json!(format!("{}@tour.example", unique("hook")));
    let evented_id = worker.post_lead(&evented, Some(ORIGIN)).json()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let moved = worker.call(
        "PATCH",
        &format!("/v1/leads/{evented_id}"),
        Some(&admin),
        Some(&json!({ "status": "disqualified" })),
    );
    assert_eq!(moved.status, 200);
    for event in ["lead.created", "lead.status_changed"] {
        let received = eventually(event, 20, || {
            worker.webhooks_at(&hook_path).into_iter().find(|r| {
                r["body"]
                    .as_str()
                    .is_some_and(|b| b.contains(&format!("\"type\":\"{event}\"")))
            })
        });
        spec.check_webhook(event, received["body"].as_str().expect("a body"));
    }
    spec.check(
        "GET",
        "/v1/admin/sites/{site}/webhooks/{id}/deliveries",
        &worker.call(
            "GET",
            &format!("{hooks}/{hook_id}/deliveries"),
            Some(&admin),
            None,
        ),
    );
    spec.check(
        "GET",
        "/v1/admin/sites/{site}/webhooks/{id}/deliveries",
        &worker.call(
            "GET",
            &format!("{hooks}/wh_nope/deliveries"),
            Some(&admin),
            None,
        ),
    );
    spec.check(
        "DELETE",
        "/v1/admin/sites/{site}/webhooks/{id}",
        &worker.call("DELETE", &format!("{hooks}/{hook_id}"), Some(&admin), None),
    );
    spec.check(
        "DELETE",
        "/v1/admin/sites/{site}/webhooks/{id}",
        &worker.call("DELETE", &format!("{hooks}/{hook_id}"), Some(&admin), None),
    );

    let missing = spec.unvisited();
    assert!(
        missing.is_empty(),
        "documented but never checked: {missing:?}"
    );
}
