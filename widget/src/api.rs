//! Talking to the edge. Bodies are written and read with `leadglue_shared::codec`, serde's
//! format without serde's code (the widget's size budget, issue 7).

use gloo_net::http::Request;
use leadglue_shared::codec::{FromJson, ToJson};
use leadglue_shared::{EmbedConfig, LeadCreated, LeadSubmission, Problem};

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
    read(Request::get(&url).send().await).await
}

pub async fn submit(api_base: &str, lead: &LeadSubmission) -> Result<LeadCreated, SendError> {
    let request = Request::post(&format!("{api_base}/v1/leads"))
        .header("Content-Type", "application/json")
        .body(lead.to_json())
        .map_err(|_| SendError::Unreachable)?;
    read(request.send().await).await
}

/// A JSON answer, or what went wrong as the form needs to tell it apart.
async fn read<T: FromJson>(
    sent: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, SendError> {
    let response = sent.map_err(|_| SendError::Unreachable)?;
    let body = response.text().await.ok();
    let status = response.status();
    if response.ok() {
        body.as_deref()
            .and_then(T::from_json)
            .ok_or(SendError::Unreachable)
    } else if status >= 500 {
        Err(SendError::Unreachable)
    } else {
        match body.as_deref().and_then(Problem::from_json) {
            Some(problem) if problem.status == 422 => Err(SendError::Invalid(problem)),
            Some(problem) => Err(SendError::Refused(problem)),
            None => Err(SendError::Unreachable),
        }
    }
}
