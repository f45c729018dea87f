//! The signed links in emails. Unsubscribing follows RFC 8058: a POST to the link in the
//! `List-Unsubscribe` header unsubscribes at once, with no login or cookie. Confirming a double
//! opt-in is a POST too. A GET (what a person's click, or a mail scanner, does) only shows a page
//! with a button: following a link must never act.

use leadglue_shared::followup::{Purpose, plan_on_confirm, verify};
use worker::{Env, Response};

use crate::now_ms;

use crate::config;
use crate::error::AppError;
use crate::followups;
use crate::repo::Repo;

/// `GET /v1/unsubscribe/{token}` and `GET /v1/confirm/{token}`: the page with the button.
pub fn button_page(env: &Env, purpose: Purpose, token: &str) -> Result<Response, AppError> {
    if lead_id(env, purpose, token)?.is_none() {
        return not_a_link();
    }
    let (title, question, button, field) = match purpose {
        Purpose::Unsubscribe => (
            "Unsubscribe",
            "Stop all emails about your requests?",
            "Unsubscribe",
            "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">",
        ),
        Purpose::Confirm => (
            "Confirm your email",
            "Confirm that this is your address, and we will send what you asked for.",
            "Confirm",
            "",
        ),
    };
    page(
        200,
        title,
        &format!(
            "<p>{question}</p><form method=\"post\" action=\"{}\">{field}\
             <button type=\"submit\">{button}</button></form>",
            html_escape::encode_double_quoted_attribute(token)
        ),
    )
}

/// `POST /v1/confirm/{token}`: confirms a double opt-in; the sequence starts now.
pub async fn confirm(env: &Env, repo: &Repo, token: &str) -> Result<Response, AppError> {
    let Some(lead) = lead_id(env, Purpose::Confirm, token)? else {
        return not_a_link();
    };
    let now_ms = now_ms();
    let steps = repo
        .confirm(&lead, &plan_on_confirm(now_ms), now_ms)
        .await?;
    // Confirmed whether or not the queue takes the steps now: should it not, the cron trigger
    // queues them within a minute, and the person is told the truth either way.
    if let Err(err) = followups::enqueue(env, &steps, now_ms, followups::Kind::FollowUp).await {
        worker::console_error!("queueing the steps of a confirmation: {err}");
    }
    page(
        200,
        "Thank you",
        "<p>Your address is confirmed. What you asked for is on its way.</p>",
    )
}

/// `POST /v1/unsubscribe/{token}`: one click from a mail client, or the confirm button.
pub async fn unsubscribe(env: &Env, repo: &Repo, token: &str) -> Result<Response, AppError> {
    let Some(lead) = lead_id(env, Purpose::Unsubscribe, token)? else {
        return not_a_link();
    };
    let now_ms = now_ms();
    if !repo.unsubscribe(&lead, now_ms).await? {
        // A genuine token for a lead erased since: there is nothing left to send.
        worker::console_log!("unsubscribe for a lead no longer stored");
    }
    page(
        200,
        "Unsubscribed",
        "<p>You are unsubscribed: we will send you no more emails about your requests.</p>",
    )
}

/// What the routes of these links answer when they fail (storage down, a setting missing): a
/// page saying so, since a person followed the link, not an API's problem.
pub fn or_page(answer: Result<Response, AppError>) -> Result<Response, AppError> {
    answer.or_else(|err| {
        let (status, sentence) = err.for_people();
        page(
            status,
            "Something went wrong",
            &format!("<p>{sentence}</p>"),
        )
    })
}

/// The lead a link is for, or `None` if its token does not verify.
fn lead_id(env: &Env, purpose: Purpose, token: &str) -> Result<Option<String>, AppError> {
    let secret = config::link_secret(env).map_err(AppError::Internal)?;
    Ok(verify(secret.as_bytes(), purpose, token))
}

/// What a person who followed a damaged or made-up link sees: a page, not an API's problem.
fn not_a_link() -> Result<Response, AppError> {
    page(
        404,
        "This link does not work",
        "<p>This link is not complete or not valid. Your email program may have cut it in two: \
         try copying the whole link from the email into your browser.</p>",
    )
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
