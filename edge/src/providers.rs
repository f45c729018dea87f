//! Email providers behind one interface: Resend's and Postmark's HTTP APIs (base URLs
//! configurable, so a local stand-in can answer), and Cloudflare's `send_email` binding with a
//! MIME message built by `mail-builder`. Which one is used is `EMAIL_PROVIDER`'s choice.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Either, select};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use serde::{Deserialize, Serialize};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use leadglue_shared::followup::{Template, webhook_signature};

use crate::config::{self, EmailConfig, Provider};
use crate::repo::ClaimedFollowUp;

/// How long a provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// An email as providers take it.
#[derive(Debug, Serialize)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub headers: BTreeMap<String, String>,
    /// The follow-up step's id: sent as the provider's idempotency key where it takes one, so
    /// a step is delivered at most once even when the provider saw an earlier attempt whose
    /// answer was lost; and the base of the Message-ID.
    #[serde(skip)]
    pub idempotency_key: String,
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug)]
pub struct Failure {
    pub reason: String,
    pub retryable: bool,
}

impl Failure {
    pub fn retryable(reason: String) -> Self {
        Self {
            reason,
            retryable: true,
        }
    }
}

/// Sends through the configured provider; returns the provider's message id.
pub async fn send(
    config: &EmailConfig,
    env: &Env,
    email: &OutgoingEmail,
) -> Result<String, Failure> {
    match &config.provider {
        Provider::Resend { base_url, api_key } => {
            let answer = post_json(
                &format!("{base_url}/emails"),
                &[
                    ("authorization", &format!("Bearer {api_key}")),
                    ("idempotency-key", &email.idempotency_key),
                ],
                email,
            )
            .await?;
            #[derive(Deserialize)]
            struct Sent {
                id: String,
            }
            serde_json::from_str::<Sent>(&answer)
                .map(|sent| sent.id)
                .map_err(|_| Failure::retryable("Resend answered without an id".into()))
        }
        Provider::Postmark { base_url, token } => {
            let answer = post_json(
                &format!("{base_url}/email"),
                &[
                    ("x-postmark-server-token", token),
                    ("accept", "application/json"),
                ],
                &postmark_body(email),
            )
            .await?;
            #[derive(Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Sent {
                #[serde(rename = "MessageID")]
                message_id: String,
            }
            serde_json::from_str::<Sent>(&answer)
                .map(|sent| sent.message_id)
                .map_err(|_| Failure::retryable("Postmark answered without a MessageID".into()))
        }
        Provider::Cloudflare => {
            let raw = mime(config, email)?;
            let to = email.to.first().map(String::as_str).unwrap_or_default();
            let message = worker::EmailMessage::new(config.sender_address(), to, &raw)
                .map_err(|e| Failure::retryable(format!("building the message: {e:?}")))?;
            let binding = env
                .send_email(config::EMAIL)
                .map_err(|e| Failure::retryable(format!("the EMAIL binding: {e}")))?;
            let sent = binding
                .send(&message)
                .await
                .map_err(|e| Failure::retryable(format!("send_email: {e:?}")))?;
            Ok(sent.message_id())
        }
    }
}

/// A webhook step: POSTs the lead's essentials to the site's `webhook_url`, signed per Standard
/// Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with `WEBHOOK_SECRET`, so
/// direct-mail, voice or fax-broadcast services and CRMs can act on a sequence step.
pub async fn webhook(config: &EmailConfig, step: &ClaimedFollowUp) -> Result<String, Failure> {
    let url = step.webhook_url.as_deref().ok_or_else(|| Failure {
        reason: "the site has no webhook_url".into(),
        retryable: false,
    })?;
    let secret = config
        .webhook_secret
        .as_deref()
        .ok_or_else(|| Failure::retryable("WEBHOOK_SECRET is not set".into()))?;
    // Signed as of the real time (receivers reject a timestamp far from their clock), whatever
    // time the dispatcher judged the step due by (a rehearsal's `?now=`, a queue backlog).
    let timestamp = crate::now_ms() / 1000;
    // The hot-lead alert, sent as a webhook, is the `lead.hot` event; other steps are sequence
    // steps.
    let kind = if step.template == Template::SalesAlert.as_str() {
        "lead.hot"
    } else {
        "follow_up.step"
    };
    let body = serde_json::json!({
        "type": kind,
        "timestamp": timestamp,
        "data": {
            "step": step.template,
            "lead": {
                "id": step.lead_id,
                "name": step.name,
                "email": step.email,
                "company": step.company,
                "phone": step.phone,
                "grade": step.grade,
                "score": step.score,
            },
            "site": step.site_name,
        },
    })
    .to_string();
    let signature = webhook_signature(secret, &step.id, timestamp, &body)
        .ok_or_else(|| Failure::retryable("WEBHOOK_SECRET must be whsec_ and base64".into()))?;
    post_raw(
        url,
        &[
            ("webhook-id", &step.id),
            ("webhook-timestamp", &timestamp.to_string()),
            ("webhook-signature", &signature),
        ],
        body,
    )
    .await?;
    Ok(step.id.clone())
}

/// Postmark's field names and header list.
fn postmark_body(email: &OutgoingEmail) -> serde_json::Value {
    serde_json::json!({
        "From": email.from,
        "To": email.to.join(", "),
        "Subject": email.subject,
        "TextBody": email.text,
        "HtmlBody": email.html,
        "Headers": email
            .headers
            .iter()
            .map(|(name, value)| serde_json::json!({ "Name": name, "Value": value }))
            .collect::<Vec<_>>(),
        "MessageStream": "outbound",
    })
}

/// The message as MIME (multipart/alternative, text and HTML), for providers that take raw
/// messages. Built by `mail-builder`, which encodes and folds headers correctly; Message-ID and
/// Date are set here because the Worker has no hostname and no system clock.
pub fn mime(config: &EmailConfig, email: &OutgoingEmail) -> Result<String, Failure> {
    let domain = config
        .sender_address()
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost");
    let message_id = format!("{}@{domain}", email.idempotency_key.replace('/', "."));
    let from: Address<'_> = match config.sender_name() {
        Some(name) => (name, config.sender_address()).into(),
        None => config.sender_address().into(),
    };
    let now_s = i64::try_from(worker::Date::now().as_millis() / 1000).unwrap_or_default();
    let mut builder: MessageBuilder<'_> = MessageBuilder::new()
        .from(from)
        .to(email.to.clone())
        .subject(email.subject.as_str())
        .message_id(message_id)
        .date(now_s)
        .text_body(email.text.as_str())
        .html_body(email.html.as_str());
    for (name, value) in &email.headers {
        builder = builder.header(name.clone(), Raw::new(value.as_str()));
    }
    builder
        .write_to_string()
        .map_err(|e| Failure::retryable(format!("building MIME: {e}")))
}

/// POSTs JSON; the answer's body on 2xx. Rate limits and server errors pass and are retried;
/// other refusals will not change on retry.
async fn post_json<T: Serialize>(
    url: &str,
    extra: &[(&str, &str)],
    body: &T,
) -> Result<String, Failure> {
    let body = serde_json::to_string(body)
        .map_err(|e| Failure::retryable(format!("serialising the request: {e}")))?;
    post_raw(url, extra, body).await
}

/// POSTs a JSON text as is (a signature covers these exact bytes).
async fn post_raw(url: &str, extra: &[(&str, &str)], body: String) -> Result<String, Failure> {
    let (status, text) = post_text(url, extra, body).await?;
    match status {
        200..=299 => Ok(text),
        429 | 500..=599 => Err(Failure::retryable(format!("provider answered {status}"))),
        _ => Err(Failure {
            reason: format!(
                "provider refused ({status}): {}",
                text.chars().take(300).collect::<String>()
            ),
            retryable: false,
        }),
    }
}

/// POSTs a JSON text and returns the answer's status and text, whatever the status. No answer
/// within the timeout, or none at all, is a retryable failure.
pub async fn post_text(
    url: &str,
    extra: &[(&str, &str)],
    body: String,
) -> Result<(u16, String), Failure> {
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let attempt = async {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        for (name, value) in extra {
            headers.set(name, value)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let mut response = Fetch::Request(Request::new_with_init(url, &init)?)
            .send_with_signal(&signal)
            .await?;
        let status = response.status_code();
        let text = response.text().await.unwrap_or_default();
        Ok::<_, worker::Error>((status, text))
    };
    // A provider that does not answer in time is treated like one that failed: the step is
    // retried later with the same idempotency key, so a message Resend did accept is not sent
    // twice (Postmark and `send_email` take no key: there it can be).
    let timeout = worker::Delay::from(PROVIDER_TIMEOUT);
    let (status, text) = match select(pin!(attempt), pin!(timeout)).await {
        Either::Left((answer, _)) => {
            answer.map_err(|e| Failure::retryable(format!("provider unreachable: {e}")))?
        }
        Either::Right(_) => {
            controller.abort();
            return Err(Failure::retryable(format!(
                "provider did not answer within {} s",
                PROVIDER_TIMEOUT.as_secs()
            )));
        }
    };
    Ok((status, text))
}
