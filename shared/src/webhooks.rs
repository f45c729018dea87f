//! Webhook subscriptions: which events a site's subscriber wants, where, and the secret its
//! deliveries are signed with (Standard Webhooks, <https://www.standardwebhooks.com>; the
//! signature itself is [`crate::followup::webhook_signature`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::{FieldError, Grade};

/// What a subscriber can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Event {
    /// A lead was captured.
    #[serde(rename = "lead.created")]
    LeadCreated,
    /// A lead is `hot` for the first time (captured hot, or turned hot when the person sent the
    /// form again): call them now.
    #[serde(rename = "lead.hot")]
    LeadHot,
    /// Sales moved a lead along its lifecycle.
    #[serde(rename = "lead.status_changed")]
    LeadStatusChanged,
}

impl Event {
    pub const ALL: [Event; 3] = [Event::LeadCreated, Event::LeadHot, Event::LeadStatusChanged];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::LeadCreated => "lead.created",
            Event::LeadHot => "lead.hot",
            Event::LeadStatusChanged => "lead.status_changed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == value)
    }
}

/// What subscribers hear of a lead just captured: that it arrived, and whether it is hot.
/// Spam is announced to no one.
pub fn on_capture(grade: Grade, spam: bool) -> Vec<Event> {
    match (spam, grade) {
        (true, _) => Vec::new(),
        (false, Grade::Hot) => vec![Event::LeadCreated, Event::LeadHot],
        (false, _) => vec![Event::LeadCreated],
    }
}

/// The event type of a delivery sent by the test-send endpoint.
pub const TEST_EVENT: &str = "webhook.test";

/// `POST /v1/admin/sites/{site}/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<Event>,
}

impl NewWebhook {
    /// Checks the subscription; the events come back sorted and de-duplicated.
    pub fn validate(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let url_ok = self.url.len() <= 2048
            && url::Url::parse(&self.url).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.password().is_none()
            });
        if !url_ok {
            errors.push(FieldError::new(
                "url",
                "Give the absolute http(s) address that receives the events.",
            ));
        }
        if self.events.is_empty() {
            errors.push(FieldError::new(
                "events",
                "Choose at least one event: lead.created, lead.hot or lead.status_changed.",
            ));
        }
        self.events.sort_unstable();
        self.events.dedup();
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// A signing secret as Standard Webhooks writes it: `whsec_` and the base64 of the key.
pub fn secret_from_key(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::followup::webhook_signature;

    #[test]
    fn events_round_trip_by_name() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.as_str()), Some(event));
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
        assert!(serde_json::from_str::<Event>("\"lead.deleted\"").is_err());
    }

    #[test]
    fn subscriptions_need_a_web_address_and_an_event() {
        let ok = NewWebhook {
            url: "https://crm.example.com/hooks/leadglue".into(),
            events: vec![Event::LeadHot, Event::LeadCreated, Event::LeadHot],
        }
        .validate()
        .unwrap();
        assert_eq!(ok.events, [Event::LeadCreated, Event::LeadHot]);
        for url in [
            "ftp://x.example",
            "/relative",
            "https://user:pw@x.example/",
            "",
        ] {
            let errors = NewWebhook {
                url: url.into(),
                events: vec![],
            }
            .validate()
            .unwrap_err();
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["url", "events"], "{url}");
        }
    }

    #[test]
    fn a_capture_announces_creation_heat_and_never_spam() {
        assert_eq!(
            on_capture(Grade::Hot, false),
            [Event::LeadCreated, Event::LeadHot]
        );
        assert_eq!(on_capture(Grade::Warm, false), [Event::LeadCreated]);
        assert_eq!(on_capture(Grade::Cold, false), [Event::LeadCreated]);
        assert!(on_capture(Grade::Hot, true).is_empty());
    }

    #[test]
    fn generated_secrets_sign() {
        let secret = secret_from_key(&[7; 24]);
        assert!(secret.starts_with("whsec_"));
        assert!(webhook_signature(&secret, "msg_1", 1, "{}").is_some());
    }
}
