//! SQL of the Sales API: API keys, lead lists and records, lifecycle changes, notes, erasure.

use leadglue_shared::sales::{
    ChangeRecord, ConsentRecord, ExportedLead, FollowUpRecord, LeadChange, LeadListItem, LeadQuery,
    LeadRecord, LeadState, Note, Status,
};
use leadglue_shared::webhooks::Event;
use serde::Deserialize;
use worker::query;

use super::{IdRow, PERSON, Repo, ToJson, returned_ids};
use crate::error::AppError;

/// A stored API key (the secret itself is never stored).
#[derive(Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub secret_hash: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// The columns every lead listing reads.
const LIST_COLUMNS: &str = "id, created_at, site_id, form_id, status, grade, score, email, name,
    company, phone, message, channel, assignee, tags";

#[derive(Deserialize)]
struct ListRow {
    id: String,
    created_at: String,
    site_id: String,
    form_id: String,
    status: Status,
    grade: leadglue_shared::Grade,
    score: i64,
    email: String,
    name: String,
    company: Option<String>,
    phone: Option<String>,
    message: Option<String>,
    channel: String,
    assignee: Option<String>,
    tags: String,
}

impl ListRow {
    fn into_item(self) -> Result<LeadListItem, AppError> {
        Ok(LeadListItem {
            tags: from_json(&self.tags, "tags")?,
            id: self.id,
            created_at: self.created_at,
            site_id: self.site_id,
            form_id: self.form_id,
            status: self.status,
            grade: self.grade,
            score: self.score,
            email: self.email,
            name: self.name,
            company: self.company,
            phone: self.phone,
            message: self.message,
            channel: self.channel,
            assignee: self.assignee,
        })
    }
}

/// The columns a lead's record reads besides [`LIST_COLUMNS`]. An export reads them too.
const DETAIL_COLUMNS: &str = "answers, attribution, consent_text_version, consent_ip, page_url,
    confirmed_at, unsubscribed_at, last_submitted_at, form_version, score_reasons, erased_at,
    spam_reason, resubmissions";

/// The rest of a lead's record. An export reads it too and gives its first part (one row type
/// for both rather than one each: every type D1 rows are read into is 2.8 KB of the edge's wasm).
#[derive(Deserialize)]
struct DetailRow {
    answers: String,
    attribution: String,
    consent_text_version: String,
    consent_ip: Option<String>,
    page_url: Option<String>,
    confirmed_at: Option<String>,
    unsubscribed_at: Option<String>,
    last_submitted_at: Option<String>,
    form_version: u32,
    score_reasons: String,
    erased_at: Option<String>,
    spam_reason: Option<String>,
    resubmissions: u32,
}

impl DetailRow {
    /// The lead of `list` as exported, with this row's answers, attribution and consent.
    fn export(&self, list: ListRow) -> Result<ExportedLead, AppError> {
        let lead = list.into_item()?;
        Ok(ExportedLead {
            answers: from_json(&self.answers, "answers")?,
            attribution: from_json(&self.attribution, "attribution")?,
            consent: ConsentRecord {
                // Each submission consents anew: the record is the latest one's.
                given_at: self
                    .last_submitted_at
                    .clone()
                    .unwrap_or_else(|| lead.created_at.clone()),
                text_version: self.consent_text_version.clone(),
                ip: self.consent_ip.clone(),
                page_url: self.page_url.clone(),
                confirmed_at: self.confirmed_at.clone(),
                unsubscribed_at: self.unsubscribed_at.clone(),
            },
            lead,
        })
    }
}

/// What a change is checked against.
#[derive(Deserialize)]
struct StateRow {
    status: Status,
    assignee: Option<String>,
    tags: String,
    spam_reason: Option<String>,
    version: i64,
    erased_at: Option<String>,
}

/// A lead's state as a change starts from it.
pub struct StoredState {
    pub state: LeadState,
    /// The version read: a change applies only if the lead is still at it.
    pub version: i64,
    pub erased: bool,
}

/// A change to store, by whom, made against `version`.
pub struct Change<'a> {
    pub lead_id: &'a str,
    pub version: i64,
    pub change: &'a LeadChange,
    pub actor: &'a str,
    pub now_ms: i64,
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, AppError> {
    serde_json::from_str(text).map_err(|e| AppError::Internal(format!("stored {what}: {e}")))
}

impl Repo {
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT id, name, scopes, secret_hash, created_at, last_used_at, revoked_at
             FROM api_keys WHERE id = ?1",
            &id
        )?;
        Ok(stmt.first::<ApiKeyRow>(None).await?)
    }

    /// Records that a key was used, at most once a minute (a write per request would double
    /// the cost of every read).
    pub async fn touch_api_key(
        &self,
        id: &str,
        last_used_at: Option<&str>,
    ) -> Result<(), AppError> {
        let now = worker::Date::now().as_millis();
        let last = last_used_at
            .map(|t| worker::Date::new(worker::DateInit::String(t.to_owned())).as_millis());
        if last.is_some_and(|last| now.saturating_sub(last) < 60_000) {
            return Ok(());
        }
        query!(
            &self.db,
            "UPDATE api_keys SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?1",
            &id
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn create_api_key(
        &self,
        id: &str,
        name: &str,
        scopes: &str,
        secret_hash: &str,
    ) -> Result<ApiKeyRow, AppError> {
        let stmt = query!(
            &self.db,
            "INSERT INTO api_keys (id, name, scopes, secret_hash) VALUES (?1, ?2, ?3, ?4)
             RETURNING id, name, scopes, secret_hash, created_at, last_used_at, revoked_at",
            &id,
            &name,
            &scopes,
            &secret_hash
        )?;
        stmt.first::<ApiKeyRow>(None)
            .await?
            .ok_or_else(|| AppError::Internal("the new key was not returned".into()))
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT id, name, scopes, secret_hash, created_at, last_used_at, revoked_at
             FROM api_keys ORDER BY created_at DESC"
        );
        Ok(stmt.all().await?.results::<ApiKeyRow>()?)
    }

    /// Revokes a key (kept, marked, for the record). `false` for an unknown key.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, AppError> {
        let stmt = query!(
            &self.db,
            "UPDATE api_keys
             SET revoked_at = COALESCE(revoked_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             WHERE id = ?1 RETURNING id",
            &id
        )?;
        Ok(stmt.first::<IdRow>(None).await?.is_some())
    }

    /// One page of leads, newest first, after the query's cursor. Erased leads (anonymous
    /// tombstones) are not listed.
    pub async fn list_leads(&self, query: &LeadQuery) -> Result<Vec<LeadListItem>, AppError> {
        self.select_leads(LIST_COLUMNS, query)
            .await?
            .results::<ListRow>()?
            .into_iter()
            .map(ListRow::into_item)
            .collect()
    }

    /// A page of leads as exported: as listed, with answers, attribution and consent.
    pub async fn export_leads(&self, query: &LeadQuery) -> Result<Vec<ExportedLead>, AppError> {
        let rows = self
            .select_leads(&format!("{LIST_COLUMNS}, {DETAIL_COLUMNS}"), query)
            .await?;
        rows.results::<DetailRow>()?
            .iter()
            .zip(rows.results::<ListRow>()?)
            .map(|(detail, list)| detail.export(list))
            .collect()
    }

    /// The `columns` of a page of leads matching `query`, newest first.
    async fn select_leads(
        &self,
        columns: &str,
        query: &LeadQuery,
    ) -> Result<worker::D1Result, AppError> {
        let f = &query.filter;
        let (after_at, after_id) = match &query.after {
            Some(cursor) => (Some(cursor.created_at.as_str()), Some(cursor.id.as_str())),
            None => (None, None),
        };
        let sql = format!(
            "SELECT {columns} FROM leads
             WHERE erased_at IS NULL
               AND (?1 IS NULL OR site_id = ?1)
               AND (?2 IS NULL OR form_id = ?2)
               AND (?3 IS NULL OR grade = ?3)
               AND (?4 IS NULL OR status = ?4)
               AND (?5 IS NULL OR channel = ?5)
               AND (?6 IS NULL OR created_at >= ?6)
               AND (?7 IS NULL OR created_at < ?7)
               AND (?8 IS NULL OR instr(search_text, ?8) > 0)
               AND (?9 IS NULL OR created_at < ?9 OR (created_at = ?9 AND id < ?10))
               AND (spam_reason IS NOT NULL) = (?12 = 1)
             ORDER BY created_at DESC, id DESC
             LIMIT ?11"
        );
        let stmt = query!(
            &self.db,
            &sql,
            &f.site,
            &f.form,
            &f.grade.map(|g| g.as_str()),
            &f.status.map(Status::as_str),
            &f.channel,
            &f.since,
            &f.until,
            &f.q,
            &after_at,
            &after_id,
            &query.limit,
            &u8::from(f.spam)
        )?;
        Ok(stmt.all().await?)
    }

    /// Everything stored about a lead, in one D1 batch.
    pub async fn lead_record(&self, id: &str) -> Result<Option<LeadRecord>, AppError> {
        let lead = query!(
            &self.db,
            &format!("SELECT {LIST_COLUMNS}, {DETAIL_COLUMNS} FROM leads WHERE id = ?1"),
            &id
        )?;
        let follow_ups = query!(
            &self.db,
            "SELECT step, channel, template, state, due_at, attempts, last_error
             FROM follow_ups WHERE lead_id = ?1 ORDER BY step",
            &id
        )?;
        let history = query!(
            &self.db,
            "SELECT at, actor, field, from_value AS \"from\", to_value AS \"to\"
             FROM lead_changes WHERE lead_id = ?1 ORDER BY version, field",
            &id
        )?;
        let notes = query!(
            &self.db,
            "SELECT id, created_at, author, body FROM lead_notes
             WHERE lead_id = ?1 ORDER BY created_at, id",
            &id
        )?;
        let results = self
            .db
            .batch(vec![lead, follow_ups, history, notes])
            .await?;
        let [lead, follow_ups, history, notes] = results.as_slice() else {
            return Err(AppError::Internal(
                "a batch of four gave another count".into(),
            ));
        };
        let Some(list) = lead.results::<ListRow>()?.into_iter().next() else {
            return Ok(None);
        };
        let detail = lead
            .results::<DetailRow>()?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("the lead row vanished".into()))?;
        let ExportedLead {
            lead,
            answers,
            attribution,
            consent,
        } = detail.export(list)?;
        Ok(Some(LeadRecord {
            lead,
            answers,
            attribution,
            consent,
            form_version: detail.form_version,
            reasons: from_json(&detail.score_reasons, "reasons")?,
            follow_ups: follow_ups.results::<FollowUpRecord>()?,
            history: history.results::<ChangeRecord>()?,
            notes: notes.results::<Note>()?,
            erased_at: detail.erased_at,
            spam_reason: detail.spam_reason,
            resubmissions: detail.resubmissions,
            last_submitted_at: detail.last_submitted_at,
        }))
    }

    pub async fn lead_state(&self, id: &str) -> Result<Option<StoredState>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT status, assignee, tags, spam_reason, version, erased_at FROM leads
             WHERE id = ?1",
            &id
        )?;
        let Some(row) = stmt.first::<StateRow>(None).await? else {
            return Ok(None);
        };
        Ok(Some(StoredState {
            state: LeadState {
                status: row.status,
                assignee: row.assignee,
                tags: from_json(&row.tags, "tags")?,
                spam_reason: row.spam_reason,
            },
            version: row.version,
            erased: row.erased_at.is_some(),
        }))
    }

    /// Applies a change and records it, atomically, if the lead is still at the version read,
    /// with a `lead.status_changed` delivery for each subscriber when the status of a lead not
    /// kept as spam moved. The deliveries' ids, or `None` when another change got there first.
    pub async fn change_lead(&self, change: &Change<'_>) -> Result<Option<Vec<String>>, AppError> {
        let new = &change.change.state;
        let tags = new.tags.to_json()?;
        let next = change.version + 1;
        // A token only this change writes, so the statements after the update can tell that it
        // was this change that moved the lead to `next`.
        let token = uuid::Uuid::now_v7().to_string();
        let mut batch = vec![query!(
            &self.db,
            "UPDATE leads SET status = ?2, assignee = ?3, tags = ?4, version = ?5, change_id = ?6,
                              spam_reason = ?8
             WHERE id = ?1 AND version = ?7 AND erased_at IS NULL
             RETURNING id",
            &change.lead_id,
            &new.status.as_str(),
            &new.assignee,
            &tags,
            &next,
            &token,
            &change.version,
            &new.spam_reason
        )?];
        for recorded in &change.change.changes {
            batch.push(query!(
                &self.db,
                "INSERT INTO lead_changes (lead_id, version, field, from_value, to_value, actor)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE EXISTS (SELECT 1 FROM leads WHERE id = ?1 AND change_id = ?7)",
                &change.lead_id,
                &next,
                &recorded.field,
                &recorded.from,
                &recorded.to,
                &change.actor,
                &token
            )?);
        }
        if change.change.stop_nurture || change.change.stop_all {
            // Moving on: alerts to the site's sales inbox stay, everything meant for the lead
            // stops. Kept as spam: everything stops.
            batch.push(query!(
                &self.db,
                "UPDATE follow_ups SET state = 'cancelled', updated_at = ?2
                 WHERE lead_id = ?1 AND state IN ('scheduled', 'queued')
                   AND (?4 = 1 OR template <> 'sales_alert')
                   AND EXISTS (SELECT 1 FROM leads WHERE id = ?1 AND change_id = ?3)",
                &change.lead_id,
                &change.now_ms,
                &token,
                &u8::from(change.change.stop_all)
            )?);
        }
        if change.change.stop_all {
            // Nor do subscribers hear of it: events still waiting (a subscriber down when the
            // bot's lead came in) are dropped.
            batch.push(query!(
                &self.db,
                "UPDATE webhook_deliveries
                 SET state = 'dead', last_error = 'cancelled: kept as spam', updated_at = ?2
                 WHERE lead_id = ?1 AND state IN ('scheduled', 'queued')
                   AND EXISTS (SELECT 1 FROM leads WHERE id = ?1 AND change_id = ?3)",
                &change.lead_id,
                &change.now_ms,
                &token
            )?);
        }
        // Spam is never announced, whatever sales do with it.
        let status_moved = (change.change.changes.iter())
            .find(|c| c.field == "status")
            .filter(|_| new.spam_reason.is_none());
        if let Some(moved) = status_moved {
            let data = serde_json::json!({
                "change": { "from": moved.from, "to": moved.to, "actor": change.actor },
            })
            .to_string();
            batch.push(self.webhook_events(
                change.lead_id,
                &[Event::LeadStatusChanged.as_str()],
                &data,
                Some(&token),
                None,
                change.now_ms,
            )?);
        }
        let results = self.db.batch(batch).await?;
        let applied = results
            .first()
            .map(|r| r.results::<IdRow>())
            .transpose()?
            .is_some_and(|rows| !rows.is_empty());
        if !applied {
            return Ok(None);
        }
        let deliveries = match status_moved {
            Some(_) => results
                .last()
                .map(|r| r.results::<IdRow>())
                .transpose()?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Some(deliveries.into_iter().map(|r| r.id).collect()))
    }

    /// Adds a note; `None` when there is no such lead (or it was erased).
    pub async fn add_note(
        &self,
        id: &str,
        lead_id: &str,
        author: &str,
        body: &str,
    ) -> Result<Option<Note>, AppError> {
        let stmt = query!(
            &self.db,
            "INSERT INTO lead_notes (id, lead_id, author, body)
             SELECT ?1, ?2, ?3, ?4
             WHERE EXISTS (SELECT 1 FROM leads WHERE id = ?2 AND erased_at IS NULL)
             RETURNING id, created_at, author, body",
            &id,
            &lead_id,
            &author,
            &body
        )?;
        Ok(stmt.first::<Note>(None).await?)
    }

    /// The ids of the person's other leads on the site of lead `id` (see [`PERSON`]), oldest
    /// first.
    pub async fn other_leads_of_person(&self, id: &str) -> Result<Vec<String>, AppError> {
        returned_ids(query!(
            &self.db,
            &format!("{PERSON} AND p.id <> ?1 ORDER BY p.created_at, p.id"),
            &id
        )?)
        .await
    }

    /// Erases the person lead `id` is from, atomically: for each of their leads on its site
    /// (see [`PERSON`]), contact details, answers, attribution, consent IP and page, notes, the
    /// tags and assignee history, the payloads of webhook deliveries about them; cancels the
    /// follow-ups and deliveries not yet sent. Each row stays as an anonymous tombstone (site,
    /// form, grade, score, status, channel, dates), so counts stay right. The leads are blanked
    /// last: until then their address still tells which are the person's. `false` for an
    /// unknown lead.
    pub async fn erase_lead(&self, id: &str, now_ms: i64) -> Result<bool, AppError> {
        let follow_ups = query!(
            &self.db,
            &format!(
                "UPDATE follow_ups
                 SET state = CASE WHEN state IN ('scheduled', 'queued') THEN 'cancelled'
                                  ELSE state END,
                     last_error = NULL, updated_at = ?2
                 WHERE lead_id IN ({PERSON})"
            ),
            &id,
            &now_ms
        )?;
        let notes = query!(
            &self.db,
            &format!("DELETE FROM lead_notes WHERE lead_id IN ({PERSON})"),
            &id
        )?;
        let history = query!(
            &self.db,
            &format!(
                "UPDATE lead_changes SET from_value = NULL, to_value = NULL
                 WHERE lead_id IN ({PERSON}) AND field IN ('assignee', 'tags')"
            ),
            &id
        )?;
        let deliveries = query!(
            &self.db,
            &format!(
                "UPDATE webhook_deliveries
                 SET payload = '{{}}',
                     state = CASE WHEN state IN ('scheduled', 'queued') THEN 'dead' ELSE state END,
                     last_error = CASE WHEN state IN ('scheduled', 'queued')
                                       THEN 'cancelled: the lead was erased' END
                 WHERE lead_id IN ({PERSON})"
            ),
            &id
        )?;
        let erase = query!(
            &self.db,
            &format!(
                "UPDATE leads SET email = '', name = '', company = NULL, phone = NULL,
                        message = NULL, consent_ip = NULL, page_url = NULL, answers = '{{}}',
                        score_reasons = '[]', attribution = '{{}}', assignee = NULL, tags = '[]',
                        idempotency_key = 'erased:' || id, search_text = '',
                        unsubscribed_at = COALESCE(unsubscribed_at,
                                                   strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                        erased_at = COALESCE(erased_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 WHERE id IN ({PERSON}) RETURNING id"
            ),
            &id
        )?;
        let results = self
            .db
            .batch(vec![follow_ups, notes, history, deliveries, erase])
            .await?;
        Ok(results
            .last()
            .map(|r| r.results::<IdRow>())
            .transpose()?
            .is_some_and(|rows| !rows.is_empty()))
    }
}
