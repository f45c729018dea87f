//! A local stand-in for the email provider: speaks the subset of Resend's (`POST /emails`) and
//! Postmark's (`POST /email`) HTTP APIs the Worker uses, and keeps every message as files a
//! developer can open and tests can read. Like a real provider it honours `Idempotency-Key`. For
//! tests of failure handling, a recipient whose address contains `+failN` is refused with a 500
//! for the first N attempts, and one with `+slowN` has its first message kept but answered N
//! seconds late (like a provider whose answer is lost on the way back). It also takes webhook
//! POSTs under `/webhook` (see [`webhook`]), and stands in for Cloudflare Turnstile (see
//! [`siteverify`] and [`TURNSTILE_SCRIPT`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Result;

pub struct MailSink {
    pub base_url: String,
    pub dir: PathBuf,
}

/// Starts the sink on a free loopback port; it runs until xtask exits.
pub fn start(dir: &Path, announce: bool) -> Result<MailSink> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let server = tiny_http::Server::http("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or("the mail sink has no port")?;
    let folder = dir.to_path_buf();
    let state = Arc::new(State::default());
    std::thread::spawn(move || {
        // A thread per request, so a deliberately slow answer holds up no other.
        for mut request in server.incoming_requests() {
            let (state, folder) = (Arc::clone(&state), folder.clone());
            std::thread::spawn(move || {
                let script = request.url().starts_with("/turnstile/api.js");
                let (status, body) = if script {
                    (200, TURNSTILE_SCRIPT.to_owned())
                } else {
                    handle(&mut request, &folder, &state, announce)
                };
                let media = if script {
                    "text/javascript"
                } else {
                    "application/json"
                };
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("content-type", media)
                            .expect("a valid header"),
                    );
                let _ = request.respond(response);
            });
        }
    });
    Ok(MailSink {
        base_url: format!("http://127.0.0.1:{port}"),
        dir: dir.to_path_buf(),
    })
}

/// What the sink remembers across requests.
#[derive(Default)]
struct State {
    seq: AtomicU32,
    /// Idempotency key → message id, for messages already kept.
    seen: Mutex<HashMap<String, String>>,
    /// Idempotency key → attempts refused or delayed so far.
    failures: Mutex<HashMap<String, u32>>,
    /// Turnstile token → the idempotency key it was first verified with.
    turnstile: Mutex<HashMap<String, Option<String>>>,
}

/// The N of a `+failN` or `+slowN` marker in a recipient's address (0 without one).
fn planned(to: &str, marker: &str) -> u32 {
    to.split_once(marker)
        .and_then(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0)
}

fn handle(
    request: &mut tiny_http::Request,
    dir: &Path,
    state: &State,
    announce: bool,
) -> (u16, String) {
    let seq = &state.seq;
    let provider = match (request.method(), request.url()) {
        (tiny_http::Method::Post, "/emails") => "resend",
        (tiny_http::Method::Post, "/email") => "postmark",
        (tiny_http::Method::Post, url) if url.starts_with("/webhook") => {
            return webhook(request, dir, state);
        }
        (tiny_http::Method::Post, "/turnstile/siteverify") => {
            return siteverify(request, state);
        }
        _ => return (404, r#"{"message":"not found"}"#.into()),
    };
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let authorization = header("authorization")
        .or_else(|| header("x-postmark-server-token"))
        .unwrap_or_default();
    let idempotency_key = header("idempotency-key");
    let mut text = String::new();
    if request.as_reader().read_to_string(&mut text).is_err() {
        return (400, r#"{"message":"unreadable body"}"#.into());
    }
    let Ok(mut email) = serde_json::from_str::<serde_json::Value>(&text) else {
        return (422, r#"{"message":"body is not JSON"}"#.into());
    };
    if provider == "postmark" {
        // Recorded in Resend's shape, so tests and developers read one format; the original
        // field names are kept under "postmark".
        let original = email.clone();
        email = serde_json::json!({
            "from": original["From"],
            "to": [original["To"]],
            "subject": original["Subject"],
            "text": original["TextBody"],
            "html": original["HtmlBody"],
            "headers": original["Headers"].as_array().map(|list| list
                .iter()
                .map(|h| (h["Name"].as_str().unwrap_or_default().to_owned(), h["Value"].clone()))
                .collect::<serde_json::Map<_, _>>()),
            "postmark": original,
        });
    }
    // Postmark takes no idempotency key: the request body stands in (a retry resends it as is).
    let key = idempotency_key.unwrap_or_else(|| format!("{provider}:{text}"));
    if let Some(id) = lock(&state.seen).get(&key) {
        return (
            200,
            serde_json::json!({ "id": id, "MessageID": id }).to_string(),
        );
    }
    let to = email["to"][0].as_str().unwrap_or_default().to_owned();
    let attempt = {
        let mut failures = lock(&state.failures);
        let count = failures.entry(key.clone()).or_default();
        *count += 1;
        *count
    };
    if attempt <= planned(&to, "+fail") {
        return (500, r#"{"message":"planned failure"}"#.into());
    }
    let refused = attempt - 1;
    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("sink-{n:05}");
    let record = serde_json::json!({
        "id": id,
        "provider": provider,
        "idempotency_key": key,
        "authorization": authorization,
        "attempts_refused": refused,
        "email": email,
    });
    let path = dir.join(format!("{n:05}.json"));
    let _ = std::fs::write(
        &path,
        serde_json::to_string_pretty(&record).unwrap_or_default(),
    );
    if let Some(html) = email["html"].as_str() {
        let _ = std::fs::write(dir.join(format!("{n:05}.html")), html);
    }
    if announce {
        eprintln!(
            "xtask: mail to {to}: {:?} saved as {}",
            email["subject"].as_str().unwrap_or_default(),
            path.display()
        );
    }
    lock(&state.seen).insert(key, id.clone());
    let slow = planned(&to, "+slow");
    if attempt == 1 && slow > 0 {
        std::thread::sleep(std::time::Duration::from_secs(u64::from(slow)));
    }
    let answer = match provider {
        "postmark" => serde_json::json!({ "MessageID": id, "ErrorCode": 0, "Message": "OK" }),
        _ => serde_json::json!({ "id": id }),
    };
    (200, answer.to_string())
}

/// A webhook's POST (to `/webhook` or any path below it), kept with its URL and signature
/// headers so tests can verify them. A URL containing `+failN` answers 500 to the first N
/// attempts of each message (by `webhook-id`).
fn webhook(request: &mut tiny_http::Request, dir: &Path, state: &State) -> (u16, String) {
    let url = request.url().to_owned();
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .filter(|h| {
            h.field
                .as_str()
                .as_str()
                .to_ascii_lowercase()
                .starts_with("webhook-")
        })
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().into(),
            )
        })
        .collect();
    let mut body = String::new();
    if request.as_reader().read_to_string(&mut body).is_err() {
        return (400, "{}".into());
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let attempt = {
        let mut failures = lock(&state.failures);
        let count = failures.entry(format!("webhook:{url}:{id}")).or_default();
        *count += 1;
        *count
    };
    if attempt <= planned(&url, "+fail") {
        return (500, r#"{"message":"planned failure"}"#.into());
    }
    let n = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let record = serde_json::json!({
        "provider": "webhook",
        "url": url,
        "attempts_refused": attempt - 1,
        "headers": headers,
        "body": body,
    });
    let _ = std::fs::write(
        dir.join(format!("{n:05}.json")),
        serde_json::to_string_pretty(&record).unwrap_or_default(),
    );
    (204, String::new())
}

/// Cloudflare's documented test secret that accepts every genuine token. Locally the Worker
/// sends it (`TURNSTILE_SECRET_KEY`), and this stand-in refuses any other.
pub const TURNSTILE_TEST_SECRET: &str = "1x0000000000000000000000000000000AA";

/// A stand-in for Turnstile's siteverify
/// (<https://developers.cloudflare.com/turnstile/get-started/server-side-validation/>). A token
/// `…:pass:{hostname}` passes, solved on that hostname; anything else is invalid. Like the real
/// one, each token is good once, except that a request with the same `idempotency_key` as the
/// first verification gets the same answer again.
fn siteverify(request: &mut tiny_http::Request, state: &State) -> (u16, String) {
    let mut text = String::new();
    if request.as_reader().read_to_string(&mut text).is_err() {
        return (400, "{}".into());
    }
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let refuse =
        |code: &str| serde_json::json!({ "success": false, "error-codes": [code] }).to_string();
    if body["secret"] != TURNSTILE_TEST_SECRET {
        return (200, refuse("invalid-input-secret"));
    }
    let token = body["response"].as_str().unwrap_or_default().to_owned();
    let Some((_, hostname)) = token.split_once(":pass:") else {
        return (200, refuse("invalid-input-response"));
    };
    let key = body["idempotency_key"].as_str().map(str::to_owned);
    let mut seen = lock(&state.turnstile);
    match seen.get(&token) {
        Some(first) if first.is_none() || *first != key => {
            return (200, refuse("timeout-or-duplicate"));
        }
        Some(_) => {}
        None => {
            seen.insert(token.clone(), key);
        }
    }
    let answer = serde_json::json!({
        "success": true,
        "hostname": hostname,
        "challenge_ts": "2026-01-01T00:00:00Z",
        "error-codes": [],
    });
    (200, answer.to_string())
}

/// A stand-in for Turnstile's script (`api.js?render=explicit`): `turnstile.render(element,
/// {sitekey, callback})` shows a "Verify you are human" button in `element`; clicking it calls
/// `callback` with a token that passes [`siteverify`] for the page's hostname.
/// `turnstile.reset()` shows the button again.
pub const TURNSTILE_SCRIPT: &str = r#"(() => {
  let n = 0;
  const widgets = new Map();
  const show = (id) => {
    const { element, options } = widgets.get(id);
    element.textContent = "";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Verify you are human";
    button.setAttribute("data-testid", "turnstile-stand-in");
    button.addEventListener("click", () => {
      button.disabled = true;
      button.textContent = "Verified";
      const token = `stand-in-${id}-${Date.now()}-${Math.random()}:pass:${location.hostname}`;
      options.callback && options.callback(token);
    });
    element.append(button);
  };
  window.turnstile = {
    render(element, options) {
      const id = `w${++n}`;
      widgets.set(id, { element, options });
      show(id);
      return id;
    },
    reset(id) {
      for (const key of id ? [id] : widgets.keys()) show(key);
    },
    remove(id) {
      const w = widgets.get(id);
      if (w) w.element.textContent = "";
      widgets.delete(id);
    },
  };
  const onload = new URL(document.currentScript.src).searchParams.get("onload");
  if (onload && typeof window[onload] === "function") window[onload]();
})();
"#;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
