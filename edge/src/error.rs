//! The edge's one error type, and the one place that turns it into an HTTP answer.

use leadglue_shared::{FieldError, Problem, json::ParseError, problem};
use worker::{Headers, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the body is not valid JSON")]
    MalformedJson,
    #[error("the body is larger than allowed")]
    PayloadTooLarge,
    #[error("the body is not JSON")]
    UnsupportedMediaType,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("unknown site")]
    UnknownSite,
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("missing or wrong credentials")]
    Unauthorized,
    #[error("the credentials lack the scope needed")]
    Forbidden { needed: &'static str },
    #[error("no such resource")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("too many requests")]
    RateLimited { retry_after: u32 },
    /// Something the answer depends on (e.g. Turnstile's siteverify) did not answer. The text is
    /// logged, never sent; the client may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything the client did not cause. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<worker::Error> for AppError {
    fn from(err: worker::Error) -> Self {
        AppError::Internal(err.to_string())
    }
}

impl From<ParseError> for AppError {
    fn from(err: ParseError) -> Self {
        match err {
            ParseError::Malformed => AppError::MalformedJson,
            ParseError::Shape(field) => AppError::Invalid(vec![field]),
        }
    }
}

impl AppError {
    /// Status, problem type, title and (optionally) detail: the whole mapping, in one table.
    fn describe(&self) -> (u16, &'static str, &'static str, Option<String>) {
        use AppError::*;
        match self {
            MalformedJson => (
                400,
                "malformed-json",
                "The request body is not valid JSON.",
                None,
            ),
            Unauthorized => (
                401,
                "unauthorized",
                "Missing or invalid credentials.",
                Some("Send `Authorization: Bearer <token>`.".to_owned()),
            ),
            OriginNotAllowed => (
                403,
                "origin-not-allowed",
                "This site does not accept submissions from this page's origin.",
                Some("Add the page's origin to the site's allowed origins.".to_owned()),
            ),
            Forbidden { needed } => (
                403,
                "insufficient-scope",
                "These credentials may not do this.",
                Some(format!("This needs an API key with the `{needed}` scope.")),
            ),
            Conflict(why) => (
                409,
                "conflict",
                "The change does not fit the lead's current state.",
                Some(why.clone()),
            ),
            UnknownSite => (404, "unknown-site", "There is no site with this id.", None),
            NotFound => (404, "not-found", "There is nothing at this address.", None),
            MethodNotAllowed { .. } => (
                405,
                "method-not-allowed",
                "This address does not accept this method.",
                None,
            ),
            PayloadTooLarge => (
                413,
                "payload-too-large",
                "The request body is too large.",
                Some("Request bodies are limited to 32 KiB.".to_owned()),
            ),
            UnsupportedMediaType => (
                415,
                "unsupported-media-type",
                "The request body must be JSON.",
                Some("Send `Content-Type: application/json`.".to_owned()),
            ),
            Invalid(_) => (422, "validation", "Some fields need attention.", None),
            RateLimited { retry_after } => (
                429,
                "rate-limited",
                "Too many requests. Please wait a moment and try again.",
                Some(format!("Try again in {retry_after} seconds.")),
            ),
            Unavailable(_) => (
                503,
                "unavailable",
                "We could not check this request just now. Please try again.",
                None,
            ),
            Internal(_) => (
                500,
                "internal",
                "Something went wrong on our side. Please try again.",
                None,
            ),
        }
    }

    /// Internal details go to the log, and only there.
    fn log(&self) {
        match self {
            AppError::Internal(detail) => worker::console_error!("internal error: {detail}"),
            AppError::Unavailable(detail) => worker::console_error!("unavailable: {detail}"),
            _ => {}
        }
    }

    /// For a person rather than a program (who followed a link in an email): the status and
    /// the sentence to show them on a page, from the same table as the problem a client gets.
    pub fn for_people(self) -> (u16, &'static str) {
        self.log();
        let (status, _, title, _) = self.describe();
        (status, title)
    }

    /// The answer a client gets: an RFC 9457 problem. Internal details are logged here, beside
    /// the conversion, and never leave the Worker.
    pub fn into_response(self) -> Response {
        self.log();
        let (status, slug, title, detail) = self.describe();
        let retry_after = match &self {
            AppError::RateLimited { retry_after } => Some(*retry_after),
            AppError::Unavailable(_) => Some(5),
            _ => None,
        };
        let allow = match &self {
            AppError::MethodNotAllowed { allow } => Some(*allow),
            _ => None,
        };
        let errors = match self {
            AppError::Invalid(errors) => errors,
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status,
            detail,
            errors,
        };
        let headers = Headers::new();
        // Setting a well-formed constant header cannot fail.
        let _ = headers.set("content-type", problem::CONTENT_TYPE);
        if let Some(allow) = allow {
            let _ = headers.set("allow", allow);
        }
        if let Some(seconds) = retry_after {
            let _ = headers.set("retry-after", &seconds.to_string());
        }
        let json = serde_json::to_string(&body).unwrap_or_default();
        Response::ok(json)
            .map(|r| r.with_status(status).with_headers(headers))
            .unwrap_or_else(|_| {
                Response::empty()
                    .expect("an empty response")
                    .with_status(500)
            })
    }
}
