//! SQL of webhook subscriptions and their deliveries (outbox, queue claims, delivery log).

use leadglue_shared::webhooks::Event;
use serde::{Deserialize, Serialize};
use worker::{D1PreparedStatement, query};

use super::{IdRow, LEASE_MS, Repo, returned_ids};
use crate::error::AppError;

#[derive(Deserialize)]
pub struct WebhookRow {
    pub id: String,
    pub site_id: String,
    pub url: String,
    pub events: String,
    pub created_at: String,
}

/// One delivery, as the log shows it.
#[derive(Deserialize, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    /// Unix ms: the next attempt, while one is scheduled.
    pub due_at: i64,
}

/// A delivery claimed for sending, with where and how to sign it.
#[derive(Deserialize)]
pub struct ClaimedDelivery {
    pub id: String,
    pub payload: String,
    pub attempts: u32,
    pub url: String,
    pub secret: String,
}

impl Repo {
    /// Stores a subscription; `None` when the site does not exist.
    pub async fn create_webhook(
        &self,
        id: &str,
        site_id: &str,
        url: &str,
        events: &str,
        secret: &str,
    ) -> Result<Option<WebhookRow>, AppError> {
        let stmt = query!(
            &self.db,
            "INSERT INTO webhook_subscriptions (id, site_id, url, events, secret)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?2)
             RETURNING id, site_id, url, events, created_at",
            &id,
            &site_id,
            &url,
            &events,
            &secret
        )?;
        Ok(stmt.first::<WebhookRow>(None).await?)
    }

    pub async fn webhooks(&self, site_id: &str) -> Result<Vec<WebhookRow>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT id, site_id, url, events, created_at FROM webhook_subscriptions
             WHERE site_id = ?1 ORDER BY created_at, id",
            &site_id
        )?;
        Ok(stmt.all().await?.results::<WebhookRow>()?)
    }

    /// Deletes a subscription and its log. `false` when the site has no such subscription.
    pub async fn delete_webhook(&self, site_id: &str, id: &str) -> Result<bool, AppError> {
        let stmt = query!(
            &self.db,
            "DELETE FROM webhook_subscriptions WHERE id = ?1 AND site_id = ?2 RETURNING id",
            &id,
            &site_id
        )?;
        Ok(stmt.first::<IdRow>(None).await?.is_some())
    }

    /// The latest deliveries of a subscription, newest first; `None` when the site has no such
    /// subscription.
    pub async fn deliveries(
        &self,
        site_id: &str,
        id: &str,
        limit: u32,
    ) -> Result<Option<Vec<DeliveryRow>>, AppError> {
        let exists = query!(
            &self.db,
            "SELECT id FROM webhook_subscriptions WHERE id = ?1 AND site_id = ?2",
            &id,
            &site_id
        )?;
        let log = query!(
            &self.db,
            "SELECT id, event, state, attempts, last_status, last_error, created_at, due_at
             FROM webhook_deliveries WHERE subscription_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2",
            &id,
            &limit
        )?;
        let results = self.db.batch(vec![exists, log]).await?;
        let [exists, log] = results.as_slice() else {
            return Err(AppError::Internal(
                "a batch of two gave another count".into(),
            ));
        };
        if exists.results::<IdRow>()?.is_empty() {
            return Ok(None);
        }
        Ok(Some(log.results::<DeliveryRow>()?))
    }

    /// A statement that stores one delivery per subscription of the lead's site that wants one
    /// of `events`, with the lead as it stands after the statements before it in the batch.
    /// `data` (a JSON object) is merged into the payload's `data` beside `lead`. `change_id`,
    /// when given, makes it conditional on that change having applied. With `submission` (its
    /// site and idempotency key), `lead_id` is the id of the request that recorded it, and the
    /// deliveries are about the lead it belongs to: `lead.created` if this request created it,
    /// `lead.hot` if this request first made it hot (see `leads.hot_request`). Returns the new
    /// ids.
    pub(super) fn webhook_events(
        &self,
        lead_id: &str,
        events: &[&str],
        data: &str,
        change_id: Option<&str>,
        submission: Option<(&str, &str)>,
        now_ms: i64,
    ) -> Result<D1PreparedStatement, AppError> {
        let events =
            serde_json::to_string(events).map_err(|e| AppError::Internal(e.to_string()))?;
        let (site_id, key) = submission.unzip();
        Ok(query!(
            &self.db,
            "INSERT INTO webhook_deliveries (id, subscription_id, lead_id, event, payload, due_at,
                                            updated_at)
             SELECT 'msg_' || lower(hex(randomblob(16))), s.id, l.id, e.value,
                    json_object('type', e.value,
                                'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                                'data', json_patch(json_object('lead', json(j.lead)), ?3)),
                    ?5, ?5
             FROM leads l
             JOIN lead_event_json j ON j.id = l.id
             JOIN webhook_subscriptions s ON s.site_id = l.site_id
             JOIN json_each(?2) e ON instr(' ' || s.events || ' ', ' ' || e.value || ' ') > 0
             WHERE l.id = COALESCE((SELECT lead_id FROM submissions
                                    WHERE site_id = ?6 AND idempotency_key = ?7
                                      AND request_id = ?1), ?1)
               AND (?4 IS NULL OR l.change_id = ?4)
               AND (?6 IS NULL OR (e.value = ?8 AND l.id = ?1)
                               OR (e.value = ?9 AND l.hot_request = ?1))
             RETURNING id",
            &lead_id,
            &events,
            &data,
            &change_id,
            &now_ms,
            &site_id,
            &key,
            &Event::LeadCreated.as_str(),
            &Event::LeadHot.as_str()
        )?)
    }

    /// A test delivery for a subscription, due now; `None` when the site has no such one.
    pub async fn test_delivery(
        &self,
        site_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<String>, AppError> {
        let stmt = query!(
            &self.db,
            "INSERT INTO webhook_deliveries (id, subscription_id, event, payload, due_at,
                                            updated_at)
             SELECT 'msg_' || lower(hex(randomblob(16))), id, ?3,
                    json_object('type', ?3, 'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                                'data', json_object('subscription', id, 'site_id', site_id)),
                    ?4, ?4
             FROM webhook_subscriptions WHERE id = ?1 AND site_id = ?2
             RETURNING id",
            &id,
            &site_id,
            &leadglue_shared::webhooks::TEST_EVENT,
            &now_ms
        )?;
        Ok(stmt.first::<IdRow>(None).await?.map(|row| row.id))
    }

    /// Like [`Repo::queue_due_follow_ups`], for deliveries.
    pub async fn queue_due_deliveries(
        &self,
        now_ms: i64,
        site: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, AppError> {
        let stmt = query!(
            &self.db,
            "UPDATE webhook_deliveries SET state = 'queued', updated_at = ?1
             WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE ((state = 'scheduled' AND due_at <= ?1)
                       OR (state IN ('queued', 'sending') AND updated_at <= ?1 - ?4))
                  AND (?3 IS NULL OR subscription_id IN
                        (SELECT id FROM webhook_subscriptions WHERE site_id = ?3))
                ORDER BY due_at LIMIT ?2)
             RETURNING id",
            &now_ms,
            &limit,
            &site,
            &LEASE_MS
        )?;
        returned_ids(stmt).await
    }

    /// Claims a due delivery for one attempt: only one claimant gets it.
    pub async fn claim_delivery(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, AppError> {
        let stmt = query!(
            &self.db,
            "UPDATE webhook_deliveries SET state = 'sending', attempts = attempts + 1,
                    updated_at = ?2
             WHERE id = ?1 AND state IN ('scheduled', 'queued') AND due_at <= ?2
             RETURNING id, payload, attempts,
                (SELECT url FROM webhook_subscriptions s WHERE s.id = subscription_id) AS url,
                (SELECT secret FROM webhook_subscriptions s WHERE s.id = subscription_id)
                    AS secret",
            &id,
            &now_ms
        )?;
        Ok(stmt.first::<ClaimedDelivery>(None).await?)
    }

    /// Records an attempt's outcome: delivered, again at `retry_at`, or (neither) dead.
    pub async fn delivery_attempted(
        &self,
        id: &str,
        delivered: bool,
        status: Option<u16>,
        error: Option<&str>,
        retry_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), AppError> {
        query!(
            &self.db,
            "UPDATE webhook_deliveries
             SET state = CASE WHEN ?2 = 1 THEN 'delivered'
                              WHEN ?5 IS NULL THEN 'dead' ELSE 'scheduled' END,
                 due_at = COALESCE(?5, due_at), last_status = ?3, last_error = ?4,
                 updated_at = ?6
             WHERE id = ?1",
            &id,
            &u8::from(delivered),
            &status,
            &error,
            &retry_at,
            &now_ms
        )?
        .run()
        .await?;
        Ok(())
    }
}
