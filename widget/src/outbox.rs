//! Submissions not yet delivered, kept in the host site's `localStorage` so that a lead survives
//! going offline, a failing network or the page being closed mid-send. An entry is written
//! before the first attempt and removed on the edge's definitive answer; what is left is sent
//! again when the browser comes back online and on the next page load with the widget; one
//! refused for its Turnstile token (expired while it waited) is sent with a fresh challenge's.
//!
//! One key per submission (`leadglue:outbox:{site}:{idempotency key}`), so that tabs never
//! overwrite each other's entries; every copy carries the same idempotency key, so however many
//! tabs send one, the edge stores one lead.

use leadglue_shared::codec::{self, FromJson, ObjectWriter, ToJson, Value};
use leadglue_shared::spam::{self, RENDER_TOKEN_MAX_AGE_MS};

use crate::api::{self, SendError};
use crate::turnstile;

/// Entries older than this are dropped unsent: a visitor who asked a week ago should not be
/// surprised by a first reply now. (A render token that would be spent before then is replaced
/// when the entry is sent: [`needs_late_token`].)
const KEEP_MS: u64 = RENDER_TOKEN_MAX_AGE_MS as u64;

const PREFIX: &str = "leadglue:outbox:";

/// What it takes to send a submission again: where to, the body as first sent, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub api: String,
    pub body: String,
    /// Milliseconds since the epoch.
    pub at: u64,
}

impl ToJson for Entry {
    fn write_json(&self, out: &mut String) {
        ObjectWriter::new(out)
            .member("api", &self.api)
            .member("body", &self.body)
            .member("at", &self.at)
            .end();
    }
}

impl FromJson for Entry {
    fn from_value(value: &Value) -> Option<Self> {
        let Value::Object(members) = value else {
            return None;
        };
        let get = |key: &str| members.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        Some(Entry {
            api: String::from_value(get("api")?)?,
            body: String::from_value(get("body")?)?,
            at: u64::from_value(get("at")?)?,
        })
    }
}

/// Whether an entry written at `at` is too old to send at `now`.
fn expired(at: u64, now: u64) -> bool {
    now.saturating_sub(at) > KEEP_MS
}

fn storage_key(site_id: &str, key: &str) -> String {
    format!("{PREFIX}{site_id}:{key}")
}

/// The idempotency key of an entry of `site_id` stored under `name`, if it is one. Keys are hex,
/// so a site whose id extends this one's (`a` and `a:b`) is never taken for it.
fn key_of<'a>(name: &'a str, site_id: &str) -> Option<&'a str> {
    let key = name
        .strip_prefix(PREFIX)?
        .strip_prefix(site_id)?
        .strip_prefix(':')?;
    (!key.is_empty() && !key.contains(':')).then_some(key)
}

fn storage() -> Option<web_sys::Storage> {
    leptos::prelude::window().local_storage().ok().flatten()
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// Keeps a submission until [`remove`]. Storage can be unavailable (privacy modes, a full
/// quota): the submission is then only sent from this page, as before.
pub fn put(site_id: &str, key: &str, api: &str, body: &str) {
    let entry = Entry {
        api: api.to_owned(),
        body: body.to_owned(),
        at: now(),
    };
    if let Some(s) = storage() {
        let _ = s.set_item(&storage_key(site_id, key), &entry.to_json());
    }
}

pub fn remove(site_id: &str, key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(&storage_key(site_id, key));
    }
}

/// What became of a kept submission sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The edge has it: no longer kept.
    Delivered,
    /// The edge refused it for good (or it was unreadable or too old): no longer kept.
    Dropped,
    /// No answer: kept, for the next time.
    Unreachable,
    /// Its Turnstile token was refused (they live five minutes, and this one waited longer):
    /// kept until a fresh challenge gives another ([`send_with_token`]).
    NeedsChallenge,
}

async fn send(key: &str, entry: &Entry, body: &str) -> Resent {
    match api::post(&entry.api, key, body).await {
        Ok(_) => Resent::Delivered,
        Err(SendError::Unreachable(_)) => Resent::Unreachable,
        Err(SendError::Invalid(problem))
            if problem.errors.iter().any(|e| e.field == turnstile::FIELD) =>
        {
            Resent::NeedsChallenge
        }
        Err(_) => Resent::Dropped,
    }
}

fn read(s: &web_sys::Storage, name: &str) -> Option<Entry> {
    s.get_item(name)
        .ok()
        .flatten()
        .and_then(|text| codec::parse(&text))
        .and_then(|v| Entry::from_value(&v))
        .filter(|e| !expired(e.at, now()))
}

/// What a kept submission is sent again with, besides what it was first sent with.
#[derive(Clone, Copy)]
enum Again<'a> {
    /// Nothing new, unless its render token will not do ([`needs_late_token`]): then a late
    /// one, after the site's minimum fill time.
    AsKept { min_fill_seconds: u32 },
    /// A fresh challenge's Turnstile token in place of its own.
    Challenge(&'a str),
}

/// Whether a kept body needs a late render token to be taken at `now` (ms): it was kept
/// without one (the edge was unreachable when the form was shown and sent), or its token will
/// be too old by the time it arrives (the form stood open for days before it was sent).
fn needs_late_token(body: &str, now: u64) -> bool {
    let Some(Value::Object(members)) = codec::parse(body) else {
        return false;
    };
    let token = members
        .iter()
        .find(|(k, _)| k == RENDER_TOKEN)
        .and_then(|(_, v)| String::from_value(v));
    !spam::still_good(token.as_deref(), now as i64)
}

/// The submission's member that holds its render token.
const RENDER_TOKEN: &str = "render_token";

/// Sends kept submission `key` of `site_id` again ([`Again`]). Forgets it once the edge has it
/// or refused it for good.
async fn resend(s: &web_sys::Storage, site_id: &str, key: &str, again: Again<'_>) -> Resent {
    let name = storage_key(site_id, key);
    let resent = match read(s, &name) {
        Some(entry) => {
            let body = match again {
                Again::AsKept { .. } if !needs_late_token(&entry.body, now()) => {
                    Ok(entry.body.clone())
                }
                Again::AsKept { min_fill_seconds } => {
                    match api::late_render_token(&entry.api, site_id, min_fill_seconds).await {
                        Some(token) => codec::with_member(&entry.body, RENDER_TOKEN, &token)
                            .ok_or(Resent::Dropped),
                        None => Err(Resent::Unreachable),
                    }
                }
                Again::Challenge(token) => {
                    codec::with_member(&entry.body, turnstile::FIELD, token).ok_or(Resent::Dropped)
                }
            };
            match body {
                Ok(body) => send(key, &entry, &body).await,
                Err(resent) => resent,
            }
        }
        None => Resent::Dropped,
    };
    if matches!(resent, Resent::Delivered | Resent::Dropped) {
        let _ = s.remove_item(&name);
    }
    resent
}

/// Sends, once each, the site's kept submissions other than `except` (the one this page is
/// sending itself), dropping the expired and unreadable ones and those the edge answered for
/// good. Returns the keys of those that need a fresh Turnstile challenge.
pub async fn flush(site_id: String, except: String, min_fill_seconds: u32) -> Vec<String> {
    let mut waiting = Vec::new();
    let Some(s) = storage() else {
        return waiting;
    };
    let names: Vec<String> = (0..s.length().unwrap_or(0))
        .filter_map(|i| s.key(i).ok().flatten())
        .collect();
    for name in names {
        let Some(key) = key_of(&name, &site_id).filter(|k| *k != except) else {
            continue;
        };
        let again = Again::AsKept { min_fill_seconds };
        if resend(&s, &site_id, key, again).await == Resent::NeedsChallenge {
            waiting.push(key.to_owned());
        }
    }
    waiting
}

/// Sends kept submission `key` (one [`flush`] found waiting for a challenge) again, with the
/// Turnstile `token` of a fresh challenge in place of its own.
pub async fn send_with_token(site_id: &str, key: &str, token: &str) -> Resent {
    match storage() {
        Some(s) => resend(&s, site_id, key, Again::Challenge(token)).await,
        None => Resent::Dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_as_written() {
        let entry = Entry {
            api: "https://edge.example".into(),
            body: r#"{"site_id":"demo","idempotency_key":"00ff"}"#.into(),
            at: 1_764_190_000_123,
        };
        assert_eq!(Entry::from_json(&entry.to_json()), Some(entry));
        assert_eq!(Entry::from_json(r#"{"api":"x","body":"y"}"#), None);
        assert_eq!(Entry::from_json(r#"{"api":"x","body":"y","at":1.5}"#), None);
    }

    #[test]
    fn entries_expire_after_seven_days() {
        let day = 24 * 3600 * 1000;
        assert!(!expired(0, 7 * day));
        assert!(expired(0, 7 * day + 1));
        // A clock that went back is no reason to drop a lead.
        assert!(!expired(10 * day, day));
    }

    #[test]
    fn a_kept_body_gets_a_late_token_when_it_has_none_or_its_own_is_nearly_spent() {
        let day = 24 * 3_600_000;
        let issued = 1_795_774_157_480u64;
        let body = format!(r#"{{"site_id":"demo","render_token":"v1.{issued}.x"}}"#);
        assert!(!needs_late_token(&body, issued + 6 * day));
        assert!(needs_late_token(&body, issued + 7 * day - 1_800_000));
        assert!(needs_late_token(
            r#"{"site_id":"demo","render_token":null}"#,
            issued
        ));
        assert!(needs_late_token(r#"{"site_id":"demo"}"#, issued));
        assert!(
            !needs_late_token("not json", issued),
            "unreadable: sent as kept"
        );
    }

    #[test]
    fn keys_belong_to_one_site() {
        assert_eq!(key_of("leadglue:outbox:demo:00ff", "demo"), Some("00ff"));
        assert_eq!(key_of("leadglue:outbox:demo:b:00ff", "demo"), None);
        assert_eq!(key_of("leadglue:outbox:demo:00ff", "dem"), None);
        assert_eq!(key_of("leadglue:outbox:demo:", "demo"), None);
        assert_eq!(key_of("leadglue:first-touch:demo", "demo"), None);
        assert_eq!(
            key_of(&storage_key("a:b", "00ff"), "a:b"),
            Some("00ff"),
            "site ids may hold a colon"
        );
    }
}
