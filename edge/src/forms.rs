//! Forms: the public form a widget renders, the admin call that defines one, and the lookup
//! the lead handler scores against.

use std::cell::RefCell;
use std::collections::HashMap;

use leadglue_shared::form::{DEFAULT_FORM_ID, DEFAULT_FORM_VERSION};
use leadglue_shared::{
    EmbedConfig, FieldError, FormDefinition, SiteConfig, VersionedForm, default_form, json, markup,
    validate,
};
use worker::{Env, Request, Response};

use crate::cache::Ttl;
use crate::error::AppError;
use crate::repo::{Repo, SiteForOrigin};
use crate::{http, sites};

thread_local! {
    /// Stored versions never change, so each isolate keeps the ones it has read: after the
    /// first lead, scoring a form costs no D1 round trip.
    static VERSIONS: RefCell<HashMap<(String, String, u32), VersionedForm>> = RefCell::default();
}

thread_local! {
    /// What the plain-HTML form is rendered from, by site, form and asking origin (allowed
    /// ones only), for a minute: it is asked for on every page view, and would otherwise cost
    /// two D1 round trips each time, before the visitor sees the form.
    static SHOWN: RefCell<Ttl<ShownKey, (SiteConfig, VersionedForm)>> =
        RefCell::new(Ttl::new(sites::CACHE_TTL_MS, 1024));
}

/// Site, form and the asking origin.
type ShownKey = (String, String, Option<String>);

/// Bound on cached versions per isolate (each is a few KB at most).
const CACHE_LIMIT: usize = 512;

/// The form a submission or a widget asks for: a given version, or the latest when `version` is
/// `None`. The built-in default form answers for `default` until the site stores its own, and
/// as version 0 always (pages rendered before the site stored one still score).
pub async fn resolve(
    repo: &Repo,
    site_id: &str,
    form_id: &str,
    version: Option<u32>,
) -> Result<Option<VersionedForm>, AppError> {
    let builtin = || VersionedForm {
        id: DEFAULT_FORM_ID.to_owned(),
        version: DEFAULT_FORM_VERSION,
        definition: default_form(),
    };
    let is_default = form_id == DEFAULT_FORM_ID;
    if let Some(v) = version {
        if is_default && v == DEFAULT_FORM_VERSION {
            return Ok(Some(builtin()));
        }
        let key = (site_id.to_owned(), form_id.to_owned(), v);
        if let Some(hit) = VERSIONS.with_borrow(|cache| cache.get(&key).cloned()) {
            return Ok(Some(hit));
        }
    }
    let stored = repo.form(site_id, form_id, version).await?;
    if let Some(form) = &stored {
        VERSIONS.with_borrow_mut(|cache| {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                (site_id.to_owned(), form.id.clone(), form.version),
                form.clone(),
            );
        });
    }
    Ok(match stored {
        None if is_default && version.is_none() => Some(builtin()),
        other => other,
    })
}

/// The site a public request names (checked against its origin, which is returned to answer
/// to) and the form's latest version.
async fn latest(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
    form_id: &str,
) -> Result<(SiteForOrigin, Option<String>, VersionedForm), AppError> {
    let (site, origin) = sites::for_origin(req, env, repo, site_id).await?;
    let form = resolve(repo, site_id, form_id, None)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((site, origin, form))
}

/// `GET /v1/sites/{site}/forms/{form}`: the site's public configuration and the form's latest
/// version. Cacheable, with an ETag that changes when either does.
pub async fn get(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
    form_id: &str,
) -> Result<Response, AppError> {
    let (site, origin, form) = latest(req, env, repo, site_id, form_id).await?;
    let etag = format!("\"{}-{}\"", form.version, site.updated_at);
    let fresh = req
        .headers()
        .get("if-none-match")?
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        Response::empty()?.with_status(304)
    } else {
        http::json(
            200,
            &EmbedConfig {
                site: site.config,
                form,
            },
        )?
    };
    response.headers_mut().set("etag", &etag)?;
    sites::public_answer(response, origin.as_deref())
}

/// `GET /v1/sites/{site}/forms/{form}/html`: the form's first step as HTML, with its styles
/// (`leadglue_shared::markup`), for the snippet or loader to show before the widget's wasm is fetched.
/// It carries a fresh render token (the minimum fill time counts from when the form was shown),
/// so it is never cached. Refusals are the configuration's, as problem documents: the loader
/// then leaves it to the widget to say why.
pub async fn html(
    req: &Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
    form_id: &str,
) -> Result<Response, AppError> {
    let origin = http::origin(req);
    let key = (site_id.to_owned(), form_id.to_owned(), origin.clone());
    let now = crate::now_ms();
    let (site, form) = match SHOWN.with_borrow(|cache| cache.get(&key, now)) {
        Some(hit) => hit,
        None => {
            let (site, _, form) = latest(req, env, repo, site_id, form_id).await?;
            let shown = (site.config, form);
            SHOWN.with_borrow_mut(|cache| cache.put(key, shown.clone(), now));
            shown
        }
    };
    let token = sites::new_render_token(env, site_id)?;
    let mut response = Response::from_html(markup::first_step(&site, &form, &token))?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(http::answer_to(response, origin.as_deref()))
}

/// Forgets what this isolate keeps of `site_id`'s forms (the site or one of its forms changed).
pub fn forget(site_id: &str) {
    SHOWN.with_borrow_mut(|cache| cache.forget(|(site, _, _)| site == site_id));
}

/// `PUT /v1/admin/sites/{site}/forms/{form}`: stores a new version of a form. Answers with the
/// version number and the stored definition.
pub async fn put(
    mut req: Request,
    env: &Env,
    repo: &Repo,
    site_id: &str,
    form_id: &str,
) -> Result<Response, AppError> {
    crate::auth::require(&req, env, repo, leadglue_shared::sales::Scope::Admin).await?;
    let form_id = validate::form_id(form_id)
        .map_err(|m| AppError::Invalid(vec![FieldError::new("form_id", m)]))?;
    let body = http::json_body(&mut req).await?;
    let definition = json::parse::<FormDefinition>(&body)?;
    definition.validate().map_err(AppError::Invalid)?;
    let version = repo
        .put_form(site_id, &form_id, &definition)
        .await?
        .ok_or(AppError::UnknownSite)?;
    // This isolate shows the new version at once; others within a minute.
    forget(site_id);
    http::json(
        200,
        &VersionedForm {
            id: form_id,
            version,
            definition,
        },
    )
}
