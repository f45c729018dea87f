//! Cloudflare Turnstile: checking a visitor's challenge answer with siteverify
//! (<https://developers.cloudflare.com/turnstile/get-started/server-side-validation/>).

use leadglue_shared::FieldError;
use leadglue_shared::spam::{self, SiteVerify, TurnstileFailure};
use worker::Env;

use crate::config;
use crate::error::AppError;
use crate::providers;

/// Checks `token` with siteverify. Tokens are single-use there: passing our idempotency key lets
/// a retry of the same submission (same key, same token) verify again instead of being refused
/// as a duplicate. `expected_host` is the host of the page that sent the lead.
pub async fn verify(
    env: &Env,
    token: Option<&str>,
    ip: Option<&str>,
    idempotency_key: &str,
    expected_host: Option<&str>,
) -> Result<(), AppError> {
    let Some(token) = token else {
        return Err(refused(TurnstileFailure::Missing));
    };
    let secret = config::setting(env, config::TURNSTILE_SECRET_KEY).ok_or_else(|| {
        AppError::Unavailable(format!("{} is not set", config::TURNSTILE_SECRET_KEY))
    })?;
    let url = config::setting(env, config::TURNSTILE_VERIFY_URL)
        .unwrap_or_else(|| config::DEFAULT_TURNSTILE_VERIFY_URL.to_owned());
    let body = serde_json::json!({
        "secret": secret,
        "response": token,
        "remoteip": ip,
        "idempotency_key": idempotency_key,
    });
    let (status, text) = providers::post_text(&url, &[], body.to_string())
        .await
        .map_err(|f| AppError::Unavailable(format!("siteverify: {}", f.reason)))?;
    if !(200..=299).contains(&status) {
        return Err(AppError::Unavailable(format!(
            "siteverify answered {status}"
        )));
    }
    let answer: SiteVerify = serde_json::from_str(&text)
        .map_err(|e| AppError::Unavailable(format!("siteverify's answer: {e}")))?;
    spam::turnstile_verdict(&answer, expected_host).map_err(refused)
}

fn refused(failure: TurnstileFailure) -> AppError {
    let message = match failure {
        TurnstileFailure::Missing => "Please complete the check above the button.",
        TurnstileFailure::Refused(codes) => {
            worker::console_log!("turnstile refused: {codes}");
            "The check did not pass or has expired; please try it again."
        }
    };
    AppError::Invalid(vec![FieldError::new("turnstile_token", message)])
}
