//! The only module that speaks SQL. Every statement is parameterised; the schema lives in
//! `migrations/`.

use leadglue_shared::{SiteConfig, SiteDefinition, ValidLead};
use serde::Deserialize;
use worker::{D1Database, query};

use crate::error::AppError;

pub struct Repo {
    db: D1Database,
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
}

#[derive(Deserialize)]
struct SiteRow {
    id: String,
    name: String,
    consent_text: String,
    consent_version: String,
    phone: Option<String>,
    origin_allowed: u8,
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

impl Repo {
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    /// Stores a lead in one statement, one round trip: the insert happens only if the site
    /// exists and (for browser requests) allows `origin`. A retry with the same idempotency key
    /// stores nothing new and returns the first lead's id.
    pub async fn insert_lead(
        &self,
        id: &str,
        lead: &ValidLead,
        origin: Option<&str>,
        ip: Option<&str>,
    ) -> Result<Result<String, Refusal>, AppError> {
        let lead = lead.get();
        let stmt = query!(
            &self.db,
            "INSERT INTO leads (id, site_id, email, name, company, phone, message,
                                consent_text_version, consent_ip, page_url, idempotency_key)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
             WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?2)
               AND (?12 IS NULL
                    OR EXISTS (SELECT 1 FROM site_origins WHERE site_id = ?2 AND origin = ?12))
             ON CONFLICT (site_id, idempotency_key)
                DO UPDATE SET idempotency_key = excluded.idempotency_key
             RETURNING id",
            &id,
            &lead.site_id,
            &lead.email,
            &lead.name,
            &lead.company,
            &lead.phone,
            &lead.message,
            &lead.consent.text_version,
            &ip,
            &lead.page_url,
            &lead.idempotency_key,
            &origin,
        )?;
        if let Some(row) = stmt.first::<IdRow>(None).await? {
            return Ok(Ok(row.id));
        }
        // Refused: find out why (a second query, but only on this rare path).
        let known = self.site_exists(&lead.site_id).await?;
        Ok(Err(if known {
            Refusal::OriginNotAllowed
        } else {
            Refusal::UnknownSite
        }))
    }

    async fn site_exists(&self, site_id: &str) -> Result<bool, AppError> {
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
            "SELECT id, name, consent_text, consent_version, phone,
                    EXISTS (SELECT 1 FROM site_origins WHERE site_id = ?1 AND origin = ?2)
                        AS origin_allowed
             FROM sites WHERE id = ?1",
            &site_id,
            &origin
        )?;
        Ok(stmt.first::<SiteRow>(None).await?.map(|row| SiteForOrigin {
            origin_allowed: row.origin_allowed != 0,
            config: SiteConfig {
                id: row.id,
                name: row.name,
                consent_text: row.consent_text,
                consent_version: row.consent_version,
                phone: row.phone,
            },
        }))
    }

    /// Creates or replaces a site and its allowed origins, atomically (one D1 batch).
    pub async fn put_site(&self, site_id: &str, site: &SiteDefinition) -> Result<(), AppError> {
        let mut batch = vec![
            query!(
                &self.db,
                "INSERT INTO sites (id, name, consent_text, consent_version, phone)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET
                    name = excluded.name,
                    consent_text = excluded.consent_text,
                    consent_version = excluded.consent_version,
                    phone = excluded.phone,
                    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                &site_id,
                &site.name,
                &site.consent_text,
                &site.consent_version,
                &site.phone
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
}
