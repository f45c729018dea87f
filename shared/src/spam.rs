//! Telling people from bots, in layers, without ever turning a person away.
//!
//! - **Honeypot** ([`crate::LeadSubmission::spam_reason`]): a field people never see.
//! - **Fill time** ([`render_token`], [`fill_time`]): when the widget renders a form it asks the
//!   edge for a token that signs the site and the moment. A submission that comes back sooner
//!   than the site's minimum fill time, or without a genuine token, is accepted quietly but kept
//!   as spam: a bot learns nothing, a person who was unusually quick loses nothing (sales can
//!   still find the lead with `spam=true`).
//! - **Turnstile** ([`turnstile_verdict`]): Cloudflare's challenge, for sites that turn it on.
//!   A failed challenge is refused openly (the visitor can try again), because it is a check
//!   people see.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How long a render token stays good: a visitor may leave a tab open for days. Older tokens
/// count as missing.
pub const RENDER_TOKEN_MAX_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Clocks of different edge locations disagree a little: a token "from the future" by less than
/// this is read as issued now.
const CLOCK_SKEW_MS: i64 = 60_000;

/// The longest render token a client may send (ours are about 60 characters).
pub const RENDER_TOKEN_MAX_LEN: usize = 128;

/// Turnstile tokens are at most 2048 characters (Cloudflare's documentation).
pub const TURNSTILE_TOKEN_MAX_LEN: usize = 2048;

type HmacSha256 = Hmac<Sha256>;

/// The key render tokens are signed with, derived from another secret under its own label, so
/// neither signature can stand in for the other.
pub fn render_key(secret: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"leadglue render tokens v1");
    mac.finalize().into_bytes().to_vec()
}

/// A render token for `site_id`, issued at `issued_ms`: `v1.{issued_ms}.{tag}`, the tag being
/// HMAC-SHA256 over the purpose, site and time (base64url, truncated to 128 bits).
pub fn render_token(secret: &[u8], site_id: &str, issued_ms: i64) -> String {
    let tag = render_mac(secret, site_id, issued_ms)
        .finalize()
        .into_bytes();
    format!("v1.{issued_ms}.{}", URL_SAFE_NO_PAD.encode(&tag[..16]))
}

fn render_mac(secret: &[u8], site_id: &str, issued_ms: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"render:");
    mac.update(site_id.as_bytes());
    mac.update(b"\n");
    mac.update(issued_ms.to_string().as_bytes());
    mac
}

/// A token's issue time and tag, as written (not verified).
fn parts(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix("v1.")?.split_once('.')
}

/// When a render token says it was issued: unverified (only the edge holds the key).
fn claimed_issue_ms(token: &str) -> Option<i64> {
    parts(token)?.0.parse().ok()
}

/// How long before its end a client stops sending a render token it holds: time for the
/// request to arrive (and retry).
const SPENT_MARGIN_MS: i64 = 3_600_000;

/// Whether a client's render token (unverified) will still be good when a request it sends at
/// `now_ms` arrives. `false` for none: the client then fetches a late one.
pub fn still_good(token: Option<&str>, now_ms: i64) -> bool {
    token
        .and_then(claimed_issue_ms)
        .is_some_and(|at| now_ms - at <= RENDER_TOKEN_MAX_AGE_MS - SPENT_MARGIN_MS)
}

/// When a genuine token for `site_id` was issued; `None` for anything else (forged, for another
/// site, malformed).
fn issued_at(secret: &[u8], site_id: &str, token: &str) -> Option<i64> {
    let (issued, tag) = parts(token)?;
    // Only the canonical spelling, so each moment has exactly one token.
    let issued_ms: i64 = issued.parse().ok()?;
    if issued_ms.to_string() != issued {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    // verify_truncated_left compares in constant time.
    render_mac(secret, site_id, issued_ms)
        .verify_truncated_left(&tag)
        .ok()
        .filter(|()| tag.len() == 16)
        .map(|()| issued_ms)
}

/// The fill-time check: a spam reason, or `None` for a submission that took long enough.
/// `min_fill_ms` is the site's setting; 0 turns the check off (for sites that post leads from
/// their own servers, without the widget).
pub fn fill_time(
    secret: &[u8],
    site_id: &str,
    token: Option<&str>,
    now_ms: i64,
    min_fill_ms: i64,
) -> Option<&'static str> {
    if min_fill_ms <= 0 {
        return None;
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Some("no_render_token");
    };
    let Some(issued_ms) = issued_at(secret, site_id, token) else {
        return Some("bad_render_token");
    };
    let elapsed = now_ms - issued_ms;
    if !(-CLOCK_SKEW_MS..=RENDER_TOKEN_MAX_AGE_MS).contains(&elapsed) {
        Some("bad_render_token")
    } else if elapsed < min_fill_ms {
        Some("too_fast")
    } else {
        None
    }
}

/// What the screening decided about one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screening {
    /// Why it is kept as spam (the honeypot first, then the fill time), if it is.
    pub spam: Option<&'static str>,
    /// The window within which an earlier lead with the same email is updated instead of a new
    /// one created: the site's, except that spam never merges into a person's lead.
    pub merge_within_hours: Option<u32>,
}

/// Screens a submission by the site's settings (`min_fill_seconds`, `duplicate_window_hours`;
/// 0 turns either off). `secret` is the render tokens' key.
pub fn screen(
    lead: &crate::LeadSubmission,
    secret: &[u8],
    now_ms: i64,
    min_fill_seconds: u32,
    duplicate_window_hours: u32,
) -> Screening {
    let spam = lead.spam_reason().or_else(|| {
        fill_time(
            secret,
            &lead.site_id,
            lead.render_token.as_deref(),
            now_ms,
            i64::from(min_fill_seconds) * 1000,
        )
    });
    Screening {
        spam,
        merge_within_hours: (spam.is_none() && duplicate_window_hours > 0)
            .then_some(duplicate_window_hours),
    }
}

/// What Cloudflare's siteverify answers (the parts we read).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SiteVerify {
    pub success: bool,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default, rename = "error-codes")]
    pub error_codes: Vec<String>,
}

/// Why a Turnstile challenge did not pass, as the visitor should hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnstileFailure {
    /// No token: the challenge was not completed.
    Missing,
    /// Cloudflare refused it (expired, already used, invalid), or it was solved on another
    /// host than the page that sent the lead.
    Refused(String),
}

/// Judges a siteverify answer for a submission from `expected_host` (the host of the page's
/// origin; `None` when the request carried no origin, e.g. from a server).
pub fn turnstile_verdict(
    answer: &SiteVerify,
    expected_host: Option<&str>,
) -> Result<(), TurnstileFailure> {
    if !answer.success {
        let codes = if answer.error_codes.is_empty() {
            "unknown".to_owned()
        } else {
            answer.error_codes.join(", ")
        };
        return Err(TurnstileFailure::Refused(codes));
    }
    match (expected_host, answer.hostname.as_deref()) {
        (Some(expected), Some(solved)) if !expected.eq_ignore_ascii_case(solved) => Err(
            TurnstileFailure::Refused(format!("hostname-mismatch ({solved})")),
        ),
        (Some(_), None) => Err(TurnstileFailure::Refused("hostname-missing".into())),
        _ => Ok(()),
    }
}

/// The host of an origin (`https://www.example.com:8443` → `www.example.com`).
pub fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://")?.1;
    let host = if let Some(v6) = rest.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    } else {
        rest.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"a secret of thirty-two characters!";
    const MIN: i64 = 3_000;

    #[test]
    fn a_client_reads_when_its_token_was_issued() {
        assert_eq!(
            claimed_issue_ms(&render_token(SECRET, "demo", 1_795_774_157_480)),
            Some(1_795_774_157_480)
        );
        assert_eq!(claimed_issue_ms("v2.1.x"), None);
        assert_eq!(claimed_issue_ms("v1.soon.x"), None);
        let day = 24 * 3_600_000;
        let token = render_token(SECRET, "demo", 1_000 * day);
        assert!(still_good(Some(&token), 1_006 * day));
        assert!(
            !still_good(Some(&token), 1_007 * day - 1_800_000),
            "nearly spent"
        );
        assert!(!still_good(None, 1_000 * day));
    }

    #[test]
    fn a_token_older_than_the_minimum_passes_and_a_fresh_one_is_too_fast() {
        let token = render_token(SECRET, "demo", 1_000_000);
        assert_eq!(
            fill_time(SECRET, "demo", Some(&token), 1_003_000, MIN),
            None
        );
        assert_eq!(
            fill_time(SECRET, "demo", Some(&token), 1_002_999, MIN),
            Some("too_fast")
        );
    }

    #[test]
    fn missing_forged_foreign_and_stale_tokens_are_marked() {
        let now = 10_000_000_000;
        let token = render_token(SECRET, "demo", now - 5_000);
        assert_eq!(
            fill_time(SECRET, "demo", None, now, MIN),
            Some("no_render_token")
        );
        assert_eq!(
            fill_time(SECRET, "demo", Some(""), now, MIN),
            Some("no_render_token")
        );
        assert_eq!(
            fill_time(SECRET, "other", Some(&token), now, MIN),
            Some("bad_render_token")
        );
        assert_eq!(
            fill_time(b"another secret", "demo", Some(&token), now, MIN),
            Some("bad_render_token")
        );
        let stale = render_token(SECRET, "demo", now - RENDER_TOKEN_MAX_AGE_MS - 1);
        assert_eq!(
            fill_time(SECRET, "demo", Some(&stale), now, MIN),
            Some("bad_render_token")
        );
        let future = render_token(SECRET, "demo", now + 2 * CLOCK_SKEW_MS);
        assert_eq!(
            fill_time(SECRET, "demo", Some(&future), now, MIN),
            Some("bad_render_token")
        );
        // Another spelling of the same moment is not the token that was issued.
        let padded = token.replacen("v1.", "v1.0", 1);
        assert_eq!(
            fill_time(SECRET, "demo", Some(&padded), now, MIN),
            Some("bad_render_token")
        );
    }

    #[test]
    fn a_site_without_a_minimum_checks_nothing() {
        assert_eq!(fill_time(SECRET, "demo", None, 0, 0), None);
        assert_eq!(fill_time(SECRET, "demo", Some("junk"), 0, 0), None);
    }

    #[test]
    fn screening_takes_the_honeypot_first_and_never_merges_spam() {
        let now = 10_000_000;
        let mut lead: crate::LeadSubmission = serde_json::from_value(serde_json::json!({
            "site_id": "demo", "email": "ada@example.com", "name": "Ada",
            "consent": { "given": true, "text_version": "v1" },
            "idempotency_key": "0123456789abcdef",
        }))
        .unwrap();
        lead.render_token = Some(render_token(SECRET, "demo", now - 5_000));
        assert_eq!(
            screen(&lead, SECRET, now, 3, 24),
            Screening {
                spam: None,
                merge_within_hours: Some(24)
            }
        );
        assert_eq!(screen(&lead, SECRET, now, 3, 0).merge_within_hours, None);
        assert_eq!(
            screen(&lead, SECRET, now, 10, 24),
            Screening {
                spam: Some("too_fast"),
                merge_within_hours: None
            }
        );
        lead.honeypot = Some("http://spam.example".into());
        assert_eq!(screen(&lead, SECRET, now, 10, 24).spam, Some("honeypot"));
        lead.honeypot = None;
        lead.render_token = None;
        assert_eq!(
            screen(&lead, SECRET, now, 0, 24).spam,
            None,
            "fill time off"
        );
    }

    #[test]
    fn turnstile_needs_success_and_the_pages_host() {
        let ok = SiteVerify {
            success: true,
            hostname: Some("www.example.com".into()),
            error_codes: vec![],
        };
        assert_eq!(turnstile_verdict(&ok, Some("www.example.com")), Ok(()));
        assert_eq!(turnstile_verdict(&ok, None), Ok(()));
        assert!(matches!(
            turnstile_verdict(&ok, Some("evil.example")),
            Err(TurnstileFailure::Refused(r)) if r.contains("hostname-mismatch")
        ));
        let used = SiteVerify {
            success: false,
            hostname: None,
            error_codes: vec!["timeout-or-duplicate".into()],
        };
        assert_eq!(
            turnstile_verdict(&used, Some("www.example.com")),
            Err(TurnstileFailure::Refused("timeout-or-duplicate".into()))
        );
    }

    #[test]
    fn origin_hosts() {
        assert_eq!(
            origin_host("https://www.example.com:8443"),
            Some("www.example.com")
        );
        assert_eq!(origin_host("http://127.0.0.1"), Some("127.0.0.1"));
        assert_eq!(origin_host("http://[::1]:80"), Some("::1"));
        assert_eq!(origin_host("null"), None);
    }

    proptest! {
        /// Any change to a genuine token makes it count as not genuine; no input panics.
        #[test]
        fn tampered_tokens_never_pass(issued in 0i64..4_000_000_000_000, at in 0usize..64, byte in any::<u8>()) {
            let token = render_token(SECRET, "demo", issued);
            let mut bytes = token.clone().into_bytes();
            let at = at % bytes.len();
            prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            let now = issued + 10_000;
            prop_assert_eq!(fill_time(SECRET, "demo", Some(&token), now, MIN), None);
            prop_assert_ne!(fill_time(SECRET, "demo", Some(&tampered), now, MIN), None);
        }

        #[test]
        fn arbitrary_text_is_never_a_token(text in any::<String>()) {
            prop_assert!(fill_time(SECRET, "demo", Some(&text), 1_000_000, MIN).is_some());
        }
    }
}
