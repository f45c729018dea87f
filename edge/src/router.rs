//! Every route the Worker answers, in one place. Paths not listed here are static assets.

use worker::{Context, Env, Method, Request, Response};

use crate::error::AppError;
use crate::repo::Repo;
use leadglue_shared::followup::Purpose;
use leadglue_shared::sales::Scope;

use crate::{auth, config, followups, forms, http, leads, links, sales, sites, webhooks};

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Response {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    let origin = http::origin(&req);

    let result = match (segments.as_slice(), method) {
        (["healthz"], Method::Get | Method::Head) => http::json(200, &Health { status: "ok" }),
        (["healthz"], _) => Err(AppError::MethodNotAllowed { allow: "GET, HEAD" }),

        (["v1", "leads"], Method::Post) => {
            public(env, origin, async |repo| {
                leads::create(req, env, ctx, repo).await
            })
            .await
        }
        (["v1", "leads"], Method::Get | Method::Head) => {
            with_repo(env, async |repo| sales::list(&req, env, repo).await).await
        }
        (["v1", "leads"], Method::Options) => preflight(env, origin, "POST").await,
        (["v1", "leads"], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, POST, OPTIONS",
        }),

        (["v1", "sites", site], Method::Get | Method::Head) => {
            public(env, origin, async |repo| {
                sites::get(&req, env, repo, site).await
            })
            .await
        }
        (["v1", "sites", _], Method::Options) => preflight(env, origin, "GET").await,
        (["v1", "sites", _], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, OPTIONS",
        }),

        (["v1", "sites", site, "render-token"], Method::Get) => {
            public(env, origin, async |repo| {
                sites::render_token(&req, env, repo, site).await
            })
            .await
        }
        (["v1", "sites", _, "render-token"], Method::Options) => {
            preflight(env, origin, "GET").await
        }
        (["v1", "sites", _, "render-token"], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, OPTIONS",
        }),

        (["v1", "sites", site, "forms", form], Method::Get | Method::Head) => {
            public(env, origin, async |repo| {
                forms::get(&req, env, repo, site, form).await
            })
            .await
        }
        (["v1", "sites", _, "forms", _], Method::Options) => preflight(env, origin, "GET").await,
        (["v1", "sites", _, "forms", _], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, OPTIONS",
        }),

        (["v1", "sites", site, "forms", form, "html"], Method::Get | Method::Head) => {
            public(env, origin, async |repo| {
                forms::html(&req, env, repo, site, form).await
            })
            .await
        }
        (["v1", "sites", _, "forms", _, "html"], Method::Options) => {
            preflight(env, origin, "GET").await
        }
        (["v1", "sites", _, "forms", _, "html"], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, OPTIONS",
        }),

        (["v1", "leads", "export"], Method::Get | Method::Head) => {
            with_repo(env, async |repo| sales::export(&req, env, repo).await).await
        }
        (["v1", "leads", "export"], _) => Err(AppError::MethodNotAllowed { allow: "GET, HEAD" }),
        (["v1", "leads", id], Method::Get | Method::Head) => {
            with_repo(env, async |repo| sales::get(&req, env, repo, id).await).await
        }
        (["v1", "leads", id], Method::Patch) => {
            with_repo(env, async |repo| {
                sales::patch(req, env, ctx, repo, id).await
            })
            .await
        }
        (["v1", "leads", id], Method::Delete) => {
            with_repo(env, async |repo| sales::erase(&req, env, repo, id).await).await
        }
        (["v1", "leads", _], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, PATCH, DELETE",
        }),
        (["v1", "leads", id, "data"], Method::Get | Method::Head) => {
            with_repo(env, async |repo| sales::data(&req, env, repo, id).await).await
        }
        (["v1", "leads", _, "data"], _) => Err(AppError::MethodNotAllowed { allow: "GET, HEAD" }),
        (["v1", "leads", id, "notes"], Method::Post) => {
            with_repo(env, async |repo| sales::add_note(req, env, repo, id).await).await
        }
        (["v1", "leads", _, "notes"], _) => Err(AppError::MethodNotAllowed { allow: "POST" }),

        (["v1", "openapi.json"], Method::Get | Method::Head) => openapi(env).await,
        (["v1", "openapi.json"], _) => Err(AppError::MethodNotAllowed { allow: "GET, HEAD" }),

        (["v1", "admin", "api-keys"], Method::Post) => {
            with_repo(env, async |repo| sales::keys::create(req, env, repo).await).await
        }
        (["v1", "admin", "api-keys"], Method::Get) => {
            with_repo(env, async |repo| sales::keys::list(&req, env, repo).await).await
        }
        (["v1", "admin", "api-keys"], _) => Err(AppError::MethodNotAllowed { allow: "GET, POST" }),
        (["v1", "admin", "api-keys", id], Method::Delete) => {
            with_repo(env, async |repo| {
                sales::keys::revoke(&req, env, repo, id).await
            })
            .await
        }
        (["v1", "admin", "api-keys", _], _) => Err(AppError::MethodNotAllowed { allow: "DELETE" }),

        (["v1", "admin", "sites", site, "webhooks"], Method::Post) => {
            with_repo(env, async |repo| {
                webhooks::create(req, env, repo, site).await
            })
            .await
        }
        (["v1", "admin", "sites", site, "webhooks"], Method::Get) => {
            with_repo(env, async |repo| {
                webhooks::list(&req, env, repo, site).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "webhooks"], _) => {
            Err(AppError::MethodNotAllowed { allow: "GET, POST" })
        }
        (["v1", "admin", "sites", site, "webhooks", id], Method::Delete) => {
            with_repo(env, async |repo| {
                webhooks::delete(&req, env, repo, site, id).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "webhooks", _], _) => {
            Err(AppError::MethodNotAllowed { allow: "DELETE" })
        }
        (["v1", "admin", "sites", site, "webhooks", id, "deliveries"], Method::Get) => {
            with_repo(env, async |repo| {
                webhooks::deliveries(&req, env, repo, site, id).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "webhooks", _, "deliveries"], _) => {
            Err(AppError::MethodNotAllowed { allow: "GET" })
        }
        (["v1", "admin", "sites", site, "webhooks", id, "test"], Method::Post) => {
            with_repo(env, async |repo| {
                webhooks::test(&req, env, repo, site, id).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "webhooks", _, "test"], _) => {
            Err(AppError::MethodNotAllowed { allow: "POST" })
        }

        (["v1", "admin", "sites", site], Method::Get) => {
            with_repo(env, async |repo| {
                sites::definition(&req, env, repo, site).await
            })
            .await
        }
        (["v1", "admin", "sites", site], Method::Put) => {
            with_repo(env, async |repo| sites::put(req, env, repo, site).await).await
        }
        (["v1", "admin", "sites", _], _) => Err(AppError::MethodNotAllowed { allow: "GET, PUT" }),

        (["v1", "admin", "sites", site, "forms", form], Method::Put) => {
            with_repo(env, async |repo| {
                forms::put(req, env, repo, site, form).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "forms", _], _) => {
            Err(AppError::MethodNotAllowed { allow: "PUT" })
        }

        // The links in emails: people follow them (and link checkers, with HEAD), so they
        // answer pages, failures included.
        (["v1", "unsubscribe", token], Method::Get | Method::Head) => {
            links::or_page(links::button_page(env, Purpose::Unsubscribe, token))
        }
        (["v1", "unsubscribe", token], Method::Post) => links::or_page(
            with_repo(env, async |repo| links::unsubscribe(env, repo, token).await).await,
        ),
        (["v1", "confirm", token], Method::Get | Method::Head) => {
            links::or_page(links::button_page(env, Purpose::Confirm, token))
        }
        (["v1", "confirm", token], Method::Post) => links::or_page(
            with_repo(env, async |repo| links::confirm(env, repo, token).await).await,
        ),
        (["v1", "confirm", _], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, POST",
        }),
        (["v1", "unsubscribe", _], _) => Err(AppError::MethodNotAllowed {
            allow: "GET, HEAD, POST",
        }),

        (["v1", "admin", "sites", site, "templates", template], Method::Get) => {
            with_repo(env, async |repo| {
                followups::preview(&req, env, repo, site, template).await
            })
            .await
        }
        (["v1", "admin", "sites", _, "templates", _], _) => {
            Err(AppError::MethodNotAllowed { allow: "GET" })
        }

        (["v1", "admin", "follow-ups", "run"], Method::Post) => {
            with_repo(env, async |repo| run_follow_ups(&req, env, repo).await).await
        }
        (["v1", "admin", "follow-ups", "run"], _) => {
            Err(AppError::MethodNotAllowed { allow: "POST" })
        }

        (["v1", ..], _) => Err(AppError::NotFound),
        _ => assets(req, env).await,
    };
    result.unwrap_or_else(AppError::into_response)
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
}

fn repo(env: &Env) -> Result<Repo, AppError> {
    Ok(Repo::new(env.d1(config::DB)?))
}

async fn with_repo(
    env: &Env,
    handler: impl AsyncFnOnce(&Repo) -> Result<Response, AppError>,
) -> Result<Response, AppError> {
    handler(&repo(env)?).await
}

/// The OpenAPI 3.1 document describing every public endpoint: docs/openapi.json, which the
/// build copies among the static assets (served from there rather than built into the Worker,
/// whose every byte counts against its size budget).
async fn openapi(env: &Env) -> Result<Response, AppError> {
    let mut stored = env
        .assets(config::ASSETS)?
        .fetch(format!("https://assets.invalid/{OPENAPI_ASSET}"), None)
        .await?;
    if stored.status_code() != 200 {
        return Err(AppError::Internal(format!(
            "{OPENAPI_ASSET} is missing from the assets ({})",
            stored.status_code()
        )));
    }
    let mut response = Response::ok(stored.text().await?)?;
    let headers = response.headers_mut();
    headers.set("content-type", "application/json")?;
    headers.set("access-control-allow-origin", "*")?;
    headers.set("cache-control", "public, max-age=300")?;
    Ok(response)
}

/// Runs a handler of the public (widget-facing) API. Its successes carry their own CORS
/// headers; its errors are made readable to any origin some site allows, so the widget can show
/// what went wrong. (Checked only on the error path, to keep the happy path at one D1 query.)
async fn public(
    env: &Env,
    origin: Option<String>,
    handler: impl AsyncFnOnce(&Repo) -> Result<Response, AppError>,
) -> Result<Response, AppError> {
    let repo = repo(env)?;
    let err = match handler(&repo).await {
        Ok(response) => return Ok(response),
        Err(err) => err,
    };
    // A rate-limited request must stay cheap (no D1 read), and a 429 tells nothing about any
    // site: any origin may read it. Other errors only known origins may read.
    let readable = match &origin {
        Some(_) if matches!(err, AppError::RateLimited { .. }) => true,
        Some(origin) => repo.origin_known(origin).await.unwrap_or(false),
        None => false,
    };
    let response = err.into_response();
    Ok(match origin {
        Some(origin) if readable => http::allow_origin(response, &origin),
        _ => response,
    })
}

/// Answers a CORS preflight: allowed when some site allows the origin (a preflight does not
/// say which site it is for; the request itself is checked against its own site).
async fn preflight(env: &Env, origin: Option<String>, methods: &str) -> Result<Response, AppError> {
    let origin = origin.ok_or(AppError::OriginNotAllowed)?;
    if repo(env)?.origin_known(&origin).await? {
        http::preflight(&origin, methods)
    } else {
        Err(AppError::OriginNotAllowed)
    }
}

/// `POST /v1/admin/follow-ups/run[?now=<unix ms>][&site=<id>]`: queues the steps due now (or
/// as of `now`, to run a schedule ahead of time in tests and rehearsals), of one site's leads or
/// all. What the cron trigger does.
async fn run_follow_ups(req: &Request, env: &Env, repo: &Repo) -> Result<Response, AppError> {
    auth::require(req, env, repo, Scope::Admin).await?;
    let url = req.url()?;
    let now_ms = match url.query_pairs().find(|(k, _)| k == "now") {
        Some((_, v)) => v.parse::<i64>().map_err(|_| {
            AppError::Invalid(vec![leadglue_shared::FieldError::new(
                "now",
                "Must be a time in Unix milliseconds.",
            )])
        })?,
        None => crate::now_ms(),
    };
    let site = url
        .query_pairs()
        .find(|(k, _)| k == "site")
        .map(|(_, v)| v.into_owned());
    let queued = followups::dispatch_due(env, now_ms, site.as_deref()).await?;
    http::json(200, &serde_json::json!({ "queued": queued, "now": now_ms }))
}

/// Where `cargo xtask build` puts docs/openapi.json under `edge/public/`.
const OPENAPI_ASSET: &str = "v1/openapi.json";

async fn assets(req: Request, env: &Env) -> Result<Response, AppError> {
    Ok(env.assets(config::ASSETS)?.fetch_request(req).await?)
}
