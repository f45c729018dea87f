//! Follow-up at the edge. The cron trigger (every minute) and the admin "run now" call move due
//! steps onto the queue; the queue consumer claims each step exactly once and sends it through
//! the email provider; failures go back to the outbox with a backoff, then to `dead` with the
//! reason kept. The steps due when a lead is captured go onto the queue right after its
//! response, gathered with other captures' for a moment (`enqueue_soon`).

use leadglue_shared::followup::{
    Channel, LeadSummary, MessageContext, Purpose, Sequences, Template, idempotency_key,
    plan_sequence, render, render_sales_alert, retry_delay_ms, sign,
};
use leadglue_shared::locale::Locale;
use leadglue_shared::{FormDefinition, Grade};
use serde::{Deserialize, Serialize};
use worker::{Env, MessageBatch, MessageExt};

use crate::config::{self, EmailConfig};
use crate::error::AppError;
use crate::providers::{self, Failure, OutgoingEmail};
use crate::repo::{ClaimedFollowUp, Repo};

/// A queue message: which step, and the time to judge "due" by (the dispatcher's clock, so a
/// test or an operator can run the schedule as of a given time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dispatch {
    pub id: String,
    pub now_ms: i64,
    /// A follow-up step (the default, and all messages before webhooks existed) or a webhook
    /// delivery.
    #[serde(default)]
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    FollowUp,
    Webhook,
}

/// Steps put on the queue per run; the next run takes the rest.
const BATCH: u32 = 100;

/// Queues every step and webhook delivery due at `now_ms` (of one site's leads, or all).
/// Returns how many.
pub async fn dispatch_due(env: &Env, now_ms: i64, site: Option<&str>) -> Result<usize, AppError> {
    let repo = Repo::new(env.d1(config::DB)?);
    let steps = repo.queue_due_follow_ups(now_ms, site, BATCH).await?;
    enqueue(env, &steps, now_ms, Kind::FollowUp).await?;
    let deliveries = repo.queue_due_deliveries(now_ms, site, BATCH).await?;
    enqueue(env, &deliveries, now_ms, Kind::Webhook).await?;
    Ok(steps.len() + deliveries.len())
}

pub async fn enqueue(env: &Env, ids: &[String], now_ms: i64, kind: Kind) -> Result<(), AppError> {
    let messages = ids.iter().map(|id| Dispatch {
        id: id.clone(),
        now_ms,
        kind,
    });
    send(env, messages.collect()).await
}

/// The most messages one `sendBatch` call takes (Cloudflare Queues' limit).
const SEND_BATCH_LIMIT: usize = 100;

/// Puts messages on the queue, at most [`SEND_BATCH_LIMIT`] per call.
async fn send(env: &Env, messages: Vec<Dispatch>) -> Result<(), AppError> {
    if messages.is_empty() {
        return Ok(());
    }
    let queue = env.queue(config::FOLLOW_UPS)?;
    for chunk in messages.chunks(SEND_BATCH_LIMIT) {
        queue.send_batch(chunk.to_vec()).await?;
    }
    Ok(())
}

/// How long the messages due at a capture wait for other captures' in the same isolate, to go
/// onto the queue in one call. A campaign's burst then costs one queue call per few leads rather
/// than one per lead (measured: ~0.25 ms less CPU per lead at 8 connections, see
/// docs/benchmarks.md); a visitor's first email comes this much later.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

thread_local! {
    static GATHERED: std::cell::RefCell<Gathered> = std::cell::RefCell::default();
}

/// The messages gathered in this isolate and not yet sent.
#[derive(Default)]
struct Gathered(Vec<Dispatch>);

impl Gathered {
    /// Adds `messages`; true when they start a new gathering, which their request then sends.
    fn add(&mut self, messages: Vec<Dispatch>) -> bool {
        let starts = self.0.is_empty() && !messages.is_empty();
        self.0.extend(messages);
        starts
    }

    fn take(&mut self) -> Vec<Dispatch> {
        std::mem::take(&mut self.0)
    }
}

/// Queues the messages due at a capture without making its request wait: they are gathered with
/// other leads' for `GATHER` and sent by the request that started the gathering, after its
/// response. Should they be lost (the isolate ends first, or the queue refuses them), the steps
/// are still in the outbox and the cron trigger queues them within a minute.
pub fn enqueue_soon(ctx: &worker::Context, env: &Env, messages: Vec<Dispatch>) {
    if !GATHERED.with_borrow_mut(|gathered| gathered.add(messages)) {
        return;
    }
    let env = env.clone();
    ctx.wait_until(async move {
        worker::Delay::from(GATHER).await;
        let messages = GATHERED.with_borrow_mut(Gathered::take);
        if let Err(err) = send(&env, messages).await {
            worker::console_error!("queueing the messages due at captures: {err}");
        }
    });
}

/// The queue consumer. Every message is acknowledged once handled: retries live in the outbox
/// (with their backoff), not in queue redelivery; only a failure to even record the outcome asks
/// the queue to redeliver.
pub async fn consume(batch: MessageBatch<Dispatch>, env: &Env) -> Result<(), AppError> {
    let repo = Repo::new(env.d1(config::DB)?);
    let config = EmailConfig::from_env(env);
    if let Err(problem) = &config {
        worker::console_error!("email is not configured: {problem}");
    }
    for message in batch.messages()? {
        let Dispatch { id, now_ms, kind } = message.body();
        let handled = match kind {
            Kind::FollowUp => process(&repo, env, config.as_ref(), id, *now_ms).await,
            Kind::Webhook => crate::webhooks::deliver(&repo, id, *now_ms).await,
        };
        match handled {
            Ok(()) => message.ack(),
            Err(err) => {
                worker::console_error!("follow-up {id}: {err}");
                message.retry();
            }
        }
    }
    Ok(())
}

async fn process(
    repo: &Repo,
    env: &Env,
    config: Result<&EmailConfig, &String>,
    id: &str,
    now_ms: i64,
) -> Result<(), AppError> {
    // Already sent, taken by another delivery of this message, cancelled, or not due: nothing
    // to do. This is what makes a redelivered message harmless.
    let Some(step) = repo.claim_follow_up(id, now_ms).await? else {
        return Ok(());
    };
    // Unsubscribing cancels what is pending, but a step already on its way (or a sequence
    // starting at that moment) is caught here: nothing reaches a lead who unsubscribed. Sales
    // alerts and the lead.hot event go to the site, not the lead.
    // Likewise a lead that sales moved on (prospect or beyond): nurture stops there. And
    // nothing at all goes out about a person whose data was erased, or a lead sales kept as
    // spam.
    let to_lead = step.template != Template::SalesAlert.as_str();
    if step.erased || step.spam || (to_lead && (step.unsubscribed || !step.nurtured)) {
        return repo.follow_up_cancelled(&step.id, now_ms).await;
    }
    if step.template == Template::StartSequence.as_str() {
        return start_sequence(repo, env, &step, now_ms).await;
    }
    let outcome = match config {
        Ok(config) if step.channel == Channel::Webhook.as_str() => {
            providers::webhook(config, &step).await
        }
        Ok(config) => providers::send(config, env, &email(config, &step)?).await,
        Err(problem) => Err(Failure::retryable(format!("configuration: {problem}"))),
    };
    match outcome {
        Ok(provider_id) => repo.follow_up_sent(&step.id, &provider_id, now_ms).await,
        Err(failure) => {
            let retry_at = failure
                .retryable
                .then(|| retry_delay_ms(step.attempts))
                .flatten()
                .map(|delay| now_ms + delay);
            repo.follow_up_failed(&step.id, &failure.reason, retry_at, now_ms)
                .await
        }
    }
}

/// Plans the site's sequence for the lead's grade (its own, or the default) from now, stores
/// it, and queues the steps already due.
async fn start_sequence(
    repo: &Repo,
    env: &Env,
    step: &ClaimedFollowUp,
    now_ms: i64,
) -> Result<(), AppError> {
    let sequences: Sequences = match &step.sequences {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| AppError::Internal(format!("stored sequences: {e}")))?,
        None => Sequences::default(),
    };
    let grade: Grade = serde_json::from_value(serde_json::Value::String(step.grade.clone()))
        .map_err(|e| AppError::Internal(format!("stored grade: {e}")))?;
    let steps = plan_sequence(&sequences.for_grade(grade), step.step, now_ms);
    repo.start_sequence(&step.id, &step.lead_id, &steps, now_ms)
        .await?;
    let due: Vec<String> = steps
        .iter()
        .filter(|p| p.due_ms <= now_ms)
        .map(|p| format!("{}/{}", step.lead_id, p.step))
        .collect();
    enqueue(env, &due, now_ms, Kind::FollowUp).await
}

fn email(config: &EmailConfig, step: &ClaimedFollowUp) -> Result<OutgoingEmail, AppError> {
    let template = Template::parse(&step.template)
        .ok_or_else(|| AppError::Internal(format!("unknown template {}", step.template)))?;
    if template == Template::SalesAlert {
        let rendered = render_sales_alert(&LeadSummary {
            site_name: &step.site_name,
            name: &step.name,
            email: &step.email,
            company: step.company.as_deref(),
            phone: step.phone.as_deref(),
            message: step.message.as_deref(),
            grade: &step.grade,
            score: step.score,
            lead_id: &step.lead_id,
            locale: step.locale,
        });
        return Ok(OutgoingEmail {
            from: config.from.clone(),
            to: vec![step.recipient.clone().unwrap_or_else(|| step.email.clone())],
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            headers: Default::default(),
            idempotency_key: step.id.clone(),
        });
    }
    let secret = config.unsubscribe_secret.as_bytes();
    let token = sign(secret, Purpose::Unsubscribe, &step.lead_id);
    let unsubscribe_url = config.link("unsubscribe", &token);
    let confirm_url = config.link("confirm", &sign(secret, Purpose::Confirm, &step.lead_id));
    let resource = step
        .form_definition
        .as_deref()
        .and_then(|json| serde_json::from_str::<FormDefinition>(json).ok())
        .and_then(|form| form.resource);
    let rendered = render(
        template,
        &MessageContext {
            site_name: &step.site_name,
            site_phone: step.site_phone.as_deref(),
            booking_url: step.booking_url.as_deref(),
            lead_name: &step.name,
            lead_message: step.message.as_deref(),
            unsubscribe_url: &unsubscribe_url,
            postal_address: step.postal_address.as_deref(),
            confirm_url: (template == Template::Confirm).then_some(confirm_url.as_str()),
            resource: resource
                .as_ref()
                .map(|r| (r.label.as_str(), r.url.as_str())),
            logo_url: step.logo_url.as_deref(),
            brand_color: step.brand_color.as_deref(),
            locale: step.locale,
        },
    );
    // RFC 8058: one-click unsubscribe by POST to the https link (what Gmail and Yahoo require
    // of bulk senders). No mailto: nothing reads the sender's mailbox, so a mailed request
    // would go unheard; the link in every email serves clients that only do mail.
    let headers = [
        (
            "List-Unsubscribe".to_owned(),
            format!("<{unsubscribe_url}>"),
        ),
        (
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ),
    ]
    .into();
    Ok(OutgoingEmail {
        from: config.from.clone(),
        to: vec![step.email.clone()],
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        headers,
        idempotency_key: idempotency_key(&step.id, step.resent),
    })
}

/// `GET /v1/admin/sites/{site}/templates/{template}`: a template rendered with the site's own
/// details for a sample lead, so a marketer sees exactly what visitors will get.
pub async fn preview(
    req: &worker::Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
    template: &str,
) -> Result<worker::Response, AppError> {
    crate::auth::require(req, env, repo, leadglue_shared::sales::Scope::Admin).await?;
    // `start_sequence` is the dispatcher's marker, not a message: there is nothing to show.
    let template = Template::parse(template)
        .filter(|t| *t != Template::StartSequence)
        .ok_or(AppError::NotFound)?;
    let site = repo.sender(site_id).await?.ok_or(AppError::UnknownSite)?;
    let locale = Locale::parse(&site.locale).unwrap_or_default();
    let sample_link = |action: &str| format!("{}/v1/{action}/SAMPLE", public_url(env));
    let rendered = if template == Template::SalesAlert {
        render_sales_alert(&LeadSummary {
            site_name: &site.name,
            name: "Ada Lovelace",
            email: "ada@example.com",
            company: Some("Analytical Engines"),
            phone: Some("+44 20 7946 0958"),
            message: Some("Could you send pricing for 40 seats?"),
            grade: "hot",
            score: 90,
            lead_id: "sample",
            locale,
        })
    } else {
        render(
            template,
            &MessageContext {
                site_name: &site.name,
                site_phone: site.phone.as_deref(),
                booking_url: site.booking_url.as_deref(),
                lead_name: "Ada Lovelace",
                lead_message: Some("Could you send pricing for 40 seats?"),
                unsubscribe_url: &sample_link("unsubscribe"),
                postal_address: site.postal_address.as_deref(),
                confirm_url: Some(&sample_link("confirm")),
                resource: None,
                logo_url: site.logo_url.as_deref(),
                brand_color: site.brand_color.as_deref(),
                locale,
            },
        )
    };
    crate::http::json(200, &rendered)
}

fn public_url(env: &Env) -> String {
    EmailConfig::from_env(env)
        .map(|c| c.public_url)
        .unwrap_or_else(|_| "https://EDGE".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(ids: &[&str]) -> Vec<Dispatch> {
        let dispatch = |id: &&str| Dispatch {
            id: id.to_string(),
            now_ms: 0,
            kind: Kind::FollowUp,
        };
        ids.iter().map(dispatch).collect()
    }

    fn ids(messages: &[Dispatch]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn the_first_lead_of_a_gathering_sends_it_with_the_others() {
        let mut gathered = Gathered::default();
        assert!(gathered.add(messages(&["a/0"])), "the first starts it");
        assert!(!gathered.add(messages(&["b/0", "b/1"])), "the next join it");
        assert_eq!(ids(&gathered.take()), ["a/0", "b/0", "b/1"]);
        assert!(
            gathered.add(messages(&["c/0"])),
            "once sent, the next starts anew"
        );
        assert_eq!(ids(&gathered.take()), ["c/0"]);
    }

    #[test]
    fn a_lead_with_nothing_to_queue_starts_no_gathering() {
        let mut gathered = Gathered::default();
        assert!(!gathered.add(Vec::new()));
        assert!(gathered.add(messages(&["a/0"])));
        assert!(gathered.take().len() == 1 && gathered.take().is_empty());
    }
}
