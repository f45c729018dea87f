//! The Worker's HTTP API, black-box: answers, headers, and what lands in D1.

use leadglue_shared::{LeadSubmission, default_form, validate};
use leadglue_tests::{ORIGIN, Worker, lead, site_definition, unique};
use serde_json::{Value, json};

#[test]
fn health_answers_ok() {
    let worker = Worker::from_env();
    let answer = worker.get("/healthz", &[]);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({ "status": "ok" }));
}

#[test]
fn a_valid_lead_is_stored_normalised() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let mut body = lead(&site);
    body["email"] = json!("  Ada@Example.COM ");
    body["name"] = json!("  Ada Lovelace ");
    body["phone"] = json!("+44 20 7946 0958");

    let answer = worker.post_lead(&body, Some(ORIGIN));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    let id = answer.json()["id"].as_str().expect("an id").to_owned();

    let row = worker
        .d1()
        .query_row(
            "SELECT site_id, email, name, company, phone, message, consent_text_version,
                    page_url, idempotency_key, created_at
             FROM leads WHERE id = ?1",
            [&id],
            |r| {
                (0..10)
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<Result<Vec<_>, _>>()
            },
        )
        .expect("the lead is in D1");
    let text = |i: usize| row[i].as_deref();
    assert_eq!(text(0), Some(site.as_str()));
    assert_eq!(text(1), Some("Ada@example.com"));
    assert_eq!(text(2), Some("Ada Lovelace"));
    assert_eq!(text(3), Some("Analytical Engines"));
    assert_eq!(text(4), Some("+442079460958"));
    assert_eq!(text(5), Some("Please send me the brochure."));
    assert_eq!(text(6), Some("v1"));
    assert_eq!(text(7), Some("https://www.example.com/pricing"));
    assert_eq!(text(8), body["idempotency_key"].as_str());
    assert!(text(9).is_some_and(|t| t.starts_with("20") && t.ends_with('Z')));
}

#[test]
fn ids_are_opaque_and_time_ordered() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let ids: Vec<String> = (0..5)
        .map(|_| {
            let answer = worker.post_lead(&lead(&site), None);
            assert_eq!(answer.status, 201, "{}", answer.body);
            answer.json()["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "later leads sort after earlier ones");
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
}

#[test]
fn a_retry_with_the_same_key_returns_the_first_lead() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let body = lead(&site);
    let first = worker.post_lead(&body, None);
    let again = worker.post_lead(&body, None);
    assert_eq!(first.status, 201);
    assert_eq!(again.status, 201);
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(worker.lead_count(&site), 1);
}

/// The edge returns exactly the messages the widget computes with `leadglue-shared`.
#[test]
fn invalid_fields_get_the_shared_messages_and_nothing_is_stored() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let mut body = lead(&site);
    body["email"] = json!("ada.example.com");
    body["name"] = json!("   ");
    body["phone"] = json!("12");
    body["consent"]["given"] = json!(false);

    let problem = worker.post_lead(&body, None).problem(422);
    let submission: LeadSubmission = serde_json::from_value(body).expect("the wire type");
    let expected = validate(&submission, &default_form()).expect_err("invalid");
    assert_eq!(problem.errors, expected);
    let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "email", "phone", "consent"]);
    assert_eq!(worker.lead_count(&site), 0);
}

/// Each class of bad input gets its own status and a problem body, and stores nothing.
#[test]
fn bad_requests_get_problem_answers_and_store_nothing() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let json_type = [("content-type", "application/json")];
    let valid = to_vec(&lead(&site));

    let too_big = with(lead(&site), "message", json!("x".repeat(33 * 1024)));
    let wrong_type = with(lead(&site), "name", json!(42));
    let cases = [
        (
            "broken JSON",
            &json_type[..],
            br#"{"site_id": "#.to_vec(),
            400,
        ),
        (
            "not JSON",
            &json_type,
            b"email=ada@example.com".to_vec(),
            400,
        ),
        (
            "trailing garbage",
            &json_type,
            [&valid[..], b"}"].concat(),
            400,
        ),
        (
            "text/plain",
            &[("content-type", "text/plain")],
            valid.clone(),
            415,
        ),
        (
            "form-encoded",
            &[("content-type", "application/x-www-form-urlencoded")],
            valid.clone(),
            415,
        ),
        ("no content type", &[], valid.clone(), 415),
        ("over 32 KiB", &json_type, to_vec(&too_big), 413),
        ("a JSON array", &json_type, b"[]".to_vec(), 422),
        ("wrong type", &json_type, to_vec(&wrong_type), 422),
    ];
    for (what, headers, body, status) in cases {
        let answer = worker.send("POST", "/v1/leads", headers, Some(&body));
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        answer.problem(status);
    }
    assert_eq!(worker.lead_count(&site), 0);
}

#[test]
fn shape_errors_name_the_field() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            remove(lead(&site), "email"),
            "email",
            "This field is required.",
        ),
        (
            with(lead(&site), "priority", json!("high")),
            "priority",
            "This field is not recognised.",
        ),
        (
            with(lead(&site), "consent", json!({ "given": true })),
            "consent.text_version",
            "This field is required.",
        ),
    ];
    for (body, field, message) in cases {
        let problem = worker.post_lead(&body, None).problem(422);
        assert_eq!(problem.errors.len(), 1, "{problem:?}");
        assert_eq!(problem.errors[0].field, field);
        assert_eq!(problem.errors[0].message, message);
    }
    assert_eq!(worker.lead_count(&site), 0);
}

#[test]
fn an_unknown_site_is_404() {
    let worker = Worker::from_env();
    let problem = worker
        .post_lead(&lead(&unique("nosuchsite")), None)
        .problem(404);
    assert_eq!(problem.kind, "/problems/unknown-site");
    worker
        .get(&format!("/v1/sites/{}", unique("nosuchsite")), &[])
        .problem(404);
}

#[test]
fn an_admin_reads_a_site_back_as_stored_to_change_one_setting() {
    let worker = Worker::from_env();
    let admin = Some(worker.admin_token());
    let mut definition = site_definition(&["https://b.example", "https://a.example"]);
    definition["sales_email"] = json!("sales@example.com");
    definition["double_opt_in"] = json!(true);
    definition["locale"] = json!("de");
    definition["sequences"] = json!({ "warm": [
        { "delay_days": 0, "template": "welcome" },
        { "delay_days": 2, "template": "check_in", "channel": "webhook" }
    ] });
    definition["webhook_url"] = json!("https://hooks.example/leadglue");
    let id = unique("readback");
    let put = worker.put_site(&id, &definition, admin);
    assert_eq!(put.status, 200, "{}", put.body);
    let path = format!("/v1/admin/sites/{id}");

    let got = worker.call("GET", &path, admin, None);
    assert_eq!(got.status, 200, "{}", got.body);
    let mut stored = put.json();
    stored["allowed_origins"] = json!(["https://a.example", "https://b.example"]);
    assert_eq!(got.json(), stored, "what PUT answered, origins in order");

    // Change one setting: what GET gave, with that one changed, PUT back whole.
    let mut changed = got.json();
    changed["phone"] = json!("+1 555 010 0100");
    let again = worker.put_site(&id, &changed, admin);
    assert_eq!(again.status, 200, "{}", again.body);
    let reread = worker.call("GET", &path, admin, None).json();
    assert_eq!(reread["phone"], "+1 555 010 0100");
    assert_eq!(
        reread["sales_email"], "sales@example.com",
        "nothing else lost"
    );
    assert_eq!(reread["sequences"], stored["sequences"]);

    worker.call("GET", &path, None, None).problem(401);
    let (_, sales) = worker.api_key(&["leads:read"]);
    worker.call("GET", &path, Some(&sales), None).problem(403);
    let unknown = format!("/v1/admin/sites/{}", unique("nosuchsite"));
    let problem = worker.call("GET", &unknown, admin, None).problem(404);
    assert_eq!(problem.kind, "/problems/unknown-site");
}

#[test]
fn cors_preflight_answers_only_allowed_origins() {
    let worker = Worker::from_env();
    let origin = format!("https://{}.example", unique("allowed"));
    worker.new_site(&[&origin]);
    let preflight = |origin: &str| {
        worker.send(
            "OPTIONS",
            "/v1/leads",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            None,
        )
    };

    let allowed = preflight(&origin);
    assert_eq!(allowed.status, 204);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(origin.as_str())
    );
    assert_eq!(allowed.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("content-type, idempotency-key")
    );
    assert!(allowed.header("vary").is_some_and(|v| v.contains("Origin")));

    let refused = preflight("https://evil.example");
    refused.problem(403);
    assert_eq!(refused.header("access-control-allow-origin"), None);
}

#[test]
fn a_post_from_an_origin_the_site_does_not_allow_is_refused() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    // Allowed by another site: the preflight passes, the lead's own site still says no.
    let other = format!("https://{}.example", unique("other"));
    worker.new_site(&[&other]);

    let answer = worker.post_lead(&lead(&site), Some(&other));
    answer.problem(403);
    // Readable by the widget, so it can tell the visitor what is wrong.
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(other.as_str())
    );
    let stranger = worker.post_lead(&lead(&site), Some("https://evil.example"));
    stranger.problem(403);
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    assert_eq!(worker.lead_count(&site), 0);
}

/// A marketer may write their domain as people read it; browsers send it in its ASCII form.
#[test]
fn an_origin_given_with_an_internationalised_domain_takes_leads_from_its_ascii_form() {
    let worker = Worker::from_env();
    let label = unique("bücher").replace('-', "");
    let site = worker.new_site(&[&format!("https://{label}.example")]);
    let read = worker.call(
        "GET",
        &format!("/v1/admin/sites/{site}"),
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(read.status, 200, "{}", read.body);
    let stored = read.json()["allowed_origins"][0]
        .as_str()
        .expect("an origin")
        .to_owned();
    assert!(
        stored.starts_with("https://xn--") && stored.is_ascii(),
        "stored as browsers send it: {stored}"
    );

    let answer = worker.post_lead(&lead(&site), Some(&stored));
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(stored.as_str())
    );
    assert_eq!(worker.lead_count(&site), 1);
}

#[test]
fn errors_are_readable_by_allowed_origins() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let answer = worker.post_lead(&remove(lead(&site), "email"), Some(ORIGIN));
    answer.problem(422);
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
}

#[test]
fn site_config_is_public_for_allowed_origins() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[ORIGIN]);
    let answer = worker.get(&format!("/v1/sites/{site}"), &[("origin", ORIGIN)]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        answer.json(),
        json!({
            "id": site,
            "name": "Example Ltd",
            "consent_text": "You may contact me about my request.",
            "consent_version": "v1",
            "phone": "+1 555 010 0199",
            "first_touch_attribution": true,
            "double_opt_in": false,
            // How long the widget waits with a late render token (the test sites' setting).
            "min_fill_seconds": 0,
        })
    );
    let elsewhere = worker.get(
        &format!("/v1/sites/{site}"),
        &[("origin", "https://evil.example")],
    );
    elsewhere.problem(403);
    assert_eq!(elsewhere.header("access-control-allow-origin"), None);
}

#[test]
fn admin_needs_the_token() {
    let worker = Worker::from_env();
    let id = unique("site");
    let definition = site_definition(&[ORIGIN]);
    worker.put_site(&id, &definition, None).problem(401);
    worker
        .put_site(&id, &definition, Some("wrong"))
        .problem(401);
    let almost = format!("{}x", worker.admin_token());
    worker
        .put_site(&id, &definition, Some(&almost))
        .problem(401);
    worker.get(&format!("/v1/sites/{id}"), &[]).problem(404);
}

#[test]
fn admin_refuses_invalid_definitions_field_by_field() {
    let worker = Worker::from_env();
    let mut definition = site_definition(&["https://ok.example", "not an origin"]);
    definition["name"] = json!("");
    let problem = worker
        .put_site(&unique("site"), &definition, Some(worker.admin_token()))
        .problem(422);
    let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "allowed_origins[1]"]);
    // Every email offers the site's phone number: a site without one is refused.
    let mut no_phone = site_definition(&[]);
    no_phone.as_object_mut().expect("an object").remove("phone");
    let problem = worker
        .put_site(&unique("site"), &no_phone, Some(worker.admin_token()))
        .problem(422);
    let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["phone"]);
    worker
        .put_site("Bad_Id", &site_definition(&[]), Some(worker.admin_token()))
        .problem(422);
}

#[test]
fn unknown_paths_and_methods_get_problems() {
    let worker = Worker::from_env();
    worker.get("/v1/nothing-here", &[]).problem(404);
    let wrong = worker.send("PUT", "/v1/leads", &[], None);
    wrong.problem(405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn the_widget_is_served_for_embedding_anywhere() {
    let worker = Worker::from_env();
    let loader = worker.get(
        "/widget/v1/leadglue.js",
        &[("origin", "https://any.example")],
    );
    assert_eq!(loader.status, 200);
    assert!(
        loader
            .header("content-type")
            .is_some_and(|t| t.contains("javascript"))
    );
    assert_eq!(loader.header("access-control-allow-origin"), Some("*"));
    assert_eq!(loader.header("cache-control"), Some("public, max-age=300"));

    // The loader names its content-hashed glue and wasm; both are served, cached for good.
    let assets: Vec<&str> = loader
        .body
        .split('"')
        .filter(|p| p.starts_with("./assets/"))
        .collect();
    for (suffix, content_type) in [(".wasm", "application/wasm"), (".js", "javascript")] {
        let name = assets
            .iter()
            .find(|p| p.ends_with(suffix))
            .unwrap_or_else(|| panic!("the loader names a {suffix} asset: {assets:?}"));
        let path = format!("/widget/v1/{}", name.trim_start_matches("./"));
        let asset = worker.get(&path, &[("origin", "https://any.example")]);
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset
                .header("content-type")
                .is_some_and(|t| t.contains(content_type)),
            "{path}"
        );
        assert_eq!(asset.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
}

/// The snippet marketers paste, with its placeholders (`SITE_ID`, `https://EDGE`).
const SNIPPET: &str = include_str!("../../widget/loader/snippet.html");

/// The CSP source that allows the code between the snippet's tags: the same on every page,
/// since what differs (the site, the edge) is in its attributes.
fn snippet_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    let code = &SNIPPET[SNIPPET.find('>').expect("an opening tag") + 1
        ..SNIPPET.rfind("</script>").expect("a closing tag")];
    let digest = sha2::Sha256::digest(code.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("'sha256-{hash}'")
}

#[test]
fn the_demo_page_embeds_the_snippet_under_a_strict_policy() {
    let worker = Worker::from_env();
    let page = worker.get("/", &[]);
    assert_eq!(page.status, 200);
    let pasted = SNIPPET
        .replace("SITE_ID", "demo")
        .replace("https://EDGE", "");
    assert!(
        page.body.contains(pasted.trim_end()),
        "the demo page has the snippet exactly as marketers get it"
    );
    page.assert_hardened_html();
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("'wasm-unsafe-eval'"));
    let hash = snippet_hash();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src "))
        .expect("a script-src directive");
    assert!(
        script_src.split(' ').any(|s| s == hash),
        "the policy allows the snippet by its hash {hash}: {script_src}"
    );
    assert!(
        !script_src.contains("'unsafe-inline'"),
        "and allows no other inline code: {script_src}"
    );
}

/// Pasted snippets cannot be updated, so each version is kept in `widget/loader/published/`
/// (the browser tests send a lead through every one): the current one must be among them.
#[test]
fn the_snippet_is_a_published_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../widget/loader/published");
    let published: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|x| x == "html"))
        .map(|path| std::fs::read_to_string(path).expect("a published snippet"))
        .collect();
    assert!(
        published.iter().any(|p| p == SNIPPET),
        "widget/loader/snippet.html changed: copy it into widget/loader/published/ as a new file"
    );
}

#[test]
fn the_readme_gives_the_snippet_and_its_hash() {
    let readme = include_str!("../../README.md");
    let hash = snippet_hash();
    assert!(
        readme.contains(SNIPPET.trim_end()),
        "README.md shows widget/loader/snippet.html as it is"
    );
    assert!(
        readme.contains(&hash),
        "README.md gives the snippet's CSP hash {hash}"
    );
}

fn remove(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("an object").remove(key);
    value
}

fn with(mut value: Value, key: &str, field: Value) -> Value {
    value[key] = field;
    value
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialisable")
}

/// The form's first step as HTML, which the loader shows before any wasm: the site's and the
/// form's words, escaped, and an edit of either shown on the next request, not a minute later.
#[test]
fn the_forms_html_shows_the_latest_words_of_site_and_form() {
    let worker = Worker::from_env();
    let origin = [("origin", ORIGIN)];
    let site = worker.new_site(&[ORIGIN]);
    let html = |form: &str| worker.get(&format!("/v1/sites/{site}/forms/{form}/html"), &origin);

    let first = html("default");
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert!(first.body.contains("You may contact me about my request."));
    assert!(
        first.body.contains(">Next</button>"),
        "the default form has questions"
    );

    let mut definition = site_definition(&[ORIGIN]);
    definition["consent_text"] = json!("Contact me <b>only</b> about this & nothing else.");
    let token = worker.admin_token().to_owned();
    assert_eq!(
        worker.put_site(&site, &definition, Some(&token)).status,
        200
    );
    let edited = html("default");
    assert!(
        edited
            .body
            .contains("Contact me &lt;b&gt;only&lt;&#x2F;b&gt; about this &amp; nothing else."),
        "{}",
        edited.body
    );

    let short =
        json!({ "title": "Talk to us", "questions": [], "thresholds": { "hot": 80, "warm": 40 } });
    assert_eq!(worker.put_form(&site, "short", &short).status, 200);
    let one_step = html("short");
    assert!(
        one_step
            .body
            .contains("<h2 tabindex=\"-1\">Talk to us</h2>")
    );
    assert!(
        one_step.body.contains(">Send</button>"),
        "a form without questions sends at once"
    );

    worker
        .get(
            &format!("/v1/sites/{site}/forms/default/html"),
            &[("origin", "https://elsewhere.example")],
        )
        .problem(403);
    html("nosuchform").problem(404);
}
