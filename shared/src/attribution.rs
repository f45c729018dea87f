//! Attribution without cookies: where a lead came from, derived from the first page of the
//! visit (kept by the widget in the site's own `localStorage`) and its referrer.

use serde::{Deserialize, Serialize};
use url::Url;

/// What the widget sends: the first page of the visit and the page that referred to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstTouch {
    pub landing_page: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

/// Where a lead came from, as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msclkid: Option<String>,
    /// The `ref` parameter: a referral or partner code.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub referral_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page: Option<String>,
}

/// Marketing channels, by the rules in [`channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    PaidSearch,
    OrganicSearch,
    PaidSocial,
    OrganicSocial,
    Email,
    Referral,
    Direct,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Direct,
        Channel::PaidSearch,
        Channel::OrganicSearch,
        Channel::PaidSocial,
        Channel::OrganicSocial,
        Channel::Email,
        Channel::Referral,
    ];

    /// The channel named `name` (as [`Channel::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PaidSearch => "paid_search",
            Channel::OrganicSearch => "organic_search",
            Channel::PaidSocial => "paid_social",
            Channel::OrganicSocial => "organic_social",
            Channel::Email => "email",
            Channel::Referral => "referral",
            Channel::Direct => "direct",
        }
    }
}

/// Longest value kept for a parameter; longer ones are cut, not refused: attribution is
/// captured by machines and must never cost a lead.
const MAX_PARAM: usize = 200;
const MAX_URL: usize = 2048;

impl Attribution {
    /// Reads the parameters of a first touch. Unparseable URLs and oversize values are dropped
    /// or cut, never refused.
    pub fn from_first_touch(touch: &FirstTouch) -> Self {
        let mut a = Attribution {
            landing_page: clean(&touch.landing_page, MAX_URL),
            referrer: touch.referrer.as_deref().and_then(|r| clean(r, MAX_URL)),
            ..Attribution::default()
        };
        let Ok(url) = Url::parse(&touch.landing_page) else {
            return a;
        };
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "utm_source" => &mut a.utm_source,
                "utm_medium" => &mut a.utm_medium,
                "utm_campaign" => &mut a.utm_campaign,
                "utm_term" => &mut a.utm_term,
                "utm_content" => &mut a.utm_content,
                "gclid" => &mut a.gclid,
                "fbclid" => &mut a.fbclid,
                "msclkid" => &mut a.msclkid,
                "ref" => &mut a.referral_code,
                _ => continue,
            };
            if slot.is_none() {
                *slot = clean(&value, MAX_PARAM);
            }
        }
        a
    }
}

/// Trimmed, without control characters, at most `max` characters; `None` when nothing is left.
fn clean(value: &str, max: usize) -> Option<String> {
    let kept: String = value
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

const SEARCH_ENGINES: [&str; 9] = [
    "google",
    "bing",
    "duckduckgo",
    "yahoo",
    "baidu",
    "yandex",
    "ecosia",
    "startpage",
    "qwant",
];
const SOCIAL_SITES: [&str; 16] = [
    "facebook.com",
    "fb.com",
    "instagram.com",
    "linkedin.com",
    "lnkd.in",
    "t.co",
    "twitter.com",
    "x.com",
    "reddit.com",
    "youtube.com",
    "tiktok.com",
    "pinterest.com",
    "threads.net",
    "bsky.app",
    "mastodon.social",
    "news.ycombinator.com",
];
const SOCIAL_SOURCES: [&str; 10] = [
    "facebook",
    "fb",
    "instagram",
    "ig",
    "linkedin",
    "twitter",
    "x",
    "reddit",
    "tiktok",
    "youtube",
];

/// The channel a lead came through. Explicit campaign tagging wins over click ids, click ids
/// over the referrer; a visit with none of them is direct. A referrer on the landing page's own
/// host is internal navigation, not a referral.
pub fn channel(a: &Attribution) -> Channel {
    let medium = a.utm_medium.as_deref().map(str::to_ascii_lowercase);
    let source = a.utm_source.as_deref().map(str::to_ascii_lowercase);
    let medium = medium.as_deref().unwrap_or_default();
    let source = source.as_deref().unwrap_or_default();
    let social_source = SOCIAL_SOURCES.contains(&source);
    let paid = matches!(
        medium,
        "cpc" | "ppc" | "paid" | "paidsearch" | "paid_search" | "sem" | "cpm"
    );

    if matches!(
        medium,
        "paid_social" | "paidsocial" | "social_paid" | "social-paid" | "paid-social"
    ) || (paid && social_source)
    {
        return Channel::PaidSocial;
    }
    if paid || a.gclid.is_some() || a.msclkid.is_some() {
        return Channel::PaidSearch;
    }
    if medium == "email" || matches!(source, "newsletter" | "email") {
        return Channel::Email;
    }
    if matches!(
        medium,
        "social" | "social-network" | "social_network" | "social-media" | "social_media" | "sm"
    ) || social_source
    {
        return Channel::OrganicSocial;
    }
    if medium == "organic" {
        return Channel::OrganicSearch;
    }
    if matches!(medium, "referral" | "affiliate" | "partner") || a.referral_code.is_some() {
        return Channel::Referral;
    }
    if a.fbclid.is_some() {
        // Facebook adds fbclid to every outbound link; without a paid medium it is organic.
        return Channel::OrganicSocial;
    }
    let referrer = a.referrer.as_deref().and_then(host);
    let own = a.landing_page.as_deref().and_then(host);
    match referrer {
        Some(r) if Some(&r) == own.as_ref() => {}
        Some(r) if is_search_engine(&r) => return Channel::OrganicSearch,
        Some(r) if is_social(&r) => return Channel::OrganicSocial,
        Some(_) => return Channel::Referral,
        None => {}
    }
    if !source.is_empty() {
        // Tagged, but with a medium we do not recognise: someone sent them on purpose.
        return Channel::Referral;
    }
    Channel::Direct
}

fn host(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").map(str::to_owned).unwrap_or(host))
}

/// `google.com`, `google.co.uk`, `search.yahoo.com`, `search.brave.com`; not `docs.google.com`.
fn is_search_engine(host: &str) -> bool {
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    let second = labels.next().unwrap_or_default();
    SEARCH_ENGINES.contains(&first)
        || (first == "search" && (SEARCH_ENGINES.contains(&second) || second == "brave"))
}

fn is_social(host: &str) -> bool {
    SOCIAL_SITES
        .iter()
        .any(|site| host == *site || host.ends_with(&format!(".{site}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn touch(landing: &str, referrer: Option<&str>) -> Attribution {
        Attribution::from_first_touch(&FirstTouch {
            landing_page: landing.into(),
            referrer: referrer.map(str::to_owned),
        })
    }

    #[test]
    fn reads_campaign_parameters_from_the_landing_page() {
        let a = touch(
            "https://shop.example/pricing?utm_source=Google&utm_medium=cpc&utm_campaign=spring%20sale&utm_term=crm&utm_content=ad1&gclid=abc&ref=partner42&other=x",
            Some("https://www.google.com/"),
        );
        assert_eq!(a.utm_source.as_deref(), Some("Google"));
        assert_eq!(a.utm_medium.as_deref(), Some("cpc"));
        assert_eq!(a.utm_campaign.as_deref(), Some("spring sale"));
        assert_eq!(a.utm_term.as_deref(), Some("crm"));
        assert_eq!(a.utm_content.as_deref(), Some("ad1"));
        assert_eq!(a.gclid.as_deref(), Some("abc"));
        assert_eq!(a.referral_code.as_deref(), Some("partner42"));
        assert_eq!(a.referrer.as_deref(), Some("https://www.google.com/"));
        assert_eq!(channel(&a), Channel::PaidSearch);
    }

    #[rstest]
    #[case::gclid("https://s.example/?gclid=1", None, Channel::PaidSearch)]
    #[case::msclkid("https://s.example/?msclkid=1", None, Channel::PaidSearch)]
    #[case::cpc(
        "https://s.example/?utm_source=bing&utm_medium=cpc",
        None,
        Channel::PaidSearch
    )]
    #[case::paid_social_medium(
        "https://s.example/?utm_source=facebook&utm_medium=paid_social",
        None,
        Channel::PaidSocial
    )]
    #[case::cpc_on_social(
        "https://s.example/?utm_source=linkedin&utm_medium=cpc",
        None,
        Channel::PaidSocial
    )]
    #[case::email(
        "https://s.example/?utm_source=mailchimp&utm_medium=email",
        None,
        Channel::Email
    )]
    #[case::newsletter("https://s.example/?utm_source=newsletter", None, Channel::Email)]
    #[case::social_medium(
        "https://s.example/?utm_source=mastodon&utm_medium=social",
        None,
        Channel::OrganicSocial
    )]
    #[case::fbclid_alone(
        "https://s.example/?fbclid=IwAR",
        Some("https://l.facebook.com/"),
        Channel::OrganicSocial
    )]
    #[case::ref_code("https://s.example/?ref=partner42", None, Channel::Referral)]
    #[case::google(
        "https://s.example/",
        Some("https://www.google.co.uk/"),
        Channel::OrganicSearch
    )]
    #[case::duckduckgo(
        "https://s.example/",
        Some("https://duckduckgo.com/"),
        Channel::OrganicSearch
    )]
    #[case::yahoo_search(
        "https://s.example/",
        Some("https://search.yahoo.com/search?p=x"),
        Channel::OrganicSearch
    )]
    #[case::google_docs_is_not_search(
        "https://s.example/",
        Some("https://docs.google.com/document/d/1"),
        Channel::Referral
    )]
    #[case::linkedin(
        "https://s.example/",
        Some("https://www.linkedin.com/feed/"),
        Channel::OrganicSocial
    )]
    #[case::t_co("https://s.example/", Some("https://t.co/abc"), Channel::OrganicSocial)]
    #[case::blog(
        "https://s.example/",
        Some("https://someblog.example/post"),
        Channel::Referral
    )]
    #[case::own_site(
        "https://s.example/pricing",
        Some("https://www.s.example/blog"),
        Channel::Direct
    )]
    #[case::typed_in("https://s.example/", None, Channel::Direct)]
    #[case::unknown_medium(
        "https://s.example/?utm_source=podcast&utm_medium=audio",
        None,
        Channel::Referral
    )]
    #[case::not_a_url("not a url", Some("also not"), Channel::Direct)]
    fn derives_channels(
        #[case] landing: &str,
        #[case] referrer: Option<&str>,
        #[case] expected: Channel,
    ) {
        assert_eq!(channel(&touch(landing, referrer)), expected);
    }

    #[test]
    fn the_first_occurrence_of_a_parameter_wins_and_long_values_are_cut() {
        let long = "x".repeat(500);
        let a = touch(
            &format!("https://s.example/?utm_source=a&utm_source=b&utm_term={long}"),
            None,
        );
        assert_eq!(a.utm_source.as_deref(), Some("a"));
        assert_eq!(a.utm_term.map(|t| t.len()), Some(200));
    }

    proptest! {
        /// Whatever a page's address and referrer are, attribution is read without panicking,
        /// keeps no control characters, and gives a channel.
        #[test]
        fn any_touch_is_read(landing in "\\PC{0,300}", referrer in proptest::option::of("\\PC{0,100}")) {
            let a = touch(&landing, referrer.as_deref());
            let _ = channel(&a);
            for value in [&a.landing_page, &a.referrer, &a.utm_source, &a.utm_term].into_iter().flatten() {
                prop_assert!(!value.chars().any(char::is_control));
            }
        }
    }
}
