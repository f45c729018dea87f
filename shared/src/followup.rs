//! Follow-up: which messages a lead gets and when, how a failed send is retried, what each
//! message says, and the signed token behind every unsubscribe link. Pure: the edge supplies the
//! clock, the secret and the sending.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::score::Grade;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What a step sends. Each template is friendly and informative, never a hard sell, and
/// always offers the site's phone number and an unsubscribe link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Sent on capture: thanks, what they asked about, how to reach us.
    Welcome,
    /// A few days later: did the information help?
    CheckIn,
    /// Useful material, no ask.
    Resources,
    /// The last note of a sequence: we'll stop writing; call any time.
    LastNote,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Welcome => "welcome",
            Template::CheckIn => "check_in",
            Template::Resources => "resources",
            Template::LastNote => "last_note",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "welcome" => Some(Template::Welcome),
            "check_in" => Some(Template::CheckIn),
            "resources" => Some(Template::Resources),
            "last_note" => Some(Template::LastNote),
            _ => None,
        }
    }
}

/// One step of a sequence: a template, so many days after capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub delay_days: u32,
    pub template: Template,
}

/// The default sequences: hot leads get the immediate reply (sales calls them); warm ones
/// days 0, 3 and 10; cold ones days 0, 14 and 45.
pub fn default_sequence(grade: Grade) -> Vec<Step> {
    let step = |delay_days, template| Step {
        delay_days,
        template,
    };
    match grade {
        Grade::Hot => vec![step(0, Template::Welcome)],
        Grade::Warm => vec![
            step(0, Template::Welcome),
            step(3, Template::CheckIn),
            step(10, Template::Resources),
        ],
        Grade::Cold => vec![
            step(0, Template::Welcome),
            step(14, Template::Resources),
            step(45, Template::LastNote),
        ],
    }
}

/// When each step of `sequence` is due, for a lead captured at `captured_ms` (Unix ms).
pub fn schedule(sequence: &[Step], captured_ms: i64) -> Vec<(u32, Template, i64)> {
    sequence
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            (
                index,
                s.template,
                captured_ms + i64::from(s.delay_days) * DAY_MS,
            )
        })
        .collect()
}

/// Attempts before a step is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 6;

/// How long to wait after failed attempt number `attempt` (1-based): one minute, doubling, at
/// most an hour; `None` once [`MAX_ATTEMPTS`] have failed.
pub fn retry_delay_ms(attempt: u32) -> Option<i64> {
    (attempt < MAX_ATTEMPTS).then(|| (60_000i64 << attempt.saturating_sub(1).min(6)).min(3_600_000))
}

/// What a message needs to know about the lead and the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContext<'a> {
    pub site_name: &'a str,
    pub site_phone: Option<&'a str>,
    pub booking_url: Option<&'a str>,
    pub lead_name: &'a str,
    pub lead_message: Option<&'a str>,
    pub unsubscribe_url: &'a str,
}

/// A message ready for a provider: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders a template. Every value from the lead or the site is escaped in the HTML part, and
/// the subject is kept to one line (it becomes a header).
pub fn render(template: Template, cx: &MessageContext<'_>) -> Rendered {
    let first_name = cx.lead_name.split_whitespace().next().unwrap_or_default();
    let greeting = if first_name.is_empty() {
        "Hello,".to_owned()
    } else {
        format!("Hello {first_name},")
    };
    let (subject, paragraphs): (String, Vec<String>) = match template {
        Template::Welcome => (
            format!("Thanks for getting in touch with {}", cx.site_name),
            vec![
                format!(
                    "Thank you for your interest in {}. We have your request and a real person \
                     will read it.",
                    cx.site_name
                ),
                match cx.lead_message {
                    Some(m) => {
                        format!("You asked: \u{201c}{m}\u{201d}. We'll answer that directly.")
                    }
                    None => "We'll send you what you asked for shortly.".to_owned(),
                },
            ],
        ),
        Template::CheckIn => (
            format!("Did that help? A quick note from {}", cx.site_name),
            vec![
                "A few days ago you asked us for information. We hope it was useful.".to_owned(),
                "If anything was unclear, reply to this email and we'll explain.".to_owned(),
            ],
        ),
        Template::Resources => (
            format!("A few resources from {}", cx.site_name),
            vec![
                "Here are the guides our customers find most useful when they are weighing \
                 their options. No strings attached."
                    .to_owned(),
            ],
        ),
        Template::LastNote => (
            format!("Our last note, from {}", cx.site_name),
            vec![
                "This is the last email in this series: we won't keep writing unless you ask us \
                 to."
                .to_owned(),
                "If your plans change, we're here.".to_owned(),
            ],
        ),
    };
    let mut closing = Vec::new();
    if let Some(phone) = cx.site_phone {
        closing.push(format!(
            "Questions, or ready to talk? Call us at {phone}: we're happy to help."
        ));
    }
    if let Some(url) = cx.booking_url {
        closing.push(format!("Or book a time that suits you: {url}"));
    }

    let mut text = format!("{greeting}\n\n");
    for p in paragraphs.iter().chain(&closing) {
        text.push_str(p);
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "The {} team\n\n--\nYou are receiving this because you asked {} for information.\nUnsubscribe: {}\n",
        cx.site_name, cx.site_name, cx.unsubscribe_url
    ));

    let esc = |s: &str| html_escape::encode_safe(s).into_owned();
    let attr = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#1f2933\"><p>{}</p>",
        esc(&greeting)
    );
    for p in &paragraphs {
        html.push_str(&format!("<p>{}</p>", esc(p)));
    }
    if let Some(phone) = cx.site_phone {
        let tel: String = phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        html.push_str(&format!(
            "<p>Questions, or ready to talk? Call us at <a href=\"tel:{}\">{}</a>: we're happy to help.</p>",
            attr(&tel),
            esc(phone)
        ));
    }
    if let Some(url) = cx.booking_url {
        html.push_str(&format!(
            "<p>Or <a href=\"{}\">book a time that suits you</a>.</p>",
            attr(url)
        ));
    }
    html.push_str(&format!(
        "<p>The {} team</p><hr><p style=\"font-size:12px;color:#52606d\">You are receiving this because you asked {} for information. <a href=\"{}\">Unsubscribe</a></p></body></html>",
        esc(cx.site_name),
        esc(cx.site_name),
        attr(cx.unsubscribe_url)
    ));
    Rendered {
        subject: one_line(&subject),
        text,
        html,
    }
}

/// Header-safe: control characters (CR and LF among them) become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

type HmacSha256 = Hmac<Sha256>;

/// The opaque token in a lead's unsubscribe link: the lead id and an HMAC-SHA256 of it under
/// the site-wide secret, base64url. Nothing else is needed to honour it, so a one-click POST from
/// a mail client works with no login or cookie.
pub fn unsubscribe_token(secret: &[u8], lead_id: &str) -> String {
    let mac = mac(secret, lead_id);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(lead_id),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The lead id behind a token, if the token is genuine.
pub fn verify_unsubscribe_token(secret: &[u8], token: &str) -> Option<String> {
    let (id, mac) = token.split_once('.')?;
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let mut expected = HmacSha256::new_from_slice(secret).ok()?;
    expected.update(b"unsubscribe:");
    expected.update(id.as_bytes());
    // verify_slice compares in constant time.
    expected.verify_slice(&mac).ok().map(|()| id)
}

fn mac(secret: &[u8], lead_id: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"unsubscribe:");
    mac.update(lead_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn cx<'a>(name: &'a str, message: Option<&'a str>) -> MessageContext<'a> {
        MessageContext {
            site_name: "Northwind",
            site_phone: Some("+1 555 010 0199"),
            booking_url: Some("https://cal.example/northwind?a=1&b=2"),
            lead_name: name,
            lead_message: message,
            unsubscribe_url: "https://edge.example/v1/unsubscribe/abc.def",
        }
    }

    #[rstest]
    #[case(Grade::Hot, &[0])]
    #[case(Grade::Warm, &[0, 3, 10])]
    #[case(Grade::Cold, &[0, 14, 45])]
    fn default_sequences_by_grade(#[case] grade: Grade, #[case] days: &[i64]) {
        let due: Vec<i64> = schedule(&default_sequence(grade), 1_000)
            .into_iter()
            .map(|(_, _, at)| (at - 1_000) / DAY_MS)
            .collect();
        assert_eq!(due, days);
        assert_eq!(default_sequence(grade)[0].template, Template::Welcome);
    }

    #[rstest]
    #[case(1, Some(60_000))]
    #[case(2, Some(120_000))]
    #[case(5, Some(960_000))]
    #[case(6, None)]
    fn retries_back_off_then_stop(#[case] attempt: u32, #[case] delay: Option<i64>) {
        assert_eq!(retry_delay_ms(attempt), delay);
    }

    #[test]
    fn the_welcome_email_invites_a_call_and_offers_unsubscribing() {
        let m = render(Template::Welcome, &cx("Ada Lovelace", Some("Pricing?")));
        assert_eq!(m.subject, "Thanks for getting in touch with Northwind");
        assert!(m.text.starts_with("Hello Ada,"));
        assert!(m.text.contains("Call us at +1 555 010 0199"));
        assert!(
            m.text
                .contains("Unsubscribe: https://edge.example/v1/unsubscribe/abc.def")
        );
        assert!(
            m.html
                .contains("<a href=\"tel:+15550100199\">+1 555 010 0199</a>")
        );
        assert!(m.html.contains("https://cal.example/northwind?a=1&amp;b=2"));
        assert!(m.html.contains("Unsubscribe</a>"));
    }

    #[test]
    fn lead_data_cannot_inject_markup() {
        let m = render(
            Template::Welcome,
            &cx(
                "<script>alert(1)</script>",
                Some("<img src=x onerror=alert(1)> & \"quotes\""),
            ),
        );
        assert!(!m.html.contains("<script>"));
        assert!(!m.html.contains("<img"));
        assert!(
            m.html
                .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;")
        );
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let mut c = cx("Ada", None);
        c.site_name = "Evil\r\nBcc: victim@example.com";
        let m = render(Template::Welcome, &c);
        assert!(!m.subject.contains('\r') && !m.subject.contains('\n'));
    }

    #[test]
    fn tokens_verify_only_with_the_right_secret_and_id() {
        let token = unsubscribe_token(b"secret", "lead-1");
        assert_eq!(
            verify_unsubscribe_token(b"secret", &token).as_deref(),
            Some("lead-1")
        );
        assert_eq!(verify_unsubscribe_token(b"other", &token), None);
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("lead-2"),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(verify_unsubscribe_token(b"secret", &forged), None);
        assert_eq!(verify_unsubscribe_token(b"secret", "garbage"), None);
    }

    proptest! {
        #[test]
        fn any_lead_id_round_trips_through_its_token(id in "\\PC{1,60}", secret in proptest::collection::vec(any::<u8>(), 1..64)) {
            let token = unsubscribe_token(&secret, &id);
            prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
            prop_assert_eq!(verify_unsubscribe_token(&secret, &token), Some(id));
        }
    }
}
