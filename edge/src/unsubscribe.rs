//! Unsubscribing, per RFC 8058: a POST to the link in the `List-Unsubscribe` header
//! unsubscribes at once, with no login or cookie. A GET (what a person's click, or a mail
//! scanner, does) only shows a page with a confirm button: following a link must not unsubscribe.

use leadglue_shared::followup::verify_unsubscribe_token;
use worker::{Date, Env, Response};

use crate::config::EmailConfig;
use crate::error::AppError;
use crate::repo::Repo;

/// `GET /v1/unsubscribe/{token}`
pub fn confirm_page(env: &Env, token: &str) -> Result<Response, AppError> {
    lead_id(env, token)?;
    page(
        200,
        "Unsubscribe",
        &format!(
            "<p>Stop all emails about your request?</p>\
             <form method=\"post\" action=\"{}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            html_escape::encode_double_quoted_attribute(token)
        ),
    )
}

/// `POST /v1/unsubscribe/{token}`: one click from a mail client, or the confirm button.
pub async fn unsubscribe(env: &Env, repo: &Repo, token: &str) -> Result<Response, AppError> {
    let lead = lead_id(env, token)?;
    let now_ms = i64::try_from(Date::now().as_millis()).unwrap_or(i64::MAX);
    if !repo.unsubscribe(&lead, now_ms).await? {
        // A genuine token for a lead erased since: there is nothing left to send.
        worker::console_log!("unsubscribe for a lead no longer stored");
    }
    page(
        200,
        "Unsubscribed",
        "<p>You are unsubscribed: we will not email you about this request again.</p>",
    )
}

fn lead_id(env: &Env, token: &str) -> Result<String, AppError> {
    let config = EmailConfig::from_env(env).map_err(AppError::Internal)?;
    verify_unsubscribe_token(config.unsubscribe_secret.as_bytes(), token).ok_or(AppError::NotFound)
}

/// A small self-contained page under a strict Content-Security-Policy.
fn page(status: u16, title: &str, body: &str) -> Result<Response, AppError> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32em;\
         margin:4em auto;padding:0 1em;color:#1f2933}}button{{font:inherit;padding:.6em 1.2em}}\
         </style></head><body><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = Response::from_html(html)?.with_status(status);
    let headers = response.headers_mut();
    headers.set(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("referrer-policy", "no-referrer")?;
    headers.set("cache-control", "no-store")?;
    Ok(response)
}
