//! The only module that speaks SQL. Every statement is parameterised; the schema lives in
//! `migrations/`.

use leadglue_shared::attribution::{Attribution, Channel};
use leadglue_shared::followup::{
    self, Audience, CONFIRM_RESEND_AFTER_MS, CONFIRM_RESENDS, OptIn, Planned,
};
use leadglue_shared::locale::Locale;
use leadglue_shared::sales::{Status, search_text};
use leadglue_shared::webhooks::Event;
use leadglue_shared::{
    FormDefinition, Scored, SiteConfig, SiteDefinition, ValidLead, VersionedForm,
};
use serde::Deserialize;
use worker::{D1Database, query};

use crate::error::AppError;

mod sales;
mod webhooks;

pub use sales::{ApiKeyRow, Change};
pub use webhooks::{DeliveryRow, WebhookRow};

pub struct Repo {
    db: D1Database,
}

/// What a submission did: its lead's id and the webhook deliveries it queued (none unless it
/// created the lead now).
pub struct Stored {
    pub id: String,
    pub deliveries: Vec<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new lead.
    Created,
    /// The same email on the same site within the duplicate window: that lead was updated.
    Resubmitted,
    /// This idempotency key was seen before; nothing changed. `created` tells what the first
    /// request did.
    Replayed { created: bool },
}

/// Why a lead was not stored.
pub enum Refusal {
    UnknownSite,
    OriginNotAllowed,
}

/// A site's public configuration, and whether the asking origin may embed it.
pub struct SiteForOrigin {
    pub config: SiteConfig,
    pub origin_allowed: bool,
    /// Changes whenever the site's definition does (for ETags).
    pub updated_at: String,
    /// The site shows a Turnstile challenge with this key (`config.turnstile` is left for the
    /// caller, who knows where the script comes from).
    pub turnstile_site_key: Option<String>,
}

#[derive(Deserialize)]
struct SiteRow {
    id: String,
    name: String,
    consent_text: String,
    consent_version: String,
    phone: Option<String>,
    booking_url: Option<String>,
    first_touch_attribution: u8,
    double_opt_in: u8,
    turnstile_site_key: Option<String>,
    min_fill_seconds: u32,
    updated_at: String,
    origin_allowed: u8,
}

#[derive(Deserialize)]
struct FormRow {
    form_id: String,
    version: u32,
    definition: String,
}

#[derive(Deserialize)]
struct VersionRow {
    version: u32,
}

/// Everything stored with a lead besides the submission itself.
pub struct NewLead<'a> {
    pub id: &'a str,
    pub lead: &'a ValidLead,
    pub form: &'a VersionedForm,
    pub scored: &'a Scored,
    pub attribution: &'a Attribution,
    pub channel: Channel,
    pub origin: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// The follow-up steps to store, each kept only if its condition holds for the site.
    pub follow_ups: &'a [Planned],
    /// What to tell the site's webhook subscribers.
    pub events: &'a [Event],
    /// Why it looks like spam, if it does.
    pub spam: Option<&'a str>,
    /// Update an earlier lead with the same email from within this many hours, if there is
    /// one, instead of inserting (`None`: always insert).
    pub merge_within_hours: Option<u32>,
    /// Whether a resubmission may send the confirmation again (a double opt-in site): other
    /// sites' leads are spared the statement.
    pub double_opt_in: bool,
    pub now_ms: i64,
}

/// What the lead handler needs to know about a site before storing a lead.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    pub min_fill_seconds: u32,
    pub duplicate_window_hours: u32,
    pub turnstile_site_key: Option<String>,
    pub double_opt_in: u8,
}

#[derive(Deserialize)]
struct SubmissionRow {
    id: String,
    created: u8,
    now: u8,
}

#[derive(Deserialize)]
struct ClaimRow {
    id: String,
    lead_id: String,
    step: u32,
    template: String,
    channel: String,
    attempts: u32,
    recipient: Option<String>,
    resent: u32,
}

#[derive(Deserialize)]
struct RecipientRow {
    email: String,
    name: String,
    company: Option<String>,
    phone: Option<String>,
    message: Option<String>,
    grade: String,
    score: i64,
    site_name: String,
    site_phone: Option<String>,
    booking_url: Option<String>,
    postal_address: Option<String>,
    sequences: Option<String>,
    webhook_url: Option<String>,
    form_definition: Option<String>,
    logo_url: Option<String>,
    brand_color: Option<String>,
    unsubscribed_at: Option<String>,
    status: String,
    erased_at: Option<String>,
    spam_reason: Option<String>,
    locale: String,
}

/// What emails say about the site that sends them.
#[derive(Deserialize)]
pub struct Sender {
    pub name: String,
    pub phone: Option<String>,
    pub booking_url: Option<String>,
    pub postal_address: Option<String>,
    pub logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub locale: String,
}

/// A follow-up step claimed for sending, with what its message needs.
pub struct ClaimedFollowUp {
    pub id: String,
    pub lead_id: String,
    pub step: u32,
    pub template: String,
    pub channel: String,
    pub attempts: u32,
    /// Another address than the lead's (the sales inbox), if any.
    pub recipient: Option<String>,
    /// How many times the step was armed again (a confirmation sent again).
    pub resent: u32,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub grade: String,
    pub score: i64,
    pub site_name: String,
    pub site_phone: Option<String>,
    pub booking_url: Option<String>,
    pub postal_address: Option<String>,
    /// The site's own sequences (JSON), if it has any.
    pub sequences: Option<String>,
    pub webhook_url: Option<String>,
    /// The stored form the lead answered (JSON; none for the built-in form).
    pub form_definition: Option<String>,
    pub logo_url: Option<String>,
    pub brand_color: Option<String>,
    /// The lead unsubscribed (perhaps while this step was on its way).
    pub unsubscribed: bool,
    /// The lead is still nurtured: sales has not moved it on (to prospect or beyond).
    pub nurtured: bool,
    /// The person's data was erased: nothing may be sent about them.
    pub erased: bool,
    /// Sales kept the lead as spam since the step was stored: nothing more goes out about it.
    pub spam: bool,
    /// The site's email language.
    pub locale: Locale,
}

/// A site's stored definition, without its origins.
#[derive(Deserialize)]
struct SiteDefinitionRow {
    name: String,
    consent_text: String,
    consent_version: String,
    phone: Option<String>,
    booking_url: Option<String>,
    first_touch_attribution: u8,
    postal_address: Option<String>,
    sales_email: Option<String>,
    double_opt_in: u8,
    sequences: Option<String>,
    webhook_url: Option<String>,
    logo_url: Option<String>,
    brand_color: Option<String>,
    locale: String,
    min_fill_seconds: u32,
    duplicate_window_hours: u32,
    turnstile_site_key: Option<String>,
}

#[derive(Deserialize)]
struct OriginRow {
    origin: String,
}

#[derive(Deserialize)]
pub(crate) struct IdRow {
    id: String,
}

impl Repo {
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    /// Stores a submission in one D1 batch, one round trip, atomically. Nothing is stored
    /// unless the site exists and (for browser requests) allows `origin`. Then:
    /// - a key seen before (a replay) changes nothing and finds the first answer's lead;
    /// - the same email on the same site within the duplicate window (neither being spam, and
    ///   the earlier lead neither erased nor unsubscribed: a form sent after unsubscribing
    ///   consents afresh, and starts its own follow-up) updates that lead and counts a
    ///   resubmission (`merge_within_hours`);
    /// - otherwise a new lead is inserted with its follow-up steps and webhook deliveries.
    pub async fn insert_lead(
        &self,
        new: &NewLead<'_>,
    ) -> Result<Result<Stored, Refusal>, AppError> {
        let lead = new.lead.get();
        let answers = lead.answers.to_json()?;
        let reasons = new.scored.reasons.to_json()?;
        let attribution = new.attribution.to_json()?;
        let search_text = search_text(&lead.email, &lead.name, lead.company.as_deref());
        // Which lead this submission belongs to: recorded once per key, first writer wins.
        let record = query!(
            &self.db,
            "INSERT INTO submissions (site_id, idempotency_key, lead_id, request_id)
             SELECT ?1, ?2, COALESCE(
                        (SELECT id FROM leads
                         WHERE ?4 IS NOT NULL AND site_id = ?1 AND email = ?3 COLLATE NOCASE
                           AND spam_reason IS NULL AND erased_at IS NULL
                           AND unsubscribed_at IS NULL
                           AND created_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                                                      printf('-%d hours', ?4))
                         ORDER BY created_at DESC LIMIT 1),
                        ?5),
                    ?5
             WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?1)
               AND (?6 IS NULL
                    OR EXISTS (SELECT 1 FROM site_origins WHERE site_id = ?1 AND origin = ?6))
             ON CONFLICT (site_id, idempotency_key) DO NOTHING",
            &lead.site_id,
            &lead.idempotency_key,
            &lead.email,
            &new.merge_within_hours,
            &new.id,
            &new.origin,
        )?;
        let insert = query!(
            &self.db,
            "INSERT INTO leads (id, site_id, email, name, company, phone, message,
                                consent_text_version, consent_ip, page_url, idempotency_key,
                                form_id, form_version, answers, score, grade, score_reasons,
                                attribution, channel, spam_reason, hot_request, search_text)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                    ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, CASE WHEN ?16 = 'hot' THEN ?1 END,
                    ?21
             WHERE EXISTS (SELECT 1 FROM submissions
                           WHERE site_id = ?2 AND idempotency_key = ?11 AND lead_id = ?1)
             RETURNING id",
            &new.id,
            &lead.site_id,
            &lead.email,
            &lead.name,
            &lead.company,
            &lead.phone,
            &lead.message,
            &lead.consent.text_version,
            &new.ip,
            &lead.page_url,
            &lead.idempotency_key,
            &new.form.id,
            &new.form.version,
            &answers,
            &new.scored.score,
            &new.scored.grade.as_str(),
            &reasons,
            &attribution,
            &new.channel.as_str(),
            &new.spam,
            &search_text,
        )?;
        // A resubmission brings the lead up to date: the latest contact details, answers and
        // score; a new message is added to the earlier one, never written over it.
        let update = query!(
            &self.db,
            &format!(
                "UPDATE leads SET
                name = ?4, company = COALESCE(?5, company), phone = COALESCE(?6, phone),
                message = CASE WHEN ?7 IS NULL OR ?7 = message THEN message
                               WHEN message IS NULL THEN ?7
                               ELSE message || char(10) || char(10) || ?7 END,
                consent_text_version = ?8, consent_ip = ?16, page_url = COALESCE(?9, page_url),
                form_id = ?10, form_version = ?11, answers = ?12, score = ?13, grade = ?14,
                score_reasons = ?15,
                resubmissions = resubmissions + 1,
                search_text = CASE WHEN instr(search_text, ?17) > 0 THEN search_text
                                   ELSE search_text || char(10) || ?17 END,
                hot_request = COALESCE(hot_request, CASE WHEN ?14 = 'hot' THEN ?3 END),
                last_submitted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ({RESUBMITTED})"
            ),
            &lead.site_id,
            &lead.idempotency_key,
            &new.id,
            &lead.name,
            &lead.company,
            &lead.phone,
            &lead.message,
            &lead.consent.text_version,
            &lead.page_url,
            &new.form.id,
            &new.form.version,
            &answers,
            &new.scored.score,
            &new.scored.grade.as_str(),
            &reasons,
            &new.ip,
            &search_text,
        )?;
        // Subscribers and the follow-up hear of the lead in the same batch: `lead.created` only
        // if it was inserted now, `lead.hot` only from the request that first made it hot, each
        // step only if the lead does not have it yet; so a replay or a resubmission tells no one
        // twice.
        let events: Vec<&str> = new.events.iter().map(|e| e.as_str()).collect();
        let submission = (lead.site_id.as_str(), lead.idempotency_key.as_str());
        let mut batch = vec![
            record,
            insert,
            update,
            self.webhook_events(new.id, &events, "{}", None, Some(submission), new.now_ms)?,
        ];
        for planned in new.follow_ups {
            batch.push(self.follow_up_insert(new.id, Some(submission), planned, new.now_ms)?);
        }
        // A person who sends the form again before confirming may not have the confirmation
        // (lost, or in the junk folder): it goes again, a limited number of times, and not
        // sooner than a while after the last (the step 0 planned above found the old one
        // there). Due now, it is queued with the rest of the steps due now; due later, the cron
        // trigger queues it then.
        if new.double_opt_in && new.merge_within_hours.is_some() {
            batch.push(self.confirmation_again(new)?);
        }
        batch.push(query!(
            &self.db,
            "SELECT s.lead_id AS id, l.idempotency_key = s.idempotency_key AS created,
                    s.request_id = ?3 AS now
             FROM submissions s JOIN leads l ON l.id = s.lead_id
             WHERE s.site_id = ?1 AND s.idempotency_key = ?2",
            &lead.site_id,
            &lead.idempotency_key,
            &new.id,
        )?);
        let results = self.db.batch(batch).await?;
        let rows = |i: usize| -> Result<Vec<IdRow>, AppError> {
            Ok(results
                .get(i)
                .map(|r| r.results::<IdRow>())
                .transpose()?
                .unwrap_or_default())
        };
        let answer = results
            .last()
            .map(|r| r.results::<SubmissionRow>())
            .transpose()?
            .and_then(|rows| rows.into_iter().next());
        let Some(answer) = answer else {
            // Refused: find out why (a second query, but only on this rare path).
            let known = self.site_exists(&lead.site_id).await?;
            return Ok(Err(if known {
                Refusal::OriginNotAllowed
            } else {
                Refusal::UnknownSite
            }));
        };
        let outcome = if !rows(1)?.is_empty() {
            Outcome::Created
        } else if answer.now != 0 {
            Outcome::Resubmitted
        } else {
            Outcome::Replayed {
                created: answer.created != 0,
            }
        };
        let deliveries = match outcome {
            Outcome::Created | Outcome::Resubmitted => rows(3)?.into_iter().map(|r| r.id).collect(),
            Outcome::Replayed { .. } => Vec::new(),
        };
        Ok(Ok(Stored {
            id: answer.id,
            deliveries,
            outcome,
        }))
    }

    /// The statement that arms the confirmation of the lead a resubmission updated again, if
    /// it is due for it (see `insert_lead`).
    fn confirmation_again(
        &self,
        new: &NewLead<'_>,
    ) -> Result<worker::D1PreparedStatement, AppError> {
        let lead = new.lead.get();
        Ok(query!(
            &self.db,
            &format!(
                "UPDATE follow_ups
             SET state = 'scheduled', due_at = MAX(?4, updated_at + ?6), attempts = 0,
                 last_error = NULL, provider_message_id = NULL, updated_at = ?4,
                 resent = resent + 1
             WHERE lead_id = ({RESUBMITTED})
               AND step = 0 AND template = 'confirm' AND state IN ('sent', 'dead')
               AND resent < ?5
               AND EXISTS (SELECT 1 FROM leads l
                           WHERE l.id = follow_ups.lead_id AND l.confirmed_at IS NULL
                             AND l.unsubscribed_at IS NULL AND l.erased_at IS NULL
                             AND l.spam_reason IS NULL)"
            ),
            &lead.site_id,
            &lead.idempotency_key,
            &new.id,
            &new.now_ms,
            &CONFIRM_RESENDS,
            &CONFIRM_RESEND_AFTER_MS,
        )?)
    }

    /// A site's settings for taking leads; `None` for an unknown site.
    pub async fn ingest_settings(&self, site_id: &str) -> Result<Option<IngestSettings>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT min_fill_seconds, duplicate_window_hours, turnstile_site_key, double_opt_in
             FROM sites WHERE id = ?1",
            &site_id
        )?;
        Ok(stmt.first::<IngestSettings>(None).await?)
    }

    /// Stores one planned step of a lead, if the lead exists and the step applies to its site
    /// (double opt-in setting; a sales inbox for sales alerts). With `submission` (its site and
    /// idempotency key), `lead_id` is the id of the request that recorded that submission, and
    /// the step is for the lead the submission belongs to: the new lead, or an earlier one of the
    /// same person that it updated (which thus hears of a step such as the sales alert once, the
    /// first time it is planned). A replayed request recorded nothing, and stores nothing.
    fn follow_up_insert(
        &self,
        lead_id: &str,
        submission: Option<(&str, &str)>,
        planned: &Planned,
        now_ms: i64,
    ) -> Result<worker::D1PreparedStatement, AppError> {
        let opt_in: Option<u8> = match planned.opt_in {
            OptIn::Any => None,
            OptIn::Required => Some(1),
            OptIn::NotRequired => Some(0),
        };
        // A sales email needs the site's sales inbox; a webhook needs its webhook URL.
        let to_sales = u8::from(
            planned.audience == Audience::Sales && planned.channel == followup::Channel::Email,
        );
        let (site_id, key) = submission.unzip();
        Ok(query!(
            &self.db,
            "INSERT INTO follow_ups (id, lead_id, step, template, due_at, updated_at, recipient,
                                     channel)
             SELECT l.id || '/' || CAST(?2 AS INTEGER), l.id, ?2, ?3, ?4, ?5,
                    CASE WHEN ?7 = 1 THEN s.sales_email END, ?8
             FROM leads l JOIN sites s ON s.id = l.site_id
             WHERE l.id = COALESCE((SELECT lead_id FROM submissions
                                    WHERE site_id = ?9 AND idempotency_key = ?10
                                      AND request_id = ?1), ?1)
               AND (?6 IS NULL OR s.double_opt_in = ?6)
               AND (?7 = 0 OR s.sales_email IS NOT NULL)
               AND (?8 <> 'webhook' OR s.webhook_url IS NOT NULL)
             ON CONFLICT (id) DO NOTHING",
            &lead_id,
            &planned.step,
            &planned.template.as_str(),
            &planned.due_ms,
            &now_ms,
            &opt_in,
            &to_sales,
            &planned.channel.as_str(),
            &site_id,
            &key,
        )?)
    }

    pub async fn sender(&self, site_id: &str) -> Result<Option<Sender>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT name, phone, booking_url, postal_address, logo_url, brand_color, locale
             FROM sites WHERE id = ?1",
            &site_id
        )?;
        Ok(stmt.first::<Sender>(None).await?)
    }

    pub async fn site_exists(&self, site_id: &str) -> Result<bool, AppError> {
        let stmt = query!(&self.db, "SELECT id FROM sites WHERE id = ?1", &site_id)?;
        Ok(stmt.first::<IdRow>(None).await?.is_some())
    }

    /// Whether any site allows `origin`: CORS preflights carry no site id.
    pub async fn origin_known(&self, origin: &str) -> Result<bool, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT site_id AS id FROM site_origins WHERE origin = ?1 LIMIT 1",
            &origin
        )?;
        Ok(stmt.first::<IdRow>(None).await?.is_some())
    }

    pub async fn site_for_origin(
        &self,
        site_id: &str,
        origin: Option<&str>,
    ) -> Result<Option<SiteForOrigin>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT id, name, consent_text, consent_version, phone, booking_url,
                    first_touch_attribution, double_opt_in, turnstile_site_key, min_fill_seconds,
                    updated_at, EXISTS (SELECT 1 FROM site_origins WHERE site_id = ?1 AND origin = ?2)
                        AS origin_allowed
             FROM sites WHERE id = ?1",
            &site_id,
            &origin
        )?;
        Ok(stmt.first::<SiteRow>(None).await?.map(|row| SiteForOrigin {
            origin_allowed: row.origin_allowed != 0,
            updated_at: row.updated_at,
            turnstile_site_key: row.turnstile_site_key,
            config: SiteConfig {
                id: row.id,
                name: row.name,
                consent_text: row.consent_text,
                consent_version: row.consent_version,
                phone: row.phone,
                booking_url: row.booking_url,
                first_touch_attribution: row.first_touch_attribution != 0,
                double_opt_in: row.double_opt_in != 0,
                turnstile: None,
                min_fill_seconds: row.min_fill_seconds,
            },
        }))
    }

    /// Creates or replaces a site and its allowed origins, atomically (one D1 batch).
    pub async fn put_site(&self, site_id: &str, site: &SiteDefinition) -> Result<(), AppError> {
        let sequences = site.sequences.as_ref().map(ToJson::to_json).transpose()?;
        let mut batch = vec![
            query!(
                &self.db,
                "INSERT INTO sites (id, name, consent_text, consent_version, phone, booking_url,
                                    first_touch_attribution, postal_address, sales_email,
                                    double_opt_in, sequences, webhook_url, logo_url, brand_color,
                                    locale, min_fill_seconds, duplicate_window_hours,
                                    turnstile_site_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18)
                 ON CONFLICT (id) DO UPDATE SET
                    name = excluded.name,
                    consent_text = excluded.consent_text,
                    consent_version = excluded.consent_version,
                    phone = excluded.phone,
                    booking_url = excluded.booking_url,
                    first_touch_attribution = excluded.first_touch_attribution,
                    postal_address = excluded.postal_address,
                    sales_email = excluded.sales_email,
                    double_opt_in = excluded.double_opt_in,
                    sequences = excluded.sequences,
                    webhook_url = excluded.webhook_url,
                    logo_url = excluded.logo_url,
                    brand_color = excluded.brand_color,
                    locale = excluded.locale,
                    min_fill_seconds = excluded.min_fill_seconds,
                    duplicate_window_hours = excluded.duplicate_window_hours,
                    turnstile_site_key = excluded.turnstile_site_key,
                    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                &site_id,
                &site.name,
                &site.consent_text,
                &site.consent_version,
                &site.phone,
                &site.booking_url,
                &u8::from(site.first_touch_attribution),
                &site.postal_address,
                &site.sales_email,
                &u8::from(site.double_opt_in),
                &sequences,
                &site.webhook_url,
                &site.logo_url,
                &site.brand_color,
                &site.locale.as_str(),
                &site.min_fill_seconds,
                &site.duplicate_window_hours,
                &site.turnstile_site_key
            )?,
            query!(
                &self.db,
                "DELETE FROM site_origins WHERE site_id = ?1",
                &site_id
            )?,
        ];
        for origin in &site.allowed_origins {
            batch.push(query!(
                &self.db,
                "INSERT INTO site_origins (site_id, origin) VALUES (?1, ?2)",
                &site_id,
                origin
            )?);
        }
        self.db.batch(batch).await?;
        Ok(())
    }

    /// A site's definition as stored (origins in alphabetical order); `None` for an unknown
    /// site. One D1 batch.
    pub async fn site_definition(&self, site_id: &str) -> Result<Option<SiteDefinition>, AppError> {
        let site = query!(
            &self.db,
            "SELECT name, consent_text, consent_version, phone, booking_url,
                    first_touch_attribution, postal_address, sales_email, double_opt_in,
                    sequences, webhook_url, logo_url, brand_color, locale, min_fill_seconds,
                    duplicate_window_hours, turnstile_site_key
             FROM sites WHERE id = ?1",
            &site_id
        )?;
        let origins = query!(
            &self.db,
            "SELECT origin FROM site_origins WHERE site_id = ?1 ORDER BY origin",
            &site_id
        )?;
        let results = self.db.batch(vec![site, origins]).await?;
        let (Some(site), Some(origins)) = (results.first(), results.get(1)) else {
            return Err(AppError::Internal("a batch of two answered less".into()));
        };
        let Some(row) = site.results::<SiteDefinitionRow>()?.into_iter().next() else {
            return Ok(None);
        };
        let sequences = row
            .sequences
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| AppError::Internal(format!("stored sequences of {site_id}: {e}")))?;
        Ok(Some(SiteDefinition {
            name: row.name,
            allowed_origins: origins
                .results::<OriginRow>()?
                .into_iter()
                .map(|r| r.origin)
                .collect(),
            consent_text: row.consent_text,
            consent_version: row.consent_version,
            phone: row.phone,
            booking_url: row.booking_url,
            first_touch_attribution: row.first_touch_attribution != 0,
            postal_address: row.postal_address,
            sales_email: row.sales_email,
            logo_url: row.logo_url,
            brand_color: row.brand_color,
            double_opt_in: row.double_opt_in != 0,
            sequences,
            webhook_url: row.webhook_url,
            locale: Locale::parse(&row.locale).unwrap_or_default(),
            min_fill_seconds: row.min_fill_seconds,
            duplicate_window_hours: row.duplicate_window_hours,
            turnstile_site_key: row.turnstile_site_key,
        }))
    }

    /// Stores a new version of a form, numbered one above the last; `None` if the site does not
    /// exist.
    pub async fn put_form(
        &self,
        site_id: &str,
        form_id: &str,
        definition: &FormDefinition,
    ) -> Result<Option<u32>, AppError> {
        let definition = definition.to_json()?;
        let stmt = query!(
            &self.db,
            "INSERT INTO forms (site_id, form_id, version, definition)
             SELECT ?1, ?2,
                    (SELECT COALESCE(MAX(version), 0) + 1 FROM forms
                     WHERE site_id = ?1 AND form_id = ?2),
                    ?3
             WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?1)
             RETURNING version",
            &site_id,
            &form_id,
            &definition
        )?;
        Ok(stmt.first::<VersionRow>(None).await?.map(|row| row.version))
    }

    /// A stored form: the given version, or the latest when `version` is `None`.
    pub async fn form(
        &self,
        site_id: &str,
        form_id: &str,
        version: Option<u32>,
    ) -> Result<Option<VersionedForm>, AppError> {
        let stmt = query!(
            &self.db,
            "SELECT form_id, version, definition FROM forms
             WHERE site_id = ?1 AND form_id = ?2 AND (?3 IS NULL OR version = ?3)
             ORDER BY version DESC LIMIT 1",
            &site_id,
            &form_id,
            &version
        )?;
        let Some(row) = stmt.first::<FormRow>(None).await? else {
            return Ok(None);
        };
        let definition = serde_json::from_str(&row.definition)
            .map_err(|e| AppError::Internal(format!("stored form {site_id}/{form_id}: {e}")))?;
        Ok(Some(VersionedForm {
            id: row.form_id,
            version: row.version,
            definition,
        }))
    }
}

impl Repo {
    /// Moves due steps (`scheduled`, or `queued`/`sending` whose lease of ten minutes ran out
    /// without an outcome) to `queued`, and returns their ids to put on the queue.
    pub async fn queue_due_follow_ups(
        &self,
        now_ms: i64,
        site: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, AppError> {
        let stmt = query!(
            &self.db,
            "UPDATE follow_ups SET state = 'queued', updated_at = ?1
             WHERE id IN (
                SELECT id FROM follow_ups
                WHERE ((state = 'scheduled' AND due_at <= ?1)
                       OR (state IN ('queued', 'sending') AND updated_at <= ?1 - ?4))
                  AND (?3 IS NULL OR lead_id IN (SELECT id FROM leads WHERE site_id = ?3))
                ORDER BY due_at LIMIT ?2)
             RETURNING id",
            &now_ms,
            &limit,
            &site,
            &LEASE_MS
        )?;
        returned_ids(stmt).await
    }

    /// Claims a due step for sending, exactly once: only one claimant moves it from
    /// `scheduled`/`queued` to `sending`. Returns what the message needs, or `None` when the
    /// step is not due, already taken, finished, or cancelled.
    pub async fn claim_follow_up(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<ClaimedFollowUp>, AppError> {
        let claim = query!(
            &self.db,
            "UPDATE follow_ups SET state = 'sending', attempts = attempts + 1, updated_at = ?2
             WHERE id = ?1 AND state IN ('scheduled', 'queued') AND due_at <= ?2
             RETURNING id, lead_id, step, template, channel, attempts, recipient, resent",
            &id,
            &now_ms
        )?;
        let Some(step) = claim.first::<ClaimRow>(None).await? else {
            return Ok(None);
        };
        let read = query!(
            &self.db,
            "SELECT l.email, l.name, l.company, l.phone, l.message, l.grade, l.score,
                    s.name AS site_name, s.phone AS site_phone, s.booking_url, s.postal_address,
                    s.sequences, s.webhook_url, s.logo_url, s.brand_color,
                    f.definition AS form_definition, l.unsubscribed_at, l.status, l.erased_at,
                    l.spam_reason,
                    s.locale
             FROM leads l JOIN sites s ON s.id = l.site_id
             LEFT JOIN forms f
                ON f.site_id = l.site_id AND f.form_id = l.form_id AND f.version = l.form_version
             WHERE l.id = ?1",
            &step.lead_id
        )?;
        let recipient = read
            .first::<RecipientRow>(None)
            .await?
            .ok_or_else(|| AppError::Internal(format!("follow-up {id} has no lead")))?;
        Ok(Some(ClaimedFollowUp {
            id: step.id,
            lead_id: step.lead_id,
            step: step.step,
            template: step.template,
            channel: step.channel,
            attempts: step.attempts,
            recipient: step.recipient,
            resent: step.resent,
            email: recipient.email,
            name: recipient.name,
            company: recipient.company,
            phone: recipient.phone,
            message: recipient.message,
            grade: recipient.grade,
            score: recipient.score,
            site_name: recipient.site_name,
            site_phone: recipient.site_phone,
            booking_url: recipient.booking_url,
            postal_address: recipient.postal_address,
            sequences: recipient.sequences,
            webhook_url: recipient.webhook_url,
            form_definition: recipient.form_definition,
            logo_url: recipient.logo_url,
            brand_color: recipient.brand_color,
            unsubscribed: recipient.unsubscribed_at.is_some(),
            nurtured: recipient.status == Status::Lead.as_str(),
            erased: recipient.erased_at.is_some(),
            spam: recipient.spam_reason.is_some(),
            locale: Locale::parse(&recipient.locale).unwrap_or_default(),
        }))
    }

    /// Stores the steps of a sequence and marks its start step done, atomically (the steps'
    /// ids are fixed, so a start step processed twice stores nothing twice).
    pub async fn start_sequence(
        &self,
        start_id: &str,
        lead_id: &str,
        steps: &[Planned],
        now_ms: i64,
    ) -> Result<(), AppError> {
        let mut batch = vec![query!(
            &self.db,
            "UPDATE follow_ups SET state = 'sent', updated_at = ?2 WHERE id = ?1",
            &start_id,
            &now_ms
        )?];
        for planned in steps {
            batch.push(self.follow_up_insert(lead_id, None, planned, now_ms)?);
        }
        self.db.batch(batch).await?;
        Ok(())
    }

    pub async fn follow_up_sent(
        &self,
        id: &str,
        provider_id: &str,
        now_ms: i64,
    ) -> Result<(), AppError> {
        query!(
            &self.db,
            "UPDATE follow_ups SET state = 'sent', provider_message_id = ?2, last_error = NULL,
                    updated_at = ?3
             WHERE id = ?1",
            &id,
            &provider_id,
            &now_ms
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Cancels a claimed step that must not be sent after all (the lead unsubscribed).
    pub async fn follow_up_cancelled(&self, id: &str, now_ms: i64) -> Result<(), AppError> {
        query!(
            &self.db,
            "UPDATE follow_ups SET state = 'cancelled', updated_at = ?2 WHERE id = ?1",
            &id,
            &now_ms
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Records a failed attempt: back to `scheduled` at `retry_at`, or `dead` when `None`.
    pub async fn follow_up_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), AppError> {
        query!(
            &self.db,
            "UPDATE follow_ups
             SET state = CASE WHEN ?3 IS NULL THEN 'dead' ELSE 'scheduled' END,
                 due_at = COALESCE(?3, due_at), last_error = ?2, updated_at = ?4
             WHERE id = ?1",
            &id,
            &error,
            &retry_at,
            &now_ms
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Confirms a double opt-in and stores the sequence that starts now, atomically. Returns
    /// the ids of the steps stored (empty when the lead was confirmed before, unsubscribed, or
    /// is unknown: confirming twice starts nothing twice).
    pub async fn confirm(
        &self,
        lead_id: &str,
        steps: &[Planned],
        now_ms: i64,
    ) -> Result<Vec<String>, AppError> {
        let read = query!(
            &self.db,
            "SELECT id FROM leads
             WHERE id = ?1 AND confirmed_at IS NULL AND unsubscribed_at IS NULL
               AND status = 'lead'",
            &lead_id
        )?;
        if read.first::<IdRow>(None).await?.is_none() {
            return Ok(Vec::new());
        }
        // Two confirmations racing both get here; step ids are fixed per lead, so the second
        // batch's inserts find the steps there and do nothing.
        let mut batch = vec![query!(
            &self.db,
            "UPDATE leads SET confirmed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1 AND confirmed_at IS NULL AND unsubscribed_at IS NULL
               AND status = 'lead'",
            &lead_id
        )?];
        for planned in steps {
            batch.push(self.follow_up_insert(lead_id, None, planned, now_ms)?);
        }
        self.db.batch(batch).await?;
        Ok(steps
            .iter()
            .map(|p| format!("{lead_id}/{}", p.step))
            .collect())
    }

    /// Unsubscribes the person a lead is from, on the lead's site, and cancels every step not
    /// yet sent to them, atomically: all their leads there (the same address, in any case),
    /// since one link in one email must stop everything that site sends them. A form they send
    /// later, consenting again, starts afresh. `false` for an unknown lead.
    pub async fn unsubscribe(&self, lead_id: &str, now_ms: i64) -> Result<bool, AppError> {
        let mark = query!(
            &self.db,
            &format!(
                "UPDATE leads SET unsubscribed_at = COALESCE(unsubscribed_at,
                        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                 WHERE id IN ({PERSON}) RETURNING id"
            ),
            &lead_id
        )?;
        let cancel = query!(
            &self.db,
            &format!(
                "UPDATE follow_ups SET state = 'cancelled', updated_at = ?2
                 WHERE lead_id IN ({PERSON}) AND state IN ('scheduled', 'queued')"
            ),
            &lead_id,
            &now_ms
        )?;
        let results = self.db.batch(vec![mark, cancel]).await?;
        let found = results
            .first()
            .map(|r| r.results::<IdRow>())
            .transpose()?
            .is_some_and(|rows| !rows.is_empty());
        Ok(found)
    }
}

/// The earlier lead that the submission (site `?1`, idempotency key `?2`) recorded by request
/// `?3` updated, rather than inserting a lead of its own: none for a new lead or a replay.
const RESUBMITTED: &str = "SELECT lead_id FROM submissions
     WHERE site_id = ?1 AND idempotency_key = ?2 AND request_id = ?3 AND lead_id <> ?3";

/// The ids of the person lead `?1` is from, on its site: their leads with the same address, in
/// any case (forms sent further apart than the duplicate window are leads of their own). An
/// erased lead has no address left, and stands only for itself.
const PERSON: &str = "SELECT p.id FROM leads p JOIN leads l ON l.id = ?1
     WHERE p.site_id = l.site_id AND p.email = l.email COLLATE NOCASE
       AND (p.id = l.id OR l.email <> '')";

/// How long a queued or sending step (or delivery) may go without an outcome before it is
/// queued again: its sender died, or its queue message was lost.
const LEASE_MS: i64 = 10 * 60 * 1000;

/// The ids a statement gave (`RETURNING id`, or a `SELECT` of `id`).
async fn returned_ids(stmt: worker::D1PreparedStatement) -> Result<Vec<String>, AppError> {
    Ok(stmt
        .all()
        .await?
        .results::<IdRow>()?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// JSON text for a column.
trait ToJson {
    fn to_json(&self) -> Result<String, AppError>;
}

impl<T: serde::Serialize + ?Sized> ToJson for T {
    fn to_json(&self) -> Result<String, AppError> {
        serde_json::to_string(self).map_err(|e| AppError::Internal(e.to_string()))
    }
}
