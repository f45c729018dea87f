//! Follow-up: which messages a lead gets and when, how a failed send is retried, what each
//! message says, and the signed token behind every unsubscribe link. Pure: the edge supplies the
//! clock, the secret and the sending.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::locale::{Locale, fill};
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
    /// Double opt-in: please confirm your address (the sequence waits for it).
    Confirm,
    /// To the site's sales inbox: a hot lead just arrived.
    SalesAlert,
    /// Internal, never sent: when processed, stores the site's sequence for the lead's grade
    /// (the request that captures a lead does not read the site, to stay at one round trip).
    StartSequence,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Welcome => "welcome",
            Template::CheckIn => "check_in",
            Template::Resources => "resources",
            Template::LastNote => "last_note",
            Template::Confirm => "confirm",
            Template::SalesAlert => "sales_alert",
            Template::StartSequence => "start_sequence",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "welcome" => Some(Template::Welcome),
            "check_in" => Some(Template::CheckIn),
            "resources" => Some(Template::Resources),
            "last_note" => Some(Template::LastNote),
            "confirm" => Some(Template::Confirm),
            "sales_alert" => Some(Template::SalesAlert),
            "start_sequence" => Some(Template::StartSequence),
            _ => None,
        }
    }
}

/// One step of a sequence: a template, so many days after the sequence starts, by email or
/// as a signed webhook (for direct mail, voice and fax broadcast providers, or a CRM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub delay_days: u32,
    pub template: Template,
    #[serde(default, skip_serializing_if = "Channel::is_email")]
    pub channel: Channel,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Email,
    Webhook,
}

impl Channel {
    fn is_email(&self) -> bool {
        *self == Channel::Email
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

/// A site's own sequences by grade (`PUT /v1/admin/sites/{site}`, field `sequences`); a grade
/// left out follows [`default_sequence`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot: Option<Vec<Step>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Vec<Step>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold: Option<Vec<Step>>,
}

/// Most steps a sequence may have, and the longest delay, in days.
pub const MAX_STEPS: usize = 10;
pub const MAX_DELAY_DAYS: u32 = 365;

impl Sequences {
    pub fn for_grade(&self, grade: Grade) -> Vec<Step> {
        let own = match grade {
            Grade::Hot => &self.hot,
            Grade::Warm => &self.warm,
            Grade::Cold => &self.cold,
        };
        own.clone().unwrap_or_else(|| default_sequence(grade))
    }

    /// At most [`MAX_STEPS`] steps of at most [`MAX_DELAY_DAYS`] each, only templates meant for
    /// leads, and webhook steps only where the site has a webhook URL.
    pub fn validate(&self, has_webhook_url: bool) -> Vec<crate::FieldError> {
        let mut errors = Vec::new();
        for (grade, steps) in [
            ("hot", &self.hot),
            ("warm", &self.warm),
            ("cold", &self.cold),
        ] {
            let Some(steps) = steps else { continue };
            if steps.len() > MAX_STEPS {
                errors.push(crate::FieldError::new(
                    format!("sequences.{grade}"),
                    format!("At most {MAX_STEPS} steps."),
                ));
            }
            for (i, step) in steps.iter().enumerate() {
                let at = format!("sequences.{grade}[{i}]");
                if step.delay_days > MAX_DELAY_DAYS {
                    errors.push(crate::FieldError::new(
                        format!("{at}.delay_days"),
                        format!("At most {MAX_DELAY_DAYS} days."),
                    ));
                }
                if !matches!(
                    step.template,
                    Template::Welcome
                        | Template::CheckIn
                        | Template::Resources
                        | Template::LastNote
                ) {
                    errors.push(crate::FieldError::new(
                        format!("{at}.template"),
                        "Must be welcome, check_in, resources or last_note.",
                    ));
                }
                if step.channel == Channel::Webhook && !has_webhook_url {
                    errors.push(crate::FieldError::new(
                        format!("{at}.channel"),
                        "A webhook step needs the site's webhook_url.",
                    ));
                }
            }
        }
        errors
    }
}

/// The default sequences: hot leads get the immediate reply (sales calls them); warm ones
/// days 0, 3 and 10; cold ones days 0, 14 and 45.
pub fn default_sequence(grade: Grade) -> Vec<Step> {
    let step = |delay_days, template| Step {
        delay_days,
        template,
        channel: Channel::Email,
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

/// Who a step is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Lead,
    /// The site's sales inbox (skipped when the site has none).
    Sales,
}

/// Which sites a planned step applies to, by their double opt-in setting (known to the
/// database, not to the request: the edge stores every candidate step with its condition, in
/// the same statement as the lead, and the database keeps the ones that apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptIn {
    Any,
    Required,
    NotRequired,
}

/// A step to store: its number, template, due time (Unix ms), audience and condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub step: u32,
    pub template: Template,
    pub channel: Channel,
    pub due_ms: i64,
    pub audience: Audience,
    pub opt_in: OptIn,
}

/// Step numbers: the capture's first step is 0, the sequence it starts follows it (1, 2, …);
/// the sequence that starts once a double opt-in is confirmed begins at this step (its start
/// step), and the sales alert has a number of its own.
pub const CONFIRMED_STEPS_FROM: u32 = 20;
pub const SALES_ALERT_STEP: u32 = 99;
pub const HOT_EVENT_STEP: u32 = 98;

/// The steps to store with a new lead: a confirmation request (double opt-in sites) or the start
/// of the site's sequence (others), and for hot leads an alert to sales and a `lead.hot`
/// webhook event (each kept only where the site has a sales inbox, a webhook URL). The sequence
/// itself is planned when its start step is processed, from the site's settings then.
pub fn plan_on_capture(grade: Grade, captured_ms: i64) -> Vec<Planned> {
    let now = |step, template, audience, opt_in| Planned {
        step,
        template,
        channel: Channel::Email,
        due_ms: captured_ms,
        audience,
        opt_in,
    };
    let mut steps = vec![
        now(0, Template::Confirm, Audience::Lead, OptIn::Required),
        now(
            0,
            Template::StartSequence,
            Audience::Lead,
            OptIn::NotRequired,
        ),
    ];
    if grade == Grade::Hot {
        let alert = now(
            SALES_ALERT_STEP,
            Template::SalesAlert,
            Audience::Sales,
            OptIn::Any,
        );
        steps.push(alert);
        steps.push(Planned {
            step: HOT_EVENT_STEP,
            channel: Channel::Webhook,
            ..alert
        });
    }
    steps
}

/// The step to store when a double opt-in is confirmed: the start of the site's sequence.
pub fn plan_on_confirm(confirmed_ms: i64) -> Vec<Planned> {
    vec![Planned {
        step: CONFIRMED_STEPS_FROM,
        template: Template::StartSequence,
        channel: Channel::Email,
        due_ms: confirmed_ms,
        audience: Audience::Lead,
        opt_in: OptIn::Any,
    }]
}

/// The steps of `sequence`, numbered after the start step `start` and timed from `start_ms`.
pub fn plan_sequence(sequence: &[Step], start: u32, start_ms: i64) -> Vec<Planned> {
    sequence
        .iter()
        .zip(start + 1..)
        .map(|(s, step)| Planned {
            step,
            template: s.template,
            channel: s.channel,
            due_ms: start_ms + i64::from(s.delay_days) * DAY_MS,
            audience: Audience::Lead,
            opt_in: OptIn::Any,
        })
        .collect()
}

/// How often a double opt-in confirmation is sent again, at most, when the person sends the
/// form again before confirming (the first was lost, or filtered as junk)...
pub const CONFIRM_RESENDS: u32 = 2;
/// ...and not sooner than this after the last one: sending a form twice in a row must not
/// become a way to fill a stranger's inbox.
pub const CONFIRM_RESEND_AFTER_MS: i64 = 10 * 60_000;

/// The provider's idempotency key for a step's sending: the step's id, and for a confirmation
/// sent again, which time (a provider would take the same key as the same message).
pub fn idempotency_key(step_id: &str, resent: u32) -> String {
    match resent {
        0 => step_id.to_owned(),
        n => format!("{step_id}#{n}"),
    }
}

/// Attempts before a step or delivery is dead-lettered: with [`retry_delay_ms`], about a day
/// of retries, so a provider or subscriber down for an afternoon loses nothing.
pub const MAX_ATTEMPTS: u32 = 12;

/// The longest wait between two attempts.
const MAX_RETRY_DELAY_MS: i64 = 8 * 3_600_000;

/// How long to wait after failed attempt number `attempt` (1-based): one minute, doubling, at
/// most eight hours; `None` once [`MAX_ATTEMPTS`] have failed.
pub fn retry_delay_ms(attempt: u32) -> Option<i64> {
    (attempt < MAX_ATTEMPTS)
        .then(|| (60_000i64 << attempt.saturating_sub(1).min(20)).min(MAX_RETRY_DELAY_MS))
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
    /// Printed in every footer.
    pub postal_address: Option<&'a str>,
    /// The double opt-in confirmation link ([`Template::Confirm`] only).
    pub confirm_url: Option<&'a str>,
    /// What the visitor asked for, from the form: label and link ([`Template::Welcome`]).
    pub resource: Option<(&'a str, &'a str)>,
    /// The site's brand: a logo at the top, an accent colour (already checked to be `#rrggbb`).
    pub logo_url: Option<&'a str>,
    pub brand_color: Option<&'a str>,
    /// The site's language.
    pub locale: Locale,
}

/// What sales needs to know about a hot lead ([`Template::SalesAlert`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSummary<'a> {
    pub site_name: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub company: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub message: Option<&'a str>,
    pub grade: &'a str,
    pub score: i64,
    pub lead_id: &'a str,
    /// The site's language.
    pub locale: Locale,
}

/// A message ready for a provider: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders a template in the site's language. Every value from the lead or the site is escaped
/// in the HTML part, and the subject is kept to one line (it becomes a header).
/// The most of a visitor's message a welcome quotes back, in characters.
pub const MAX_QUOTE_CHARS: usize = 200;
/// A longer "first name" is no name; the greeting does without it.
const MAX_FIRST_NAME_CHARS: usize = 40;

/// What of a visitor's own words an email may repeat to the address they typed. Anyone can type
/// anyone's address into a form: repeated whole, a message would let a bot mail its text and
/// links to a stranger from the site's own domain. So nothing with a link or an address in it is
/// quoted, and of a long message only its first [`MAX_QUOTE_CHARS`] (cut at a word).
fn quotable(message: &str) -> Option<String> {
    let message = message.trim();
    if message.is_empty() || looks_like_link(message) {
        return None;
    }
    if message.chars().count() <= MAX_QUOTE_CHARS {
        return Some(message.to_owned());
    }
    let cut: String = message.chars().take(MAX_QUOTE_CHARS).collect();
    let kept = cut
        .rsplit_once(char::is_whitespace)
        .map_or(&*cut, |(head, _)| head);
    Some(format!("{}\u{2026}", kept.trim_end()))
}

/// Whether a text holds something a mail program would make a link of: a URL, an address, or a
/// domain name (`word.tld`). Errs on the side of links: an unquoted message costs nothing.
/// (ASCII checks only: Unicode's letter tables would cost the edge's wasm kilobytes.)
fn looks_like_link(text: &str) -> bool {
    text.split_whitespace().any(|word| {
        let word = word
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_lowercase();
        word.contains("://")
            || word.contains('@')
            || word.starts_with("www.")
            || word.rsplit_once('.').is_some_and(|(name, tld)| {
                !name.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
            })
    })
}

pub fn render(template: Template, cx: &MessageContext<'_>) -> Rendered {
    let copy = cx.locale.copy();
    let site = cx.site_name;
    let with_site = |t: &str| fill(t, &[("site", site)]);
    let first_name = cx.lead_name.split_whitespace().next().unwrap_or_default();
    let greeting = if first_name.is_empty()
        || first_name.chars().count() > MAX_FIRST_NAME_CHARS
        || looks_like_link(first_name)
    {
        copy.greeting_anonymous.to_owned()
    } else {
        fill(copy.greeting, &[("name", first_name)])
    };
    let (subject, paragraphs): (String, Vec<String>) = match template {
        Template::Welcome => (
            with_site(copy.welcome_subject),
            vec![
                with_site(copy.welcome_thanks),
                match cx.lead_message.and_then(quotable) {
                    Some(m) => fill(copy.welcome_asked, &[("message", &m)]),
                    None => copy.welcome_soon.to_owned(),
                },
            ],
        ),
        Template::CheckIn => (
            with_site(copy.check_in_subject),
            copy.check_in.iter().map(|p| with_site(p)).collect(),
        ),
        Template::Resources => (
            with_site(copy.resources_subject),
            vec![with_site(copy.resources)],
        ),
        Template::LastNote => (
            with_site(copy.last_note_subject),
            copy.last_note.iter().map(|p| with_site(p)).collect(),
        ),
        Template::Confirm => (
            with_site(copy.confirm_subject),
            copy.confirm
                .iter()
                .map(|p| {
                    fill(
                        p,
                        &[("site", site), ("url", cx.confirm_url.unwrap_or_default())],
                    )
                })
                .collect(),
        ),
        // Sales alerts have their own renderer (render_sales_alert) and a sequence's start is
        // never sent; neither comes here.
        Template::SalesAlert | Template::StartSequence => (String::new(), Vec::new()),
    };
    let resource = cx.resource.filter(|_| template == Template::Welcome);
    let sign_off = with_site(copy.sign_off);
    let why = with_site(copy.why);

    let mut text = format!("{greeting}\n\n");
    for p in &paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
    }
    if let Some((label, url)) = resource {
        let resource = format!("{label}: {url}");
        text.push_str(&fill(copy.resource_text, &[("resource", &resource)]));
        text.push_str("\n\n");
    }
    if let Some(phone) = cx.site_phone {
        text.push_str(&fill(copy.call_us, &[("phone", phone)]));
        text.push_str("\n\n");
    }
    if let Some(url) = cx.booking_url {
        text.push_str(&fill(copy.booking_text, &[("url", url)]));
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "{sign_off}\n\n--\n{why}\n{}: {}\n",
        copy.unsubscribe, cx.unsubscribe_url
    ));
    if let Some(address) = cx.postal_address {
        text.push_str(&format!("{site}, {address}\n"));
    }

    // HTML: the copy is ours, but escaped all the same; values are escaped before they go in.
    let esc = |s: &str| html_escape::encode_safe(s).into_owned();
    let attr = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let link = |href: &str, label: &str| format!("<a href=\"{}\">{}</a>", attr(href), esc(label));
    let accent = cx.brand_color.unwrap_or(DEFAULT_ACCENT);
    let links = if readable_on_white(accent) {
        accent
    } else {
        DEFAULT_ACCENT
    };
    let mut html = format!(
        "{}<style>a{{color:{}}}</style></head><body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#1f2933;border-top:4px solid {}\">",
        html_head(cx.locale, &subject),
        attr(links),
        attr(accent)
    );
    if let Some(logo) = cx.logo_url {
        html.push_str(&format!(
            "<p><img src=\"{}\" alt=\"{}\" height=\"40\"></p>",
            attr(logo),
            attr(site)
        ));
    }
    html.push_str(&format!("<p>{}</p>", esc(&greeting)));
    for p in &paragraphs {
        html.push_str(&format!("<p>{}</p>", esc(p)));
    }
    if let Some((label, url)) = resource {
        let sentence = fill(&esc(copy.resource_html), &[("resource", &link(url, label))]);
        html.push_str(&format!("<p>{sentence}</p>"));
    }
    if let Some(phone) = cx.site_phone {
        let tel: String = phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let sentence = fill(
            &esc(copy.call_us),
            &[("phone", &link(&format!("tel:{tel}"), phone))],
        );
        html.push_str(&format!("<p>{sentence}</p>"));
    }
    if let Some(url) = cx.booking_url {
        let sentence = fill(
            &esc(copy.booking_html),
            &[("link", &link(url, copy.booking_label))],
        );
        html.push_str(&format!("<p>{sentence}</p>"));
    }
    html.push_str(&format!(
        "<p>{}</p><hr><p style=\"font-size:12px;color:#52606d\">{} {}",
        esc(&sign_off),
        esc(&why),
        link(cx.unsubscribe_url, copy.unsubscribe)
    ));
    if let Some(address) = cx.postal_address {
        html.push_str(&format!("<br>{}, {}", esc(site), esc(address)));
    }
    html.push_str("</p></body></html>");
    Rendered {
        subject: one_line(&subject),
        text,
        html,
    }
}

/// The alert sales gets about a hot lead: who, how to reach them, why they scored hot. Lead data
/// is escaped like everywhere else; there is no unsubscribe (it goes to the site's own inbox).
pub fn render_sales_alert(lead: &LeadSummary<'_>) -> Rendered {
    let copy = lead.locale.copy();
    let line = |t: &str, value: &str| fill(t, &[("value", value)]);
    let mut lines = vec![
        fill(copy.alert_intro, &[("site", lead.site_name)]),
        line(copy.alert_name, lead.name),
        line(copy.alert_email, lead.email),
    ];
    if let Some(company) = lead.company {
        lines.push(line(copy.alert_company, company));
    }
    if let Some(phone) = lead.phone {
        lines.push(line(copy.alert_phone, phone));
    }
    let score = lead.score.to_string();
    lines.push(fill(
        copy.alert_grade,
        &[("grade", lead.grade), ("score", &score)],
    ));
    if let Some(message) = lead.message {
        lines.push(line(copy.alert_message, message));
    }
    lines.push(line(copy.alert_id, lead.lead_id));
    lines.push(copy.alert_call.to_owned());
    let esc = |s: &str| html_escape::encode_safe(s).into_owned();
    let subject = one_line(&fill(
        copy.alert_subject,
        &[("name", lead.name), ("site", lead.site_name)],
    ));
    let html = format!(
        "{}</head><body style=\"font-family:system-ui,sans-serif\">{}</body></html>",
        html_head(lead.locale, &subject),
        lines
            .iter()
            .map(|l| format!("<p>{}</p>", esc(l)))
            .collect::<String>()
    );
    Rendered {
        subject,
        text: lines.join("\n") + "\n",
        html,
    }
}

/// The emails' accent when a site has none: links in it read on white at 6.7:1.
const DEFAULT_ACCENT: &str = "#1d4ed8";

/// Whether text in `color` (`#rrggbb`) reads on white by WCAG's contrast minimum for text (1.4.3,
/// 4.5:1). A site's accent colours its emails' top border whatever it is (decoration), and their
/// links only when it passes: a pale brand colour would leave them unreadable.
fn readable_on_white(color: &str) -> bool {
    // WCAG's relative luminance: each channel from sRGB to linear light.
    let channel = |at: usize| {
        let c = f64::from(u8::from_str_radix(color.get(at..at + 2)?, 16).ok()?) / 255.0;
        Some(if c <= 0.04045 {
            c / 12.92
        } else {
            pow_2_4((c + 0.055) / 1.055)
        })
    };
    let (Some(r), Some(g), Some(b)) = (channel(1), channel(3), channel(5)) else {
        return false;
    };
    // Against white: (1 + 0.05) / (L + 0.05) ≥ 4.5.
    0.2126 * r + 0.7152 * g + 0.0722 * b <= 1.05 / 4.5 - 0.05
}

/// `x` to the power 2.4, for `x` in (0, 1]: x² times the fifth root of x², found by Newton's
/// method from above (the roots asked for are over 0.38, reached from 1 in about ten steps).
/// `f64::powf` would link libm's `pow` into the Worker, whose size is budgeted.
fn pow_2_4(x: f64) -> f64 {
    let square = x * x;
    let mut root = 1.0;
    for _ in 0..40 {
        root = (4.0 * root + square / (root * root * root * root)) / 5.0;
    }
    square * root
}

/// An email's HTML up to the end of its head, which the caller closes: its language and its
/// subject as the title, which screen readers and mail programs that show HTML as a page go by
/// (WCAG's "language of page" and "page titled").
fn html_head(locale: Locale, subject: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>",
        locale.as_str(),
        html_escape::encode_safe(subject)
    )
}

/// Header-safe: control characters (CR and LF among them) become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

type HmacSha256 = Hmac<Sha256>;

/// A webhook signature by the Standard Webhooks scheme (<https://www.standardwebhooks.com>):
/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the bytes of the
/// secret (the base64 after `whsec_`). `None` when the secret is not of that form.
pub fn webhook_signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    use base64::engine::general_purpose::STANDARD;
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// What a signed link does; each purpose signs differently, so one link cannot stand in for
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Confirm,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"unsubscribe:",
            Purpose::Confirm => b"confirm:",
        }
    }
}

/// The opaque token in a lead's unsubscribe or confirmation link: the lead id and an
/// HMAC-SHA256 of it (and the purpose) under the site-wide secret, base64url. Nothing else is
/// needed to honour it, so a one-click POST from a mail client works with no login or cookie.
pub fn sign(secret: &[u8], purpose: Purpose, lead_id: &str) -> String {
    let mac = mac(secret, purpose, lead_id).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(lead_id),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The lead id behind a token, if the token is genuine and for this purpose.
pub fn verify(secret: &[u8], purpose: Purpose, token: &str) -> Option<String> {
    let (id, tag) = token.split_once('.')?;
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    // verify_slice compares in constant time.
    mac(secret, purpose, &id)
        .verify_slice(&tag)
        .ok()
        .map(|()| id)
}

fn mac(secret: &[u8], purpose: Purpose, lead_id: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(purpose.label());
    mac.update(lead_id.as_bytes());
    mac
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
            postal_address: Some("1 Main St, Springfield"),
            confirm_url: None,
            resource: Some(("our pricing guide", "https://northwind.example/pricing.pdf")),
            logo_url: Some("https://northwind.example/logo.png"),
            brand_color: Some("#0f766e"),
            locale: Locale::En,
        }
    }

    #[rstest]
    #[case::plain("Do you support SSO?", Some("Do you support SSO?"))]
    #[case::url("Cheap pills at https://spam.example now", None)]
    #[case::bare_domain("visit spam.example for more", None)]
    #[case::www("see WWW.SPAM.EXAMPLE", None)]
    #[case::quoted("read \u{201c}spam.example\u{201d}", None)]
    #[case::address("write to someone@spam.example", None)]
    #[case::abbreviations(
        "Pricing for 3.5 teams, e.g. ours?",
        Some("Pricing for 3.5 teams, e.g. ours?")
    )]
    #[case::blank("   ", None)]
    fn a_welcome_quotes_only_words_without_links(
        #[case] message: &str,
        #[case] quoted: Option<&str>,
    ) {
        let welcome = render(Template::Welcome, &cx("Ada Lovelace", Some(message))).text;
        match quoted {
            Some(q) => assert!(
                welcome.contains(&format!("You asked: \u{201c}{q}\u{201d}")),
                "{welcome}"
            ),
            None => {
                assert!(!welcome.contains("You asked"), "{welcome}");
                assert!(!welcome.to_lowercase().contains("spam"), "{welcome}");
            }
        }
    }

    #[test]
    fn each_sending_of_a_confirmation_has_its_own_idempotency_key() {
        let keys: Vec<String> = (0..=CONFIRM_RESENDS)
            .map(|n| idempotency_key("lead/0", n))
            .collect();
        assert_eq!(keys, ["lead/0", "lead/0#1", "lead/0#2"]);
    }

    #[test]
    fn a_long_message_is_quoted_only_in_part_cut_at_a_word() {
        let message = "word ".repeat(100);
        let welcome = render(Template::Welcome, &cx("Ada", Some(&message))).text;
        let start = welcome.find('\u{201c}').expect("a quote") + '\u{201c}'.len_utf8();
        let end = welcome.find('\u{201d}').expect("its end");
        let quote = &welcome[start..end];
        assert!(quote.ends_with("word\u{2026}"), "{quote}");
        assert!(quote.chars().count() <= MAX_QUOTE_CHARS + 1);
    }

    #[rstest]
    #[case::link("www.spam.example Smith")]
    #[case::domain("spam.example")]
    #[case::too_long("Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa Smith")]
    fn a_name_that_is_no_name_is_not_greeted(#[case] name: &str) {
        let welcome = render(Template::Welcome, &cx(name, None)).text;
        let anonymous = render(Template::Welcome, &cx("", None)).text;
        assert_eq!(welcome, anonymous);
    }

    #[rstest]
    #[case(Grade::Hot, &[0])]
    #[case(Grade::Warm, &[0, 3, 10])]
    #[case(Grade::Cold, &[0, 14, 45])]
    fn default_sequences_by_grade(#[case] grade: Grade, #[case] days: &[i64]) {
        let planned = plan_sequence(&Sequences::default().for_grade(grade), 0, 1_000);
        let due: Vec<i64> = planned
            .iter()
            .map(|p| (p.due_ms - 1_000) / DAY_MS)
            .collect();
        assert_eq!(due, days);
        let steps: Vec<u32> = planned.iter().map(|p| p.step).collect();
        assert_eq!(steps, (1..=days.len() as u32).collect::<Vec<_>>());
        assert_eq!(default_sequence(grade)[0].template, Template::Welcome);
    }

    #[test]
    fn capture_plans_offer_both_opt_in_paths_and_alert_sales_about_hot_leads() {
        let plan = plan_on_capture(Grade::Hot, 0);
        let summary: Vec<_> = plan
            .iter()
            .map(|p| (p.step, p.template, p.audience, p.opt_in))
            .collect();
        assert_eq!(
            summary,
            [
                (0, Template::Confirm, Audience::Lead, OptIn::Required),
                (
                    0,
                    Template::StartSequence,
                    Audience::Lead,
                    OptIn::NotRequired
                ),
                (
                    SALES_ALERT_STEP,
                    Template::SalesAlert,
                    Audience::Sales,
                    OptIn::Any
                ),
                (
                    HOT_EVENT_STEP,
                    Template::SalesAlert,
                    Audience::Sales,
                    OptIn::Any
                ),
            ]
        );
        assert_eq!(plan[3].channel, Channel::Webhook, "the lead.hot event");
        assert!(
            plan_on_capture(Grade::Warm, 0)
                .iter()
                .all(|p| p.audience == Audience::Lead)
        );
        assert_eq!(plan_on_confirm(0)[0].step, CONFIRMED_STEPS_FROM);
    }

    #[test]
    fn a_sites_own_sequence_replaces_the_default_for_its_grade() {
        let own: Sequences = serde_json::from_str(
            r#"{"warm": [{"delay_days": 1, "template": "check_in", "channel": "webhook"}]}"#,
        )
        .unwrap();
        let warm = own.for_grade(Grade::Warm);
        assert_eq!(warm.len(), 1);
        assert_eq!(warm[0].channel, Channel::Webhook);
        assert_eq!(own.for_grade(Grade::Cold), default_sequence(Grade::Cold));
        assert_eq!(
            plan_sequence(&warm, CONFIRMED_STEPS_FROM, 0)[0].step,
            CONFIRMED_STEPS_FROM + 1
        );
    }

    #[test]
    fn sequences_are_checked() {
        let step = |delay_days, template, channel| Step {
            delay_days,
            template,
            channel,
        };
        let bad = Sequences {
            hot: Some(vec![step(400, Template::Welcome, Channel::Email)]),
            warm: Some(vec![step(0, Template::SalesAlert, Channel::Email)]),
            cold: Some(vec![
                step(1, Template::Resources, Channel::Webhook);
                MAX_STEPS + 1
            ]),
        };
        let fields: Vec<_> = bad.validate(false).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields[..3],
            [
                "sequences.hot[0].delay_days",
                "sequences.warm[0].template",
                "sequences.cold"
            ]
        );
        assert_eq!(fields[3], "sequences.cold[0].channel");
        assert!(
            bad.validate(true)
                .iter()
                .all(|e| !e.field.ends_with(".channel"))
        );
    }

    #[test]
    fn the_footer_carries_the_postal_address() {
        let m = render(Template::CheckIn, &cx("Ada", None));
        assert!(m.text.contains("Northwind, 1 Main St, Springfield"));
        assert!(m.html.contains("<br>Northwind, 1 Main St, Springfield</p>"));
    }

    #[test]
    fn sales_alerts_summarise_the_lead_escaped() {
        let m = render_sales_alert(&LeadSummary {
            site_name: "Northwind",
            name: "Ada <b>Lovelace</b>",
            email: "ada@example.com",
            company: Some("Engines & Co"),
            phone: Some("+441234567"),
            message: None,
            grade: "hot",
            score: 90,
            lead_id: "lead-1",
            locale: Locale::En,
        });
        assert_eq!(m.subject, "Hot lead: Ada <b>Lovelace</b> (Northwind)");
        assert!(m.text.contains("Phone: +441234567"));
        assert!(m.text.contains("Grade: hot (score 90)"));
        assert!(m.html.contains("Ada &lt;b&gt;Lovelace&lt;&#x2F;b&gt;"));
        assert!(m.html.contains("Engines &amp; Co"));
    }

    #[rstest]
    #[case(1, Some(60_000))]
    #[case(2, Some(120_000))]
    #[case(5, Some(960_000))]
    #[case(9, Some(15_360_000))]
    #[case(10, Some(28_800_000))]
    #[case(11, Some(28_800_000))]
    #[case(12, None)]
    fn retries_back_off_then_stop(#[case] attempt: u32, #[case] delay: Option<i64>) {
        assert_eq!(retry_delay_ms(attempt), delay);
    }

    #[test]
    fn retries_span_about_a_day() {
        let total: i64 = (1..MAX_ATTEMPTS).filter_map(retry_delay_ms).sum();
        let hours = total as f64 / 3_600_000.0;
        assert!((22.0..=30.0).contains(&hours), "{hours} h of retries");
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
    fn the_welcome_links_the_resource_the_form_offers_and_later_steps_do_not() {
        let welcome = render(Template::Welcome, &cx("Ada", None));
        assert!(
            welcome
                .text
                .contains("Here is our pricing guide: https://northwind.example/pricing.pdf")
        );
        assert!(
            welcome.html.contains(
                "<a href=\"https://northwind.example/pricing.pdf\">our pricing guide</a>"
            )
        );
        assert!(
            !render(Template::CheckIn, &cx("Ada", None))
                .text
                .contains("pricing guide")
        );
    }

    #[test]
    fn emails_carry_the_sites_logo_and_colour() {
        let m = render(Template::Resources, &cx("Ada", None));
        assert!(
            m.html
                .contains("<img src=\"https://northwind.example/logo.png\" alt=\"Northwind\"")
        );
        assert!(m.html.contains("a{color:#0f766e}"));
    }

    #[rstest]
    // 4.54:1 on white, the palest grey that passes; and its neighbour, 4.48:1.
    #[case::grey_that_passes("#767676", true)]
    #[case::grey_that_fails("#777777", false)]
    #[case::default("#1d4ed8", true)]
    #[case::black("#000000", true)]
    #[case::amber("#fbbf24", false)]
    #[case::white("#ffffff", false)]
    // Pure red is 4.0:1, pure green 1.4:1: the channels weigh differently.
    #[case::red("#ff0000", false)]
    #[case::dark_red("#cc0000", true)]
    #[case::green("#00ff00", false)]
    #[case::dark_green("#008000", true)]
    fn an_accent_colours_links_only_if_they_read_on_white(
        #[case] colour: &str,
        #[case] readable: bool,
    ) {
        assert_eq!(readable_on_white(colour), readable, "{colour}");
        let m = render(
            Template::Welcome,
            &MessageContext {
                brand_color: Some(colour),
                ..cx("Ada", None)
            },
        );
        let link = if readable { colour } else { DEFAULT_ACCENT };
        assert!(m.html.contains(&format!("a{{color:{link}}}")), "{colour}");
        assert!(
            m.html.contains(&format!("border-top:4px solid {colour}")),
            "the border is the site's colour all the same"
        );
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
        assert!(
            !m.html.contains("<img src=x"),
            "only the site logo is an image"
        );
        assert!(
            m.html
                .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;")
        );
    }

    /// In every language: every template renders whole (no placeholder left), greets, offers
    /// the phone and the unsubscribe link, and escapes lead data.
    #[test]
    fn every_language_renders_every_template_whole_and_escaped() {
        for locale in Locale::ALL {
            for template in SENT_TO_LEADS {
                let mut c = cx("Ada <b>", Some("{site} <i>"));
                c.locale = locale;
                c.confirm_url = Some("https://edge.example/v1/confirm/xyz");
                let m = render(template, &c);
                for part in [&m.subject, &m.text, &m.html] {
                    assert!(
                        !part.contains("{name}") && !part.contains("{url}"),
                        "{locale:?} {template:?}: {part}"
                    );
                }
                assert!(m.subject.contains("Northwind"), "{locale:?} {template:?}");
                assert!(m.text.contains("+1 555 010 0199"));
                assert!(
                    m.text
                        .contains("https://edge.example/v1/unsubscribe/abc.def")
                );
                assert!(m.html.contains("href=\"tel:+15550100199\""));
                assert!(!m.html.contains("<b>") && !m.html.contains("<i>"));
                assert!(m.text.contains("1 Main St, Springfield"));
            }
        }
        // A value that looks like a placeholder is kept as the visitor wrote it.
        let m = render(Template::Welcome, &cx("Ada", Some("{site}")));
        assert!(m.text.contains("\u{201c}{site}\u{201d}"), "{}", m.text);
    }

    /// The templates a lead may be sent, each rendered by [`render`].
    const SENT_TO_LEADS: [Template; 5] = [
        Template::Welcome,
        Template::CheckIn,
        Template::Resources,
        Template::LastNote,
        Template::Confirm,
    ];

    /// A hot lead called Ada, with no company, phone or message, on site `site_name`.
    fn hot_ada(site_name: &str, locale: Locale) -> LeadSummary<'_> {
        LeadSummary {
            site_name,
            name: "Ada",
            email: "ada@example.com",
            company: None,
            phone: None,
            message: None,
            grade: "hot",
            score: 90,
            lead_id: "lead-1",
            locale,
        }
    }

    /// Screen readers read an email in the site's language, and mail programs that open it as
    /// a page show its subject as the title (escaped: the site's name is in it).
    #[test]
    fn every_email_says_its_language_and_has_its_subject_as_its_title() {
        let head = |html: &str, locale: Locale, subject: &str| {
            let lang = format!("<!doctype html><html lang=\"{}\"><head>", locale.as_str());
            let title = format!("<title>{}</title>", html_escape::encode_safe(subject));
            assert!(html.starts_with(&lang), "{html}");
            assert!(html.contains(&title), "{title} in {html}");
        };
        for locale in Locale::ALL {
            for template in SENT_TO_LEADS {
                let mut c = cx("Ada", None);
                c.site_name = "Fish & <Chips>";
                c.locale = locale;
                c.confirm_url = Some("https://edge.example/v1/confirm/xyz");
                let m = render(template, &c);
                assert!(m.subject.contains("Fish & <Chips>"), "{}", m.subject);
                head(&m.html, locale, &m.subject);
            }
            let alert = render_sales_alert(&hot_ada("Fish & <Chips>", locale));
            head(&alert.html, locale, &alert.subject);
        }
    }

    #[test]
    fn german_sites_write_german() {
        let mut c = cx("Ada Lovelace", None);
        c.locale = Locale::De;
        let m = render(Template::Welcome, &c);
        assert_eq!(m.subject, "Danke für Ihre Anfrage bei Northwind");
        assert!(m.text.starts_with("Hallo Ada,"));
        assert!(m.text.contains("Rufen Sie uns an unter +1 555 010 0199"));
        assert!(m.html.contains(">Abmelden</a>"));
        let alert = render_sales_alert(&hot_ada("Northwind", Locale::De));
        assert_eq!(alert.subject, "Heißer Lead: Ada (Northwind)");
        assert!(alert.text.contains("Einstufung: hot (Punkte 90)"));
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let mut c = cx("Ada", None);
        c.site_name = "Evil\r\nBcc: victim@example.com";
        let m = render(Template::Welcome, &c);
        assert!(!m.subject.contains('\r') && !m.subject.contains('\n'));
    }

    #[test]
    fn tokens_verify_only_with_the_right_secret_id_and_purpose() {
        let token = sign(b"secret", Purpose::Unsubscribe, "lead-1");
        let check = |secret: &[u8], purpose, token: &str| verify(secret, purpose, token);
        assert_eq!(
            check(b"secret", Purpose::Unsubscribe, &token).as_deref(),
            Some("lead-1")
        );
        assert_eq!(check(b"other", Purpose::Unsubscribe, &token), None);
        assert_eq!(check(b"secret", Purpose::Confirm, &token), None);
        let tag = token.split('.').nth(1).unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("lead-2"));
        assert_eq!(check(b"secret", Purpose::Unsubscribe, &forged), None);
        assert_eq!(check(b"secret", Purpose::Unsubscribe, "garbage"), None);
    }

    /// The example from the Standard Webhooks specification's reference test suite.
    #[test]
    fn webhook_signatures_match_the_standard() {
        let signature = webhook_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(webhook_signature("not-a-secret", "id", 0, ""), None);
    }

    proptest! {
        #[test]
        fn pow_2_4_is_powf_without_libm(x in 0.04f64..=1.0) {
            let exact = x.powf(2.4);
            prop_assert!((pow_2_4(x) - exact).abs() <= exact * 1e-12, "{x}");
        }

        #[test]
        fn any_lead_id_round_trips_through_its_token(id in "\\PC{1,60}", secret in proptest::collection::vec(any::<u8>(), 1..64)) {
            let token = sign(&secret, Purpose::Confirm, &id);
            prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
            prop_assert_eq!(verify(&secret, Purpose::Confirm, &token), Some(id));
        }
    }
}
