//! A local stand-in for the email provider: speaks the subset of Resend's (`POST /emails`) and
//! Postmark's (`POST /email`) HTTP APIs the Worker uses, and keeps every message as files a
//! developer can open and tests can read. Like a real provider it honours `Idempotency-Key`. For tests of failure handling, a
//! recipient whose address contains `+failN` is refused with a 500 for the first N attempts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

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
    std::thread::spawn(move || {
        let seq = AtomicU32::new(0);
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut failures: HashMap<String, u32> = HashMap::new();
        for mut request in server.incoming_requests() {
            let (status, body) = handle(
                &mut request,
                &folder,
                &seq,
                &mut seen,
                &mut failures,
                announce,
            );
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes("content-type", "application/json")
                        .expect("a valid header"),
                );
            let _ = request.respond(response);
        }
    });
    Ok(MailSink {
        base_url: format!("http://127.0.0.1:{port}"),
        dir: dir.to_path_buf(),
    })
}

fn handle(
    request: &mut tiny_http::Request,
    dir: &Path,
    seq: &AtomicU32,
    seen: &mut HashMap<String, String>,
    failures: &mut HashMap<String, u32>,
    announce: bool,
) -> (u16, String) {
    let provider = match (request.method(), request.url()) {
        (tiny_http::Method::Post, "/emails") => "resend",
        (tiny_http::Method::Post, "/email") => "postmark",
        (tiny_http::Method::Post, "/webhook") => return webhook(request, dir, seq),
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
    if let Some(id) = seen.get(&key) {
        return (
            200,
            serde_json::json!({ "id": id, "MessageID": id }).to_string(),
        );
    }
    let to = email["to"][0].as_str().unwrap_or_default().to_owned();
    let planned_failures = to
        .split_once("+fail")
        .and_then(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    let failed = failures.entry(key.clone()).or_default();
    if *failed < planned_failures {
        *failed += 1;
        return (500, r#"{"message":"planned failure"}"#.into());
    }
    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("sink-{n:05}");
    let record = serde_json::json!({
        "id": id,
        "provider": provider,
        "idempotency_key": key,
        "authorization": authorization,
        "attempts_refused": *failed,
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
    seen.insert(key, id.clone());
    let answer = match provider {
        "postmark" => serde_json::json!({ "MessageID": id, "ErrorCode": 0, "Message": "OK" }),
        _ => serde_json::json!({ "id": id }),
    };
    (200, answer.to_string())
}

/// A webhook step's POST, kept with its signature headers so tests can verify them.
fn webhook(request: &mut tiny_http::Request, dir: &Path, seq: &AtomicU32) -> (u16, String) {
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
    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
    let record = serde_json::json!({ "provider": "webhook", "headers": headers, "body": body });
    let _ = std::fs::write(
        dir.join(format!("{n:05}.json")),
        serde_json::to_string_pretty(&record).unwrap_or_default(),
    );
    (204, String::new())
}
