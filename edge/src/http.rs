//! HTTP plumbing shared by the handlers: bounded JSON bodies, JSON answers, CORS.

use futures_util::StreamExt;
use leadglue_shared::MAX_BODY_BYTES;
use serde::Serialize;
use worker::{Headers, Request, Response};

use crate::error::AppError;

/// Reads a JSON request body of at most [`MAX_BODY_BYTES`], refusing other media types. The
/// body is read as a stream and abandoned as soon as it passes the limit, so a huge or endless
/// body costs the Worker no more than the limit.
pub async fn json_body(req: &mut Request) -> Result<Vec<u8>, AppError> {
    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(AppError::UnsupportedMediaType);
    }
    let declared = req.headers().get("content-length")?;
    if declared
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        return Err(AppError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all: let the parser say what is missing.
        Err(_) => return Ok(body),
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON answer with the given status.
pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response, AppError> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// The request's `Origin` header, if a browser sent one.
pub fn origin(req: &Request) -> Option<String> {
    req.headers().get("origin").ok().flatten()
}

/// Lets the page at `origin` read this answer (and only that origin: never `*` on the API).
pub fn allow_origin(mut response: Response, origin: &str) -> Response {
    let headers = response.headers_mut();
    let _ = headers.set("access-control-allow-origin", origin);
    // A widget told to slow down (429, 503) can read for how long.
    let _ = headers.set("access-control-expose-headers", "retry-after");
    let _ = headers.append("vary", "Origin");
    response
}

/// [`allow_origin`] for a browser's request; a server's (no `Origin`) gets the answer as is.
pub fn answer_to(response: Response, origin: Option<&str>) -> Response {
    match origin {
        Some(origin) => allow_origin(response, origin),
        None => response,
    }
}

/// The answer to a CORS preflight from an allowed origin.
pub fn preflight(origin: &str, methods: &str) -> Result<Response, AppError> {
    let headers = Headers::new();
    headers.set("access-control-allow-methods", methods)?;
    headers.set(
        "access-control-allow-headers",
        "content-type, idempotency-key",
    )?;
    // Chromium caps this at two hours; the answer changes only when a site's origins do.
    headers.set("access-control-max-age", "7200")?;
    let response = Response::empty()?.with_status(204).with_headers(headers);
    Ok(allow_origin(response, origin))
}
