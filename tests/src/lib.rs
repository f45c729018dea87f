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
    /// Set on the Worker whose D1 tests seed directly: requests wait while a seed writes.
    gate: Option<&'static std::sync::RwLock<()>>,
}

/// Seeding writes to D1 from outside the Worker, and the Worker does not wait for SQLite's
/// lock (it fails with SQLITE_BUSY). So seeding happens on a Worker of its own, and requests to
/// it from this test process wait while a seed is being written.
static SEEDING: std::sync::RwLock<()> = std::sync::RwLock::new(());

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

impl Answer {
    /// Asserts the security headers every HTML page the edge serves must carry: a strict CSP
    /// (nothing loads from elsewhere, no inline script, no framing, no `<base>` or plugins), no
    /// MIME sniffing, and a referrer policy.
    pub fn assert_hardened_html(&self) {
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "an HTML page"
        );
        let csp = self.header("content-security-policy").expect("a CSP");
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.split_whitespace().next() == Some(name))
                .map(str::to_owned)
        };
        let default = directive("default-src").expect("default-src");
        assert!(
            default == "default-src 'none'" || default == "default-src 'self'",
            "{csp}"
        );
        let scripts = directive("script-src").unwrap_or(default);
        assert!(
            !scripts.contains("unsafe-inline") && !scripts.contains('*'),
            "{csp}"
        );
        assert_eq!(
            directive("frame-ancestors").as_deref(),
            Some("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(
            directive("base-uri").as_deref(),
            Some("base-uri 'none'"),
            "{csp}"
        );
        assert!(
            directive("object-src").is_some() || csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert!(self.header("referrer-policy").is_some());
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
            gate: None,
        }
    }

    /// The Worker kept for tests that seed thousands of leads straight into its D1 (listing,
    /// export): nothing else runs there, so seeding cannot disturb other tests.
    pub fn for_seeding() -> Self {
        let mut worker = Self::other("LEADGLUE_BULK_URL");
        worker.state = PathBuf::from(
            std::env::var("LEADGLUE_BULK_STATE").expect("LEADGLUE_BULK_STATE is set"),
        );
        worker.gate = Some(&SEEDING);
        worker
    }

    /// The Worker that runs `edge/wrangler.toml` as shipped, rate limits included (the others
    /// have limits too high to trip).
    pub fn limited() -> Self {
        let mut worker = Self::other("LEADGLUE_LIMITED_URL");
        worker.state = PathBuf::from(
            std::env::var("LEADGLUE_LIMITED_STATE").expect("LEADGLUE_LIMITED_STATE is set"),
        );
        worker
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
        let _gate = self
            .gate
            .map(|g| g.read().unwrap_or_else(|e| e.into_inner()));
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

    /// Everything the provider stand-in recorded (emails and webhooks), oldest first.
    fn sink_records(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.mail)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .collect()
    }

    /// Emails the provider stand-in received for `to`, oldest first (each as the sink recorded
    /// it: `{"id", "idempotency_key", "authorization", "attempts_refused", "email": {...}}`).
    pub fn mail_to(&self, to: &str) -> Vec<Value> {
        self.sink_records()
            .into_iter()
            .filter(|m| m["email"]["to"][0] == to)
            .collect()
    }

    /// Webhook steps the stand-in received about the lead with this address (each as recorded:
    /// `{"headers": {webhook-id, webhook-timestamp, webhook-signature}, "body": "<json>"}`).
    pub fn webhooks_for(&self, email: &str) -> Vec<Value> {
        self.sink_records()
            .into_iter()
            .filter(|r| r["provider"] == "webhook")
            .filter(|r| {
                r["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .is_some_and(|b| b["data"]["lead"]["email"] == email)
            })
            .collect()
    }

    /// Webhooks the stand-in received at this path (below `/webhook`), oldest first, each as
    /// recorded: `{"url", "attempts_refused", "headers": {webhook-*}, "body": "<json>"}`.
    pub fn webhooks_at(&self, path: &str) -> Vec<Value> {
        self.sink_records()
            .into_iter()
            .filter(|r| r["provider"] == "webhook" && r["url"] == path)
            .collect()
    }

    /// The stand-in's address for webhooks at `path` (which must start with `/webhook`).
    pub fn sink_url(path: &str) -> String {
        let hook = std::env::var("LEADGLUE_WEBHOOK_URL").expect("LEADGLUE_WEBHOOK_URL");
        format!("{}{path}", hook.trim_end_matches("/webhook"))
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

    /// Creates an API key with these scopes; returns (id, key).
    pub fn api_key(&self, scopes: &[&str]) -> (String, String) {
        let token = self.admin_token.clone();
        let answer = self.call(
            "POST",
            "/v1/admin/api-keys",
            Some(&token),
            Some(&json!({ "name": unique("test key"), "scopes": scopes })),
        );
        assert_eq!(answer.status, 201, "creating a key: {}", answer.body);
        let body = answer.json();
        (
            body["id"].as_str().expect("an id").to_owned(),
            body["key"].as_str().expect("a key").to_owned(),
        )
    }

    /// A request with `Authorization: Bearer <token>` (if any) and a JSON body (if any).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer.as_str()));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).expect("serialisable"));
        if bytes.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.send(method, path, &headers, bytes.as_deref())
    }

    /// Writes leads straight into D1 (see [`Worker::d1_for_seeding`]), in one transaction.
    pub fn seed_leads(&self, leads: &[SeedLead]) {
        let gate = self
            .gate
            .expect("seed only the Worker from `Worker::for_seeding`");
        let _writing = gate.write().unwrap_or_else(|e| e.into_inner());
        let mut db = self.d1_for_seeding();
        let tx = db.transaction().expect("a transaction");
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO leads (id, site_id, email, name, company, phone, message,
                        consent_text_version, idempotency_key, created_at, form_id, grade,
                        score, channel, status, assignee, tags, search_text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'v1', ?1, ?8, ?9, ?10, ?11, ?12, ?13,
                             ?14, ?15, ?16)",
                )
                .expect("an insert");
            for l in leads {
                insert
                    .execute(rusqlite::params![
                        l.id,
                        l.site_id,
                        l.email,
                        l.name,
                        l.company,
                        l.phone,
                        l.message,
                        l.created_at,
                        l.form_id,
                        l.grade,
                        l.score,
                        l.channel,
                        l.status,
                        l.assignee,
                        serde_json::to_string(&l.tags).expect("tags"),
                        // As the Worker writes it.
                        leadglue_shared::sales::search_text(
                            &l.email,
                            &l.name,
                            l.company.as_deref()
                        ),
                    ])
                    .expect("a seeded lead");
            }
        }
        tx.commit().expect("seeded leads committed");
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Opens the Worker's local D1 read-only (the Worker keeps writing; SQLite's WAL lets a
    /// reader in alongside).
    pub fn d1(&self) -> rusqlite::Connection {
        self.open_d1(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    /// Opens the local D1 for writing: only to seed thousands of leads quickly, for tests of
    /// reading them back (listing, export). SQLite's locks keep the Worker's writes and ours
    /// apart; the busy timeout waits for the Worker's.
    pub fn d1_for_seeding(&self) -> rusqlite::Connection {
        let db = self.open_d1(rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE);
        db.busy_timeout(std::time::Duration::from_secs(10))
            .expect("a busy timeout");
        db
    }

    fn open_d1(&self, flags: rusqlite::OpenFlags) -> rusqlite::Connection {
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
        rusqlite::Connection::open_with_flags(&file, flags).expect("the local D1 opens")
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

/// A lead written straight into D1 by [`Worker::seed_leads`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeedLead {
    pub id: String,
    pub site_id: String,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub created_at: String,
    pub form_id: String,
    pub grade: String,
    pub score: i64,
    pub channel: String,
    pub status: String,
    pub assignee: Option<String>,
    pub tags: Vec<String>,
}

impl SeedLead {
    /// The `i`th of a varied population for `site`: grades, statuses, channels and forms
    /// rotate; every few leads carry text a CSV writer or a spreadsheet must handle with care
    /// (commas, quotes, line breaks, formulas, non-ASCII). Pairs of leads share a creation time,
    /// so ordering must fall back on the id.
    pub fn nth(site: &str, i: usize) -> Self {
        let tricky = [
            "Plain",
            "Comma, Inc.",
            "Quote \"Q\" Ltd",
            "Line\r\nbreak",
            "=HYPERLINK(\"http://evil\")",
            "+1 555 0100",
            "-10%",
            "@SUM(A1)",
            "Zoë Ørsted 東京",
        ];
        let ms = i / 2;
        Self {
            id: format!("{site}-{i:06}"),
            site_id: site.to_owned(),
            email: format!("person{i}@example.com"),
            name: format!("Person {i} {}", tricky[i % tricky.len()]),
            company: (!i.is_multiple_of(4)).then(|| tricky[(i / 3) % tricky.len()].to_owned()),
            phone: (i.is_multiple_of(3)).then(|| format!("+44 20 7946 {:04}", i % 10_000)),
            message: (i.is_multiple_of(5))
                .then(|| format!("Message {i}\nwith a second line, and \"quotes\"")),
            created_at: format!(
                "2026-01-01T{:02}:{:02}:{:02}.{:03}Z",
                ms / 3_600_000,
                (ms / 60_000) % 60,
                (ms / 1000) % 60,
                ms % 1000
            ),
            form_id: if i.is_multiple_of(2) {
                "default"
            } else {
                "demo"
            }
            .to_owned(),
            grade: ["hot", "warm", "cold"][i % 3].to_owned(),
            score: i64::try_from(i % 100).unwrap_or_default(),
            channel: ["direct", "paid_search", "organic_search", "email"][i % 4].to_owned(),
            status: ["lead", "lead", "prospect", "customer", "disqualified"][i % 5].to_owned(),
            assignee: (i.is_multiple_of(7)).then(|| "sam@northwind.example".to_owned()),
            tags: if i.is_multiple_of(6) {
                vec!["vip".into(), "q4".into()]
            } else {
                Vec::new()
            },
        }
    }
}

pub const ORIGIN: &str = "https://www.example.com";

/// A site as most tests need it. Two spam defaults are off, because these tests post leads
/// straight away without the widget's render token, and post the same address more than once:
/// `hardening.rs` tests the minimum fill time and duplicate suppression themselves.
pub fn site_definition(origins: &[&str]) -> Value {
    json!({
        "name": "Example Ltd",
        "allowed_origins": origins,
        "consent_text": "You may contact me about my request.",
        "consent_version": "v1",
        "phone": "+1 555 010 0199",
        "min_fill_seconds": 0,
        "duplicate_window_hours": 0,
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
