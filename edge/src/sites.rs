//! Sites: the public configuration a widget reads, and the admin call that defines a site.

use leadglue_shared::{SiteDefinition, json, validate};
use worker::{Env, Request, Response};

use crate::error::AppError;
use crate::http;
use crate::repo::Repo;

/// `GET /v1/sites/{site}`: what the widget shows (name, consent text, phone).
pub async fn get(req: &Request, repo: &Repo, site_id: &str) -> Result<Response, AppError> {
    let origin = http::origin(req);
    let site = repo
        .site_for_origin(site_id, origin.as_deref())
        .await?
        .ok_or(AppError::UnknownSite)?;
    let mut response = http::json(200, &site.config)?;
    // Short: a marketer's edit (new consent wording) should reach visitors within a minute.
    response
        .headers_mut()
        .set("cache-control", "public, max-age=60")?;
    match origin {
        Some(origin) if site.origin_allowed => Ok(http::allow_origin(response, &origin)),
        Some(_) => Err(AppError::OriginNotAllowed),
        None => Ok(response),
    }
}

/// `PUT /v1/admin/sites/{site}`: creates or replaces a site. Answers with the stored,
/// normalised definition.
pub async fn put(
    mut req: Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
) -> Result<Response, AppError> {
    http::require_admin(&req, env)?;
    let site_id = validate::site_id(site_id)
        .map_err(|m| AppError::Invalid(vec![leadglue_shared::FieldError::new("site_id", m)]))?;
    let body = http::json_body(&mut req).await?;
    let site = json::parse::<SiteDefinition>(&body)?
        .validate()
        .map_err(AppError::Invalid)?;
    repo.put_site(&site_id, &site).await?;
    http::json(200, &site)
}
