//! Talking to the edge, with the browser's `fetch`. Bodies are written and read with
//! `leadglue_shared::codec`: serde's format without serde's code (the widget's size budget,
//! issue 7).

use leadglue_shared::codec::{FromJson, ToJson};
use leadglue_shared::{EmbedConfig, LeadCreated, LeadSubmission, Problem};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// What can go wrong when talking to the edge, as the form needs to tell it apart.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// The edge refused the input; show its messages next to the fields.
    Invalid(Problem),
    /// The edge refused for another reason it explained (unknown site, wrong origin, …).
    Refused(Problem),
    /// No answer, or a server error: worth retrying as is.
    Unreachable,
}

/// The site's public configuration and the form to render.
pub async fn embed_config(
    api_base: &str,
    site_id: &str,
    form_id: &str,
) -> Result<EmbedConfig, SendError> {
    let url = format!("{api_base}/v1/sites/{site_id}/forms/{form_id}");
    read(fetch(&url, None).await)
}

pub async fn submit(api_base: &str, lead: &LeadSubmission) -> Result<LeadCreated, SendError> {
    read(fetch(&format!("{api_base}/v1/leads"), Some(lead.to_json())).await)
}

/// GETs `url`, or POSTs `json` to it; the answer's status and body.
async fn fetch(url: &str, json: Option<String>) -> Result<(u16, Option<String>), JsValue> {
    let init = web_sys::RequestInit::new();
    if let Some(json) = json {
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", "application/json")?;
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&json.into());
    }
    let sent = leptos::prelude::window().fetch_with_str_and_init(url, &init);
    let response: web_sys::Response = JsFuture::from(sent).await?.dyn_into()?;
    let body = JsFuture::from(response.text()?).await?.as_string();
    Ok((response.status(), body))
}

/// A JSON answer, or what went wrong as the form needs to tell it apart.
fn read<T: FromJson>(answer: Result<(u16, Option<String>), JsValue>) -> Result<T, SendError> {
    let (status, body) = answer.map_err(|_| SendError::Unreachable)?;
    let body = body.as_deref();
    match status {
        200..=299 => body.and_then(T::from_json).ok_or(SendError::Unreachable),
        500.. => Err(SendError::Unreachable),
        _ => match body.and_then(Problem::from_json) {
            Some(problem) if problem.status == 422 => Err(SendError::Invalid(problem)),
            Some(problem) => Err(SendError::Refused(problem)),
            None => Err(SendError::Unreachable),
        },
    }
}
