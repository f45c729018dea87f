#![doc = include_str!("../README.md")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The Worker under test, from the environment `cargo xtask test` sets.
pub struct Worker {
    pub base: String,
    admin_token: String,
    state: PathBuf,
    mail: PathBuf,
    agent: ureq::Agent,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    pub fn problem(&self, status: u16) -> leadglue_shared::Problem {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let problem: leadglue_shared::Problem =
            serde_json::from_str(&self.body).expect("a problem document");
        assert_eq!(problem.status, status);
        assert!(!problem.title.is_empty());
        problem
    }
}

impl Worker {
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run these tests with `cargo xtask test`")
            })
        };
        Self {
            base: var("LEADGLUE_BASE_URL"),
            admin_token: var("LEADGLUE_ADMIN_TOKEN"),
            state: PathBuf::from(var("LEADGLUE_D1_STATE")),
            mail: PathBuf::from(var("LEADGLUE_MAIL_DIR")),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// The same, but talking to another of the Workers `cargo xtask test` started (named by
    /// the variable holding its address), e.g. the one sending through Postmark.
    pub fn other(name: &str) -> Self {
        let mut worker = Self::from_env();
        worker.base = std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run these tests with `cargo xtask test`")
        });
        worker
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; `headers` are name/value pairs.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let run = match body {
            Some(bytes) => self
                .agent
                .run(request.body(bytes.to_vec()).expect("a request")),
            None => self.agent.run(request.body(()).expect("a request")),
        };
        let mut response = run.expect("the Worker answers");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            // Lossy: wasm and other binary assets are checked by their headers only.
            body: String::from_utf8_lossy(&response.body_mut().read_to_vec().expect("a body"))
                .into_owned(),
        }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", path, headers, None)
    }

    /// `POST /v1/leads` with a JSON body, as the widget sends it from `origin`.
    pub fn post_lead(&self, body: &Value, origin: Option<&str>) -> Answer {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        let mut headers = vec![("content-type", "application/json")];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        self.send("POST", "/v1/leads", &headers, Some(&bytes))
    }

    /// Defines a site of its own for one test, so tests can run in parallel and count their own
    /// leads. Returns its id.
    pub fn new_site(&self, origins: &[&str]) -> String {
        self.new_site_with(origins, &json!({}))
    }

    /// A site of its own with more settings (`extra`'s keys override the defaults).
    pub fn new_site_with(&self, origins: &[&str], extra: &Value) -> String {
        let id = unique("site");
        let mut definition = site_definition(origins);
        if let (Some(base), Some(extra)) = (definition.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        let answer = self.put_site(&id, &definition, Some(&self.admin_token));
        assert_eq!(answer.status, 200, "defining a site: {}", answer.body);
        id
    }

    pub fn put_site(&self, id: &str, definition: &Value, token: Option<&str>) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let body = serde_json::to_vec(definition).expect("serialisable");
        self.send(
            "PUT",
            &format!("/v1/admin/sites/{id}"),
            &headers,
            Some(&body),
        )
    }

    /// `PUT /v1/admin/sites/{site}/forms/{form}` with the admin token.
    pub fn put_form(&self, site: &str, form: &str, definition: &Value) -> Answer {
        let bearer = format!("Bearer {}", self.admin_token);
        let body = serde_json::to_vec(definition).expect("serialisable");
        self.send(
            "PUT",
            &format!("/v1/admin/sites/{site}/forms/{form}"),
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            Some(&body),
        )
    }

    /// One column of one lead, as text (JSON columns come back as their JSON text).
    pub fn lead_column(&self, id: &str, column: &str) -> Option<String> {
        // Column names come from the tests themselves, never from input.
        let sql = format!("SELECT CAST({column} AS TEXT) FROM leads WHERE id = ?1");
        self.d1()
            .query_row(&sql, [id], |row| row.get(0))
            .expect("the lead is in D1")
    }

    /// Emails the provider stand-in received for `to`, oldest first (each as the sink recorded
    /// it: `{"id", "idempotency_key", "authorization", "attempts_refused", "email": {...}}`).
    pub fn mail_to(&self, to: &str) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.mail)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|m| m["email"]["to"][0] == to)
            .collect()
    }

    /// Webhook steps the stand-in received about the lead with this address (each as recorded:
    /// `{"headers": {webhook-id, webhook-timestamp, webhook-signature}, "body": "<json>"}`).
    pub fn webhooks_for(&self, email: &str) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.mail)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(|r| r["provider"] == "webhook")
            .filter(|r| {
                r["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .is_some_and(|b| b["data"]["lead"]["email"] == email)
            })
            .collect()
    }

    /// Queues the follow-up steps of `site`'s leads due as of `now_ms` (the admin "run now"
    /// call; scoped to the test's own site so parallel tests do not run each other's steps).
    pub fn run_follow_ups(&self, site: &str, now_ms: i64) -> Value {
        let bearer = format!("Bearer {}", self.admin_token);
        let answer = self.send(
            "POST",
            &format!("/v1/admin/follow-ups/run?now={now_ms}&site={site}"),
            &[("authorization", &bearer)],
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    }

    /// The follow-up steps of a lead: (step, template, state, attempts), in step order.
    pub fn follow_ups(&self, lead_id: &str) -> Vec<(i64, String, String, i64)> {
        let db = self.d1();
        let mut stmt = db
            .prepare(
                "SELECT step, template, state, attempts FROM follow_ups WHERE lead_id = ?1
                 ORDER BY step",
            )
            .expect("a query");
        stmt.query_map([lead_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("follow-ups")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Opens the Worker's local D1 read-only (the Worker keeps writing; SQLite's WAL lets a
    /// reader in alongside).
    pub fn d1(&self) -> rusqlite::Connection {
        let dir = self.state.join("v3/d1/miniflare-D1DatabaseObject");
        let file = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.extension().is_some_and(|x| x == "sqlite")
                    && p.file_stem().is_some_and(|s| s != "metadata")
            })
            .expect("the local D1 database file");
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the local D1 opens")
    }

    /// How many leads a site has in D1.
    pub fn lead_count(&self, site_id: &str) -> i64 {
        self.d1()
            .query_row(
                "SELECT count(*) FROM leads WHERE site_id = ?1",
                [site_id],
                |row| row.get(0),
            )
            .expect("counting leads")
    }
}

pub const ORIGIN: &str = "https://www.example.com";

pub fn site_definition(origins: &[&str]) -> Value {
    json!({
        "name": "Example Ltd",
        "allowed_origins": origins,
        "consent_text": "You may contact me about my request.",
        "consent_version": "v1",
        "phone": "+1 555 010 0199",
    })
}

/// A valid submission for `site_id` to the built-in default form (a warm lead), with a fresh
/// idempotency key.
pub fn lead(site_id: &str) -> Value {
    json!({
        "site_id": site_id,
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "company": "Analytical Engines",
        "message": "Please send me the brochure.",
        "consent": { "given": true, "text_version": "v1" },
        "page_url": "https://www.example.com/pricing",
        "idempotency_key": unique("key-0123456789"),
        "answers": {
            "timeline": "3_months",
            "role": "influencer",
            "company_size": "11_50",
            "follow_up": "send_information",
        },
    })
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Polls `check` until it gives a value or `seconds` pass; panics with `what` then.
pub fn eventually<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The raw messages Cloudflare's `send_email` binding wrote (as .eml files, under the folder in
/// `LEADGLUE_EML_DIR`) for `to`.
pub fn eml_to(to: &str) -> Vec<Vec<u8>> {
    fn walk(dir: &std::path::Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|x| x == "eml") {
                found.push(path);
            }
        }
    }
    let root = PathBuf::from(std::env::var("LEADGLUE_EML_DIR").expect("LEADGLUE_EML_DIR"));
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|raw| {
            mail_parser::MessageParser::default()
                .parse(raw)
                .and_then(|m| {
                    m.to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .map(|a| a == to)
                })
                .unwrap_or(false)
        })
        .collect()
}
