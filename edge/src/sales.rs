//! The Sales API: find leads, read one in full, move it along its lifecycle, add notes, export,
//! and answer a person's requests for their data and its erasure. Thin: rules live in
//! `leadglue_shared::sales`, SQL in `repo`.

use futures_util::stream;
use leadglue_shared::json;
use leadglue_shared::sales::{
    self, Cursor, ExportFormat, LeadFilter, LeadPage, LeadPatch, LeadQuery, LeadRecord, NewNote,
    Scope,
};
use worker::{Context, Env, Headers, Request, Response};

use crate::auth;
use crate::error::AppError;
use crate::followups::{self, Kind};
use crate::repo::{Change, Repo};
use crate::{config, http, now_ms};

/// `GET /v1/leads`.
pub async fn list(req: &Request, env: &Env, repo: &Repo) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::LeadsRead).await?;
    let url = req.url()?;
    let query = sales::parse_list_query(url.query_pairs()).map_err(AppError::Invalid)?;
    http::json(200, &page(repo, &query).await?)
}

async fn page(repo: &Repo, query: &LeadQuery) -> Result<LeadPage, AppError> {
    // One more than asked says whether there is a next page.
    let mut leads = repo
        .list_leads(&LeadQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let more = leads.len() > query.limit as usize;
    leads.truncate(query.limit as usize);
    let next_cursor = more
        .then(|| leads.last())
        .flatten()
        .map(|last| Cursor::after(last).encode());
    Ok(LeadPage { leads, next_cursor })
}

/// `GET /v1/leads/{id}`.
pub async fn get(req: &Request, env: &Env, repo: &Repo, id: &str) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::LeadsRead).await?;
    http::json(200, &record(repo, id).await?)
}

async fn record(repo: &Repo, id: &str) -> Result<LeadRecord, AppError> {
    repo.lead_record(id).await?.ok_or(AppError::NotFound)
}

/// `PATCH /v1/leads/{id}`: status, assignee, tags. A move the lifecycle does not allow is a
/// 409 that explains itself; leaving the `lead` status stops the nurture sequence.
pub async fn patch(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    repo: &Repo,
    id: &str,
) -> Result<Response, AppError> {
    let who = auth::require(&req, env, repo, Scope::LeadsWrite).await?;
    let body = http::json_body(&mut req).await?;
    let patch = json::parse::<LeadPatch>(&body)?
        .validate()
        .map_err(AppError::Invalid)?;
    let stored = repo.lead_state(id).await?.ok_or(AppError::NotFound)?;
    if stored.erased {
        return Err(AppError::Conflict(
            "This lead's personal data was erased; it can no longer change.".into(),
        ));
    }
    let change = patch.apply(&stored.state).map_err(AppError::Conflict)?;
    if !change.changes.is_empty() {
        let actor = who.actor();
        let deliveries = repo
            .change_lead(&Change {
                lead_id: id,
                version: stored.version,
                change: &change,
                actor: &actor,
                now_ms: now_ms(),
            })
            .await?
            .ok_or_else(|| {
                AppError::Conflict(
                    "The lead changed while this change was being made; read it again and retry."
                        .into(),
                )
            })?;
        // Subscribers hear of it from the queue; should queueing fail, the cron finds the
        // deliveries due within a minute.
        let env = env.clone();
        let now = now_ms();
        ctx.wait_until(async move {
            if let Err(err) = followups::enqueue(&env, &deliveries, now, Kind::Webhook).await {
                worker::console_error!("queueing webhook deliveries: {err}");
            }
        });
    }
    http::json(200, &record(repo, id).await?)
}

/// `POST /v1/leads/{id}/notes`.
pub async fn add_note(
    mut req: Request,
    env: &Env,
    repo: &Repo,
    lead_id: &str,
) -> Result<Response, AppError> {
    let who = auth::require(&req, env, repo, Scope::LeadsWrite).await?;
    let body = http::json_body(&mut req).await?;
    let note = json::parse::<NewNote>(&body)?
        .validate()
        .map_err(AppError::Invalid)?;
    let id = uuid::Uuid::now_v7().to_string();
    let stored = repo
        .add_note(&id, lead_id, &who.actor(), &note.body)
        .await?
        .ok_or(AppError::NotFound)?;
    http::json(201, &stored)
}

/// `GET /v1/leads/{id}/data`: everything held about the person (this lead and their others on
/// its site), as a download.
pub async fn data(req: &Request, env: &Env, repo: &Repo, id: &str) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::LeadsRead).await?;
    // The lead's record with `other_leads`, each other lead's record as the lead's own is.
    let to_json = |record: &LeadRecord| {
        serde_json::to_string(record).map_err(|e| AppError::Internal(e.to_string()))
    };
    let lead = to_json(&record(repo, id).await?)?;
    let mut others = Vec::new();
    for other in repo.other_leads_of_person(id).await? {
        if let Some(record) = repo.lead_record(&other).await? {
            others.push(to_json(&record)?);
        }
    }
    let body = json::with_array_member(&lead, "other_leads", &others)
        .ok_or_else(|| AppError::Internal("a lead record is not a JSON object".into()))?;
    let mut response = Response::ok(body)?;
    response
        .headers_mut()
        .set("content-type", "application/json")?;
    response.headers_mut().set(
        "content-disposition",
        &format!("attachment; filename=\"lead-{id}.json\""),
    )?;
    Ok(response)
}

/// `DELETE /v1/leads/{id}`: erases the person's data and cancels their follow-ups, keeping an
/// anonymous tombstone. Repeating it is harmless.
pub async fn erase(req: &Request, env: &Env, repo: &Repo, id: &str) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::LeadsWrite).await?;
    if !repo.erase_lead(id, now_ms()).await? {
        return Err(AppError::NotFound);
    }
    Ok(Response::empty()?.with_status(204))
}

/// Rows per D1 read while exporting: memory stays at one chunk however long the export.
const EXPORT_CHUNK: u32 = 500;

/// `GET /v1/leads/export?format=csv|ndjson`: every lead matching the filters, newest first,
/// streamed chunk by chunk as D1 pages through them.
pub async fn export(req: &Request, env: &Env, repo: &Repo) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::LeadsRead).await?;
    let url = req.url()?;
    let (filter, format) =
        sales::parse_export_query(url.query_pairs()).map_err(AppError::Invalid)?;
    let repo = Repo::new(env.d1(config::DB)?);
    let header = match format {
        ExportFormat::Csv => Some(sales::csv_record(sales::CSV_COLUMNS)),
        ExportFormat::Ndjson => None,
    };
    let chunks = stream::try_unfold(
        Export {
            repo,
            filter,
            format,
            after: None,
            header,
            done: false,
        },
        |mut state| async move {
            if state.done {
                return Ok(None);
            }
            let chunk = state.next_chunk().await.map_err(|err| {
                worker::console_error!("export stopped: {err}");
                worker::Error::RustError("export failed".into())
            })?;
            Ok::<_, worker::Error>(Some((chunk, state)))
        },
    );
    let headers = Headers::new();
    headers.set("content-type", format.content_type())?;
    headers.set(
        "content-disposition",
        &format!("attachment; filename=\"leads.{}\"", format.extension()),
    )?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::from_stream(chunks)?.with_headers(headers))
}

struct Export {
    repo: Repo,
    filter: LeadFilter,
    format: ExportFormat,
    after: Option<Cursor>,
    header: Option<String>,
    done: bool,
}

impl Export {
    async fn next_chunk(&mut self) -> Result<Vec<u8>, AppError> {
        let mut out = self.header.take().unwrap_or_default().into_bytes();
        let leads = self
            .repo
            .export_leads(&LeadQuery {
                filter: self.filter.clone(),
                limit: EXPORT_CHUNK,
                after: self.after.take(),
            })
            .await?;
        self.done = leads.len() < EXPORT_CHUNK as usize;
        for lead in &leads {
            match self.format {
                ExportFormat::Csv => out.extend_from_slice(lead.csv().as_bytes()),
                ExportFormat::Ndjson => {
                    serde_json::to_writer(&mut out, lead)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    out.push(b'\n');
                }
            }
        }
        self.after = leads.last().map(|exported| Cursor::after(&exported.lead));
        Ok(out)
    }
}

/// `POST /v1/admin/api-keys`, `GET /v1/admin/api-keys`, `DELETE /v1/admin/api-keys/{id}`.
pub mod keys {
    use leadglue_shared::sales::{self, NewApiKey, Scope};
    use serde::Serialize;

    use super::*;
    use crate::repo::ApiKeyRow;

    /// A key as listed: never its secret.
    #[derive(Serialize)]
    struct KeyInfo {
        id: String,
        name: String,
        scopes: Vec<String>,
        created_at: String,
        last_used_at: Option<String>,
        revoked_at: Option<String>,
        /// Only in the answer that created it: it is shown once and never stored.
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    }

    impl From<ApiKeyRow> for KeyInfo {
        fn from(row: ApiKeyRow) -> Self {
            Self {
                scopes: row.scopes.split(' ').map(str::to_owned).collect(),
                id: row.id,
                name: row.name,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
                key: None,
            }
        }
    }

    pub async fn create(mut req: Request, env: &Env, repo: &Repo) -> Result<Response, AppError> {
        auth::require(&req, env, repo, Scope::Admin).await?;
        let body = http::json_body(&mut req).await?;
        let new = json::parse::<NewApiKey>(&body)?
            .validate()
            .map_err(AppError::Invalid)?;
        let id = auth::random_hex(8)?;
        let secret = auth::random_hex(32)?;
        let row = repo
            .create_api_key(&id, &new.name, &new.scope_list(), &sales::key_hash(&secret))
            .await?;
        let mut info = KeyInfo::from(row);
        info.key = Some(sales::format_key(&id, &secret));
        http::json(201, &info)
    }

    pub async fn list(req: &Request, env: &Env, repo: &Repo) -> Result<Response, AppError> {
        auth::require(req, env, repo, Scope::Admin).await?;
        let keys: Vec<KeyInfo> = repo.api_keys().await?.into_iter().map(Into::into).collect();
        http::json(200, &serde_json::json!({ "keys": keys }))
    }

    pub async fn revoke(
        req: &Request,
        env: &Env,
        repo: &Repo,
        id: &str,
    ) -> Result<Response, AppError> {
        auth::require(req, env, repo, Scope::Admin).await?;
        if !repo.revoke_api_key(id).await? {
            return Err(AppError::NotFound);
        }
        Ok(Response::empty()?.with_status(204))
    }
}
