//! Webhook subscriptions: a site's subscribers hear of `lead.created`, `lead.hot` and
//! `lead.status_changed`, signed per Standard Webhooks. Deliveries are written in the same D1
//! batch as their cause, put on the follow-up queue, and retried with backoff until delivered
//! or dead; each keeps a log entry. Admin only.

use leadglue_shared::followup::{retry_delay_ms, webhook_signature};
use leadglue_shared::sales::Scope;
use leadglue_shared::webhooks::{NewWebhook, secret_from_key};
use leadglue_shared::{FieldError, json, validate};
use serde::Serialize;
use worker::{Env, Request, Response};

use crate::error::AppError;
use crate::repo::{DeliveryRow, Repo, WebhookRow};
use crate::{auth, http, providers};

/// A subscription as the API shows it. The secret only in the answer that created it.
#[derive(Serialize)]
struct Subscription {
    id: String,
    site_id: String,
    url: String,
    events: Vec<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<WebhookRow> for Subscription {
    fn from(row: WebhookRow) -> Self {
        Self {
            events: row.events.split(' ').map(str::to_owned).collect(),
            id: row.id,
            site_id: row.site_id,
            url: row.url,
            created_at: row.created_at,
            secret: None,
        }
    }
}

fn site_id(site: &str) -> Result<String, AppError> {
    validate::site_id(site).map_err(|m| AppError::Invalid(vec![FieldError::new("site_id", m)]))
}

/// `POST /v1/admin/sites/{site}/webhooks`.
pub async fn create(
    mut req: Request,
    env: &Env,
    repo: &Repo,
    site: &str,
) -> Result<Response, AppError> {
    auth::require(&req, env, repo, Scope::Admin).await?;
    let site = site_id(site)?;
    let body = http::json_body(&mut req).await?;
    let new = json::parse::<NewWebhook>(&body)?
        .validate()
        .map_err(AppError::Invalid)?;
    let id = format!("wh_{}", auth::random_hex(8)?);
    let mut key = [0u8; 24];
    getrandom::fill(&mut key).map_err(|e| AppError::Internal(format!("randomness: {e}")))?;
    let secret = secret_from_key(&key);
    let events: Vec<&str> = new.events.iter().map(|e| e.as_str()).collect();
    let row = repo
        .create_webhook(&id, &site, &new.url, &events.join(" "), &secret)
        .await?
        .ok_or(AppError::UnknownSite)?;
    let mut shown = Subscription::from(row);
    shown.secret = Some(secret);
    http::json(201, &shown)
}

/// `GET /v1/admin/sites/{site}/webhooks`.
pub async fn list(req: &Request, env: &Env, repo: &Repo, site: &str) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::Admin).await?;
    let rows = repo.webhooks(site).await?;
    let webhooks: Vec<Subscription> = rows.into_iter().map(Into::into).collect();
    http::json(200, &serde_json::json!({ "webhooks": webhooks }))
}

/// `DELETE /v1/admin/sites/{site}/webhooks/{id}`.
pub async fn delete(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site: &str,
    id: &str,
) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::Admin).await?;
    if !repo.delete_webhook(site, id).await? {
        return Err(AppError::NotFound);
    }
    Ok(Response::empty()?.with_status(204))
}

/// `GET /v1/admin/sites/{site}/webhooks/{id}/deliveries`: the latest 100, newest first.
pub async fn deliveries(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site: &str,
    id: &str,
) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::Admin).await?;
    let log: Vec<DeliveryRow> = repo
        .deliveries(site, id, 100)
        .await?
        .ok_or(AppError::NotFound)?;
    http::json(200, &serde_json::json!({ "deliveries": log }))
}

/// `POST /v1/admin/sites/{site}/webhooks/{id}/test`: sends a `webhook.test` event now and
/// answers with its first attempt's outcome (a failed one is retried like any delivery).
pub async fn test(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site: &str,
    id: &str,
) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::Admin).await?;
    let now = crate::now_ms();
    let delivery = repo
        .test_delivery(site, id, now)
        .await?
        .ok_or(AppError::NotFound)?;
    deliver(repo, &delivery, now).await?;
    let log = repo
        .deliveries(site, id, 100)
        .await?
        .ok_or(AppError::NotFound)?;
    let attempt = log
        .into_iter()
        .find(|d| d.id == delivery)
        .ok_or_else(|| AppError::Internal("the test delivery vanished".into()))?;
    http::json(200, &attempt)
}

/// One attempt at a delivery, if it is due and not taken: signed, POSTed with a time limit,
/// and its outcome recorded. Any answer but 2xx is retried with backoff, then dead.
pub async fn deliver(repo: &Repo, id: &str, now_ms: i64) -> Result<(), AppError> {
    let Some(claimed) = repo.claim_delivery(id, now_ms).await? else {
        return Ok(());
    };
    // Signed as of the real time (receivers check it against their clock), whatever time the
    // dispatcher judged "due" by.
    let timestamp = crate::now_ms() / 1000;
    let signature = webhook_signature(&claimed.secret, &claimed.id, timestamp, &claimed.payload)
        .ok_or_else(|| AppError::Internal(format!("subscription secret of {id} is malformed")))?;
    let outcome = providers::post_text(
        &claimed.url,
        &[
            ("webhook-id", &claimed.id),
            ("webhook-timestamp", &timestamp.to_string()),
            ("webhook-signature", &signature),
            ("user-agent", "leadglue-webhooks/1"),
        ],
        claimed.payload,
    )
    .await;
    let (status, error) = match outcome {
        Ok((status, _)) if (200..300).contains(&status) => (Some(status), None),
        Ok((status, _)) => (
            Some(status),
            Some(format!("the subscriber answered {status}")),
        ),
        Err(failure) => (None, Some(failure.reason)),
    };
    let retry_at = error
        .as_ref()
        .and_then(|_| retry_delay_ms(claimed.attempts))
        .map(|delay| now_ms + delay);
    repo.delivery_attempted(
        id,
        error.is_none(),
        status,
        error.as_deref(),
        retry_at,
        now_ms,
    )
    .await
}
