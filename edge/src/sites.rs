//! Sites: the public configuration a widget reads, and the admin call that defines a site.

use leadglue_shared::{SiteDefinition, json, validate};
use worker::{Env, Request, Response};

use crate::error::AppError;
use crate::http;
use crate::repo::{Repo, SiteForOrigin};

/// `GET /v1/sites/{site}`: what the widget shows (name, consent text, phone).
pub async fn get(req: &Request, repo: &Repo, site_id: &str) -> Result<Response, AppError> {
    let (site, origin) = for_origin(req, repo, site_id).await?;
    public_answer(http::json(200, &site.config)?, origin)
}

/// The site a public request names, checked against the request's `Origin` (requests without
/// one, from servers, are not browsers and pass). Returns the origin to answer to.
pub async fn for_origin(
    req: &Request,
    repo: &Repo,
    site_id: &str,
) -> Result<(SiteForOrigin, Option<String>), AppError> {
    let origin = http::origin(req);
    let site = repo
        .site_for_origin(site_id, origin.as_deref())
        .await?
        .ok_or(AppError::UnknownSite)?;
    if origin.is_some() && !site.origin_allowed {
        return Err(AppError::OriginNotAllowed);
    }
    Ok((site, origin))
}

/// A public answer about a site: cacheable for a minute (a marketer's edit, such as new consent
/// wording, reaches visitors that fast) and readable by the origin that asked.
pub fn public_answer(mut response: Response, origin: Option<String>) -> Result<Response, AppError> {
    response
        .headers_mut()
        .set("cache-control", "public, max-age=60")?;
    Ok(match origin {
        Some(origin) => http::allow_origin(response, &origin),
        None => response,
    })
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
    http::json(200, &site)
}
