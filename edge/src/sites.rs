//! Sites: the public configuration a widget reads, and the admin call that defines a site.

use std::cell::RefCell;

use leadglue_shared::site::TurnstileConfig;
use leadglue_shared::{SiteDefinition, json, spam, validate};
use worker::{Env, Request, Response};

use crate::cache::Ttl;
use crate::error::AppError;
use crate::repo::{IngestSettings, Repo, SiteForOrigin};
use crate::{config, http};

/// `GET /v1/sites/{site}`: what the widget shows (name, consent text, phone).
pub async fn get(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<Response, AppError> {
    let (site, origin) = for_origin(req, env, repo, site_id).await?;
    public_answer(http::json(200, &site.config)?, origin.as_deref())
}

/// `GET /v1/sites/{site}/render-token`: a token signing this site and this moment, which the
/// widget fetches when it shows the form and sends back with the lead (the minimum fill time,
/// see `leadglue_shared::spam`). Never cached.
pub async fn render_token(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<Response, AppError> {
    let (_, origin) = for_origin(req, env, repo, site_id).await?;
    let token = new_render_token(env, site_id)?;
    let mut response = http::json(200, &RenderToken { token })?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(http::answer_to(response, origin.as_deref()))
}

/// A render token for `site_id`, signed now.
pub fn new_render_token(env: &Env, site_id: &str) -> Result<String, AppError> {
    let key = config::render_token_key(env).map_err(AppError::Internal)?;
    Ok(spam::render_token(&key, site_id, crate::now_ms()))
}

#[derive(serde::Serialize)]
struct RenderToken {
    token: String,
}

thread_local! {
    /// Each isolate keeps a site's ingest settings for a minute (as long as browsers keep its
    /// public configuration): most leads then cost one D1 round trip, not two.
    static SETTINGS: RefCell<Ttl<String, IngestSettings>> =
        RefCell::new(Ttl::new(CACHE_TTL_MS, 1024));
}

/// How long an isolate keeps what D1 said about a site: as long as browsers keep its public
/// configuration, so a marketer's edit reaches visitors within the same minute either way.
pub const CACHE_TTL_MS: i64 = 60_000;

/// A site's settings for taking leads (spam screening, duplicate window); unknown site: 404.
pub async fn ingest_settings(repo: &Repo, site_id: &str) -> Result<IngestSettings, AppError> {
    let now = crate::now_ms();
    if let Some(settings) = SETTINGS.with_borrow(|cache| cache.get(site_id, now)) {
        return Ok(settings);
    }
    let settings = repo
        .ingest_settings(site_id)
        .await?
        .ok_or(AppError::UnknownSite)?;
    SETTINGS.with_borrow_mut(|cache| cache.put(site_id.to_owned(), settings.clone(), now));
    Ok(settings)
}

/// The site a public request names, checked against the request's `Origin` (requests without
/// one, from servers, are not browsers and pass). Returns the origin to answer to.
pub async fn for_origin(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<(SiteForOrigin, Option<String>), AppError> {
    let origin = http::origin(req);
    let mut site = repo
        .site_for_origin(site_id, origin.as_deref())
        .await?
        .ok_or(AppError::UnknownSite)?;
    site.config.turnstile = site
        .turnstile_site_key
        .clone()
        .map(|site_key| TurnstileConfig {
            site_key,
            script_url: config::setting(env, config::TURNSTILE_SCRIPT_URL)
                .unwrap_or_else(|| config::DEFAULT_TURNSTILE_SCRIPT_URL.to_owned()),
        });
    if origin.is_some() && !site.origin_allowed {
        return Err(AppError::OriginNotAllowed);
    }
    Ok((site, origin))
}

/// A public answer about a site: cacheable for a minute (a marketer's edit, such as new consent
/// wording, reaches visitors that fast) and readable by the origin that asked.
pub fn public_answer(mut response: Response, origin: Option<&str>) -> Result<Response, AppError> {
    response
        .headers_mut()
        .set("cache-control", "public, max-age=60")?;
    Ok(http::answer_to(response, origin))
}

/// `GET /v1/admin/sites/{site}`: the site's definition as stored, to change and `PUT` back
/// whole (a `PUT` replaces every setting).
pub async fn definition(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<Response, AppError> {
    crate::auth::require(req, env, repo, leadglue_shared::sales::Scope::Admin).await?;
    let site = repo
        .site_definition(site_id)
        .await?
        .ok_or(AppError::UnknownSite)?;
    http::json(200, &site)
}

/// `PUT /v1/admin/sites/{site}`: creates or replaces a site. Answers with the stored,
/// normalised definition.
pub async fn put(
    mut req: Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<Response, AppError> {
    crate::auth::require(&req, env, repo, leadglue_shared::sales::Scope::Admin).await?;
    let site_id = validate::site_id(site_id)
        .map_err(|m| AppError::Invalid(vec![leadglue_shared::FieldError::new("site_id", m)]))?;
    let body = http::json_body(&mut req).await?;
    let site = json::parse::<SiteDefinition>(&body)?
        .validate()
        .map_err(AppError::Invalid)?;
    repo.put_site(&site_id, &site).await?;
    // This isolate sees the change at once; others within a minute.
    SETTINGS.with_borrow_mut(|cache| cache.forget(|id| *id == site_id));
    crate::forms::forget(&site_id);
    http::json(200, &site)
}
