//! The crash test: a local Worker is killed with SIGKILL in the middle of a load of lead
//! submissions, restarted on the same state, and must still hold every lead it acknowledged,
//! each once. Leads in flight at the kill may or may not be stored; resubmitting them with
//! their idempotency keys must then store each exactly once.
//!
//! Everything runs on 127.0.0.1 and is bounded in time (well under a minute).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mailsink::MailSink;
use crate::wrangler::{self, Options, Wrangler};
use crate::{Result, dev};

/// `cargo xtask crash`: the crash test alone (after the release builds it needs).
pub fn run_alone() -> Result<()> {
    let tools = crate::tools::ensure_build_tools()?;
    crate::build::all(&tools)?;
    let dir = crate::root().join(format!("target/xtask/crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = crate::mailsink::start(&dir.join("mail"), false)?;
    let result = run(&dir, &sink, None);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

const SITE: &str = "crash";
const ORIGIN: &str = "https://www.example.com";
const THREADS: usize = 8;
/// Every request is bounded: one the dying Worker never answers counts as not acknowledged.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One submission of the load and what became of it.
struct Sent {
    email: String,
    body: Vec<u8>,
    outcome: Outcome,
}

enum Outcome {
    /// A 2xx answer, with the lead id it gave.
    Acknowledged(String),
    /// Another status: the Worker answered, but did not take the lead.
    Refused(u16),
    /// No answer: the connection broke or timed out (the kill, usually).
    Lost,
}

/// Runs the crash test in `dir` (a fresh folder of its own) with the provider stand-in `sink`;
/// `config` is another wrangler configuration than `edge/wrangler.toml`, if the caller needs
/// one. Prints a one-line summary; fails if an acknowledged lead is missing or any is stored
/// twice.
pub fn run(dir: &Path, sink: &MailSink, config: Option<&Path>) -> Result<()> {
    let started = Instant::now();
    let state = dir.join("state");
    wrangler::migrate(&state)?;
    let start = || {
        let port = wrangler::free_port()?;
        Wrangler::start(&Options {
            port,
            state: &state,
            inspector: false,
            vars: dev::local_vars(port, sink, "resend"),
            tmpdir: None,
            config,
        })
    };
    let admin_token = dev::local_secrets()?.admin_token;

    let worker = start()?;
    define_site(&worker.base_url, &admin_token)?;

    // The load: THREADS threads submitting distinct leads until the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (stop, base) = (Arc::clone(&stop), worker.base_url.clone());
            std::thread::spawn(move || load(t, &base, &stop))
        })
        .collect();
    // Somewhere between 1.5 and 3 s in, so runs hit the Worker at different moments.
    let load_for = Duration::from_millis(1500 + u64::from(clock_nanos() % 1500));
    std::thread::sleep(load_for);
    let killed = worker.kill_hard();
    stop.store(true, Ordering::SeqCst);
    killed?;
    let sent: Vec<Sent> = threads
        .into_iter()
        .map(|t| t.join().map_err(|_| "a load thread panicked".to_owned()))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let acknowledged = sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Acknowledged(_)))
        .count();
    let refused = sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Refused(_)))
        .count();
    if acknowledged == 0 {
        return Err(format!(
            "crash test: no lead was acknowledged in {load_for:?} of load; nothing to check"
        ));
    }

    // Restart on the same state (on another port) and see what survived.
    let worker = start()?;
    let api_key = crate::keys::create(
        &worker.base_url,
        &admin_token,
        "crash test",
        &["leads:read".to_owned()],
    )?;
    let stored = stored_leads(&worker.base_url, &api_key)?;
    let by_email: BTreeMap<&str, &Sent> = sent.iter().map(|s| (s.email.as_str(), s)).collect();
    let mut problems = Vec::new();
    let (mut found, mut missing, mut stored_unacknowledged) = (0, 0, 0);
    for s in &sent {
        let ids = stored.get(&s.email).map(Vec::as_slice).unwrap_or_default();
        match (&s.outcome, ids) {
            (Outcome::Acknowledged(id), ids) if ids.contains(id) => found += 1,
            (Outcome::Acknowledged(id), []) => {
                missing += 1;
                problems.push(format!("acknowledged lead {id} ({}) is missing", s.email));
            }
            (Outcome::Acknowledged(id), others) => {
                missing += 1;
                problems.push(format!(
                    "{} was acknowledged as {id} but is stored as {others:?}",
                    s.email
                ));
            }
            (_, []) => {}
            (_, _) => stored_unacknowledged += 1,
        }
    }
    let duplicated: usize = stored.values().map(|ids| ids.len().saturating_sub(1)).sum();
    for (email, ids) in &stored {
        if ids.len() > 1 {
            problems.push(format!("{email} is stored {} times: {ids:?}", ids.len()));
        }
        if !by_email.contains_key(email.as_str()) {
            problems.push(format!("{email} is stored but was never sent"));
        }
    }

    // Retry everything that was sent and not acknowledged, as a client would, with the same
    // idempotency key: a stored lead answers with its id, a lost one is stored now, once.
    let agent = agent();
    let retried: Vec<&Sent> = sent
        .iter()
        .filter(|s| !matches!(s.outcome, Outcome::Acknowledged(_)))
        .collect();
    for s in &retried {
        match submit(&agent, &worker.base_url, &s.body) {
            Outcome::Acknowledged(id) => {
                if let Some(before) = stored.get(&s.email).and_then(|ids| ids.first())
                    && *before != id
                {
                    problems.push(format!(
                        "resubmitting {} gave {id}, but it was stored as {before}",
                        s.email
                    ));
                }
            }
            Outcome::Refused(status) => {
                problems.push(format!("resubmitting {} was refused ({status})", s.email));
            }
            Outcome::Lost => problems.push(format!("resubmitting {} got no answer", s.email)),
        }
    }
    let after_retry = stored_leads(&worker.base_url, &api_key)?;
    let duplicated_after_retry: usize = after_retry
        .values()
        .map(|ids| ids.len().saturating_sub(1))
        .sum();
    if duplicated_after_retry > duplicated {
        problems.push(format!(
            "resubmitting the unacknowledged leads stored {} duplicates",
            duplicated_after_retry - duplicated
        ));
    }
    if after_retry.len() != sent.len() {
        problems.push(format!(
            "after resubmitting, {} of {} submissions are stored",
            after_retry.len(),
            sent.len()
        ));
    }
    drop(worker);

    eprintln!(
        "xtask: crash test: {} sent, {} acknowledged, {} found after SIGKILL + restart, {} \
         stored unacknowledged, {} duplicated, {} missing ({} refused, {} resubmitted with their \
         keys and stored once; killed after {:.1}s of load, {:.0}s in all)",
        thousands(sent.len()),
        thousands(acknowledged),
        thousands(found),
        thousands(stored_unacknowledged),
        thousands(duplicated),
        thousands(missing),
        thousands(refused),
        thousands(retried.len()),
        load_for.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    if problems.is_empty() {
        Ok(())
    } else {
        for problem in problems.iter().take(20) {
            eprintln!("xtask: crash test: {problem}");
        }
        Err(format!(
            "crash test: {} problems after SIGKILL + restart",
            problems.len()
        ))
    }
}

fn define_site(base: &str, admin_token: &str) -> Result<()> {
    // As tests/src/lib.rs `site_definition`.
    // The load sends no render token and all at once: the spam screening is off, so every lead
    // of the load is an ordinary one, followed up like any other.
    let site = json!({
        "name": "Crash test",
        "allowed_origins": [ORIGIN],
        "consent_text": "You may contact me about my request.",
        "consent_version": "v1",
        "phone": "+1 555 010 0199",
        "min_fill_seconds": 0,
        "duplicate_window_hours": 0,
    });
    ureq::put(format!("{base}/v1/admin/sites/{SITE}"))
        .header("authorization", format!("Bearer {admin_token}"))
        .send_json(&site)
        .map_err(|e| format!("crash test: defining the site: {e}"))?;
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// One load thread: distinct leads, one after another, until `stop`.
fn load(thread: usize, base: &str, stop: &AtomicBool) -> Vec<Sent> {
    let agent = agent();
    let mut sent = Vec::new();
    for n in 0usize.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let email = format!("crash-{thread}-{n}@example.com");
        let body = json!({
            "site_id": SITE,
            "email": email,
            "name": "Ada Lovelace",
            "company": "Analytical Engines",
            "message": "Please send me the brochure.",
            "consent": { "given": true, "text_version": "v1" },
            "page_url": "https://www.example.com/pricing",
            "idempotency_key": format!("crash-{:08}-{thread:02}-{n:06}", std::process::id()),
            "answers": {
                "timeline": "3_months",
                "role": "influencer",
                "company_size": "11_50",
                "follow_up": "send_information",
            },
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        match try_submit(&agent, base, &body) {
            // Refused at connect: the Worker is gone and this request never reached it.
            Err(NotSent) => break,
            Ok(outcome) => sent.push(Sent {
                email,
                body,
                outcome,
            }),
        }
    }
    sent
}

struct NotSent;

fn submit(agent: &ureq::Agent, base: &str, body: &[u8]) -> Outcome {
    try_submit(agent, base, body).unwrap_or(Outcome::Lost)
}

fn try_submit(agent: &ureq::Agent, base: &str, body: &[u8]) -> Result<Outcome, NotSent> {
    let answer = agent
        .post(format!("{base}/v1/leads"))
        .header("content-type", "application/json")
        .header("origin", ORIGIN)
        .send(body);
    let mut answer = match answer {
        Ok(answer) => answer,
        Err(ureq::Error::ConnectionFailed) => return Err(NotSent),
        Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(NotSent);
        }
        Err(_) => return Ok(Outcome::Lost),
    };
    let status = answer.status().as_u16();
    if !(200..300).contains(&status) {
        return Ok(Outcome::Refused(status));
    }
    // A 2xx whose body cannot be read was never fully received: not acknowledged.
    let id = answer
        .body_mut()
        .read_json::<Value>()
        .ok()
        .and_then(|b| b["id"].as_str().map(str::to_owned));
    Ok(id.map_or(Outcome::Lost, Outcome::Acknowledged))
}

/// Every lead of the site (spam included), by email: their ids, through the Sales API.
fn stored_leads(base: &str, api_key: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let agent = agent();
    let mut leads: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for spam in [false, true] {
        let mut cursor: Option<String> = None;
        loop {
            let mut request = agent
                .get(format!("{base}/v1/leads"))
                .query("site", SITE)
                .query("limit", "200")
                .query("spam", if spam { "true" } else { "false" })
                .header("authorization", format!("Bearer {api_key}"));
            if let Some(cursor) = &cursor {
                request = request.query("cursor", cursor);
            }
            let mut answer = request
                .call()
                .map_err(|e| format!("crash test: listing leads: {e}"))?;
            let page: Value = answer
                .body_mut()
                .read_json()
                .map_err(|e| format!("crash test: reading a page of leads: {e}"))?;
            if answer.status() != 200 {
                return Err(format!("crash test: listing leads: {page}"));
            }
            for lead in page["leads"].as_array().into_iter().flatten() {
                let (Some(id), Some(email)) = (lead["id"].as_str(), lead["email"].as_str()) else {
                    return Err(format!(
                        "crash test: a listed lead without id or email: {lead}"
                    ));
                };
                // A lead listed twice (pages overlapping) is the listing's fault, not storage's.
                if seen.insert(id.to_owned()) {
                    leads
                        .entry(email.to_owned())
                        .or_default()
                        .push(id.to_owned());
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(leads)
}

fn clock_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

/// 1234567 → "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234), "1,234");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
