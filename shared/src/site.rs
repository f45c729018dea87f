//! Sites: where a form lives, which origins may embed it, and what it tells visitors.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// What a marketer configures for a site (`PUT /v1/admin/sites/{site}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteDefinition {
    /// Shown to visitors ("Thanks for contacting Acme").
    pub name: String,
    /// Exact origins (`https://www.example.com`) whose pages may embed the form. Browsers send
    /// the Origin header without a path and without the scheme's default port; so do we.
    pub allowed_origins: Vec<String>,
    /// The sentence next to the consent checkbox.
    pub consent_text: String,
    /// A label for this wording; each lead records the version its visitor agreed to.
    pub consent_version: String,
    /// Where visitors can call with questions, as people dial it (`+1 555 010 0199`). Required:
    /// every email offers it. (Optional here only because sites stored before it was required
    /// may lack it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A page where a visitor can book a time with sales, offered to hot leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_url: Option<String>,
    /// Keep the first page of a visit in the site's `localStorage` for attribution (on unless
    /// turned off).
    #[serde(default = "yes")]
    pub first_touch_attribution: bool,
    /// The sender's postal address, printed in the footer of every email (the law in many
    /// places requires it in marketing email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
    /// Where alerts about hot leads go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sales_email: Option<String>,
    /// Emails' branding: a logo (an http(s) image) at the top, and an accent colour (`#rrggbb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    /// Send a confirmation email first, and start the sequence only once the person confirms.
    #[serde(default)]
    pub double_opt_in: bool,
    /// The site's own follow-up sequences by grade; grades left out use the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<crate::followup::Sequences>,
    /// Where webhook steps are POSTed (signed per Standard Webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The language of the site's emails (`en` by default; `de`).
    #[serde(default)]
    pub locale: crate::locale::Locale,
    /// Submissions sent sooner than this after the form was shown (or without the widget's
    /// render token) are kept as spam. 0 turns the check off, for sites that post leads from
    /// their own servers. 3 by default; at most 600.
    #[serde(default = "default_min_fill_seconds")]
    pub min_fill_seconds: u32,
    /// A second submission with the same email on the same site within this many hours updates
    /// the first lead (and counts a resubmission) instead of creating another. 0 turns it off.
    /// 24 by default; at most 8760 (a year).
    #[serde(default = "default_duplicate_window_hours")]
    pub duplicate_window_hours: u32,
    /// Cloudflare Turnstile's site key: set it and every submission must pass the challenge
    /// (the secret key is the Worker secret `TURNSTILE_SECRET_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turnstile_site_key: Option<String>,
}

pub const DEFAULT_MIN_FILL_SECONDS: u32 = 3;
pub const DEFAULT_DUPLICATE_WINDOW_HOURS: u32 = 24;

fn default_min_fill_seconds() -> u32 {
    DEFAULT_MIN_FILL_SECONDS
}

fn default_duplicate_window_hours() -> u32 {
    DEFAULT_DUPLICATE_WINDOW_HOURS
}

fn yes() -> bool {
    true
}

/// What the widget needs to render a site's form (`GET /v1/sites/{site}`): public by nature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteConfig {
    pub id: String,
    pub name: String,
    pub consent_text: String,
    pub consent_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_url: Option<String>,
    #[serde(default = "yes")]
    pub first_touch_attribution: bool,
    /// Whether visitors must confirm their address before the sequence starts (the widget says
    /// so on the thank-you).
    #[serde(default)]
    pub double_opt_in: bool,
    /// The Turnstile challenge to show, on sites that use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turnstile: Option<TurnstileConfig>,
    /// The site's minimum fill time: how long the widget waits before sending with a render
    /// token it could only fetch at the last moment (the edge counts from the token).
    #[serde(default = "default_min_fill_seconds")]
    pub min_fill_seconds: u32,
}

/// What the widget needs to show a Turnstile challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnstileConfig {
    pub site_key: String,
    /// Cloudflare's script (the Worker's `TURNSTILE_SCRIPT_URL` can point elsewhere, e.g. a
    /// stand-in for tests).
    pub script_url: String,
}

impl SiteDefinition {
    /// Checks a definition and returns it normalised (trimmed text, canonical origins), or every
    /// problem with it.
    pub fn validate(&self) -> Result<SiteDefinition, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut text = |field: &str, value: &str, max: usize| {
            let value = value.trim();
            if value.is_empty() || value.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("Must be between 1 and {max} characters."),
                ));
            }
            value.to_owned()
        };
        let name = text("name", &self.name, 100);
        let consent_text = text("consent_text", &self.consent_text, 1000);
        let consent_version = text("consent_version", &self.consent_version, 64);
        let phone = self
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        // Every email offers it: a person can always call rather than write.
        match phone {
            None => errors.push(FieldError::new(
                "phone",
                "Needed: every email offers it, so that people can call.",
            )),
            Some(p) if crate::validate::phone(p).is_err() => errors.push(FieldError::new(
                "phone",
                "Must be a phone number of 7 to 15 digits.",
            )),
            Some(_) => {}
        }
        let booking_url = given(&self.booking_url);
        let webhook_url = given(&self.webhook_url);
        let logo_url = given(&self.logo_url);
        let urls = [
            ("booking_url", booking_url),
            ("webhook_url", webhook_url),
            ("logo_url", logo_url),
        ];
        for (field, url) in urls {
            if url.is_some_and(|u| !is_web_url(u)) {
                errors.push(FieldError::new(
                    field,
                    "Must be an http(s) address of at most 2048 characters.",
                ));
            }
        }
        let postal_address = given(&self.postal_address);
        let brand_color = given(&self.brand_color).map(str::to_ascii_lowercase);
        if brand_color.as_deref().is_some_and(|c| {
            !(c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()))
        }) {
            errors.push(FieldError::new(
                "brand_color",
                "Must be a colour like #1d4ed8.",
            ));
        }
        if let Some(a) = postal_address
            && (a.chars().count() > 300 || a.chars().any(|c| c.is_control() && c != '\n'))
        {
            errors.push(FieldError::new(
                "postal_address",
                "Must be at most 300 characters, without control characters.",
            ));
        }
        let sales_email = match self.sales_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(address) => match crate::validate::email(address) {
                Ok(address) => Some(address),
                Err(message) => {
                    errors.push(FieldError::new("sales_email", message));
                    None
                }
            },
        };
        if let Some(sequences) = &self.sequences {
            errors.extend(sequences.validate(webhook_url.is_some()));
        }
        let mut allowed_origins = Vec::with_capacity(self.allowed_origins.len());
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            match normalise_origin(origin) {
                Some(o) => allowed_origins.push(o),
                None => errors.push(FieldError::new(
                    format!("allowed_origins[{i}]"),
                    "Must be an origin like https://www.example.com (no path).",
                )),
            }
        }
        if self.min_fill_seconds > 600 {
            errors.push(FieldError::new(
                "min_fill_seconds",
                "Must be between 0 and 600 seconds.",
            ));
        }
        if self.duplicate_window_hours > 8760 {
            errors.push(FieldError::new(
                "duplicate_window_hours",
                "Must be between 0 and 8760 hours.",
            ));
        }
        let turnstile_site_key = given(&self.turnstile_site_key);
        if turnstile_site_key.is_some_and(|k| {
            k.len() > 100
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            errors.push(FieldError::new(
                "turnstile_site_key",
                "Must be a Turnstile site key: letters, digits, - and _, at most 100.",
            ));
        }
        allowed_origins.sort();
        allowed_origins.dedup();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SiteDefinition {
            name,
            allowed_origins,
            consent_text,
            consent_version,
            phone: phone.map(str::to_owned),
            booking_url: booking_url.map(str::to_owned),
            first_touch_attribution: self.first_touch_attribution,
            postal_address: postal_address.map(str::to_owned),
            sales_email,
            double_opt_in: self.double_opt_in,
            sequences: self.sequences.clone(),
            webhook_url: webhook_url.map(str::to_owned),
            logo_url: logo_url.map(str::to_owned),
            brand_color,
            locale: self.locale,
            min_fill_seconds: self.min_fill_seconds,
            duplicate_window_hours: self.duplicate_window_hours,
            turnstile_site_key: turnstile_site_key.map(str::to_owned),
        })
    }
}

/// An optional text that was actually given: trimmed, blank meaning absent.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// An absolute `http(s)` URL we may show as a link.
fn is_web_url(value: &str) -> bool {
    value.len() <= 2048
        && url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// An origin as browsers serialise it (<https://html.spec.whatwg.org/#ascii-serialisation-of-an-origin>):
/// lower-case `http`/`https` scheme and host, the port only when it is not the scheme's default,
/// an internationalised domain in its ASCII (`xn--`) form. `None` when the text is not such an
/// origin.
pub fn normalise_origin(value: &str) -> Option<String> {
    let value = value.trim();
    if !value.is_ascii() {
        // `https://münchen.de` arrives from browsers as `https://xn--mnchen-3ya.de`: only the
        // URL parser's IDNA knows that form. An origin's URL is its ASCII form plus `/`: a path,
        // query or fragment is refused here, credentials by the host check below.
        let url = url::Url::parse(value).ok()?;
        let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
        return bare.then(|| normalise_origin(url.as_str())).flatten();
    }
    let value = value.to_ascii_lowercase();
    let value = value.strip_suffix('/').unwrap_or(&value);
    let (scheme, rest) = value.split_once("://")?;
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (host, port) = if rest.starts_with('[') {
        let (host, after) = rest.split_at(rest.find(']')? + 1);
        let port = if after.is_empty() {
            None
        } else {
            Some(after.strip_prefix(':')?)
        };
        (host, port)
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if !host_ok {
        return None;
    }
    match port {
        None => Some(format!("{scheme}://{host}")),
        Some(p) if p == default_port => Some(format!("{scheme}://{host}")),
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = p.parse().ok()?;
            (1..=65535)
                .contains(&n)
                .then(|| format!("{scheme}://{host}:{n}"))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("https://www.example.com", "https://www.example.com")]
    #[case("HTTPS://WWW.Example.com/", "https://www.example.com")]
    #[case("https://example.com:443", "https://example.com")]
    #[case("http://example.com:80", "http://example.com")]
    #[case("http://127.0.0.1:8787", "http://127.0.0.1:8787")]
    #[case("http://localhost:08787", "http://localhost:8787")]
    #[case("http://[::1]:8080", "http://[::1]:8080")]
    #[case("https://münchen.de", "https://xn--mnchen-3ya.de")]
    #[case(" https://Bücher.example:443/ ", "https://xn--bcher-kva.example")]
    #[case("https://東京.example:8443", "https://xn--1lqs71d.example:8443")]
    fn normalises_origins_as_browsers_send_them(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(normalise_origin(input).as_deref(), Some(expected));
    }

    #[rstest]
    #[case("example.com")]
    #[case("ftp://example.com")]
    #[case("https://example.com/path")]
    #[case("https://")]
    #[case("https://exa mple.com")]
    #[case("https://example.com:99999")]
    #[case("https://example.com:")]
    #[case("https://a..b")]
    #[case("*")]
    #[case("https://münchen.de/path")]
    #[case("https://münchen.de?q")]
    #[case("https://user@münchen.de")]
    #[case("ftp://münchen.de")]
    #[case("https://exa mplé.com")]
    fn refuses_what_is_not_an_origin(#[case] input: &str) {
        assert_eq!(normalise_origin(input), None);
    }

    fn definition() -> SiteDefinition {
        SiteDefinition {
            name: " Acme ".into(),
            allowed_origins: vec![
                "https://acme.example/".into(),
                "https://acme.example".into(),
            ],
            consent_text: "You may contact me about my request.".into(),
            consent_version: "2026-11".into(),
            phone: Some(" +1 555 010 0199 ".into()),
            booking_url: Some("https://cal.example/acme".into()),
            first_touch_attribution: true,
            postal_address: Some("1 Main St, Springfield".into()),
            sales_email: Some("sales@acme.example".into()),
            double_opt_in: false,
            sequences: None,
            webhook_url: None,
            logo_url: None,
            brand_color: None,
            locale: Default::default(),
            min_fill_seconds: DEFAULT_MIN_FILL_SECONDS,
            duplicate_window_hours: DEFAULT_DUPLICATE_WINDOW_HOURS,
            turnstile_site_key: None,
        }
    }

    #[test]
    fn spam_settings_default_on_and_are_bounded() {
        let json = r#"{"name":"A","allowed_origins":[],"consent_text":"c","consent_version":"v"}"#;
        let site: SiteDefinition = serde_json::from_str(json).unwrap();
        assert_eq!(site.min_fill_seconds, 3);
        assert_eq!(site.duplicate_window_hours, 24);
        let mut site = definition();
        site.min_fill_seconds = 601;
        site.duplicate_window_hours = 8761;
        site.turnstile_site_key = Some("0x4AAA <script>".into());
        let fields: Vec<String> = site
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "min_fill_seconds",
                "duplicate_window_hours",
                "turnstile_site_key"
            ]
        );
        site.min_fill_seconds = 0;
        site.duplicate_window_hours = 0;
        site.turnstile_site_key = Some(" 1x00000000000000000000AA ".into());
        let valid = site.validate().unwrap();
        assert_eq!(
            valid.turnstile_site_key.as_deref(),
            Some("1x00000000000000000000AA")
        );
    }

    #[test]
    fn the_email_language_defaults_to_english_and_refuses_the_unknown() {
        let json = r#"{"name": "A", "allowed_origins": [], "consent_text": "c", "consent_version": "v",
                       "phone": "+1 555 010 0199"}"#;
        let site: SiteDefinition = serde_json::from_str(json).unwrap();
        assert_eq!(site.locale, crate::locale::Locale::En);
        let german = json.replace('}', r#", "locale": "de"}"#);
        let site: SiteDefinition = serde_json::from_str(&german).unwrap();
        assert_eq!(site.validate().unwrap().locale, crate::locale::Locale::De);
        let klingon = json.replace('}', r#", "locale": "tlh"}"#);
        assert!(serde_json::from_str::<SiteDefinition>(&klingon).is_err());
    }

    #[test]
    fn a_site_needs_a_phone_number_for_its_emails() {
        for missing in [None, Some("  ".to_owned())] {
            let mut site = definition();
            site.phone = missing;
            let errors = site.validate().unwrap_err();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "phone");
            assert!(
                errors[0].message.starts_with("Needed"),
                "{}",
                errors[0].message
            );
        }
    }

    #[test]
    fn a_definition_is_normalised() {
        let site = definition().validate().unwrap();
        assert_eq!(site.name, "Acme");
        assert_eq!(site.allowed_origins, ["https://acme.example"]);
        assert_eq!(site.phone.as_deref(), Some("+1 555 010 0199"));
    }

    #[test]
    fn every_bad_part_of_a_definition_is_named() {
        let mut site = definition();
        site.name = String::new();
        site.allowed_origins.push("acme.example/contact".into());
        site.phone = Some("call us".into());
        site.booking_url = Some("javascript:alert(1)".into());
        site.sales_email = Some("sales at acme".into());
        site.brand_color = Some("blue".into());
        site.logo_url = Some("ftp://acme.example/logo.png".into());
        let errors = site.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "phone",
                "booking_url",
                "logo_url",
                "brand_color",
                "sales_email",
                "allowed_origins[2]"
            ]
        );
    }
}
