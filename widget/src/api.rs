//! Talking to the edge.

use gloo_net::http::Request;
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
        .json(lead)
        .map_err(|_| SendError::Unreachable)?;
    read(request.send().await).await
}

/// A JSON answer, or what went wrong as the form needs to tell it apart.
async fn read<T: serde::de::DeserializeOwned>(
    sent: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, SendError> {
    let response = sent.map_err(|_| SendError::Unreachable)?;
    if response.ok() {
        response.json().await.map_err(|_| SendError::Unreachable)
    } else {
        Err(problem(&response).await)
    }
}

async fn problem(response: &gloo_net::http::Response) -> SendError {
    if response.status() >= 500 {
        return SendError::Unreachable;
    }
    match response.json::<Problem>().await {
        Ok(problem) if problem.status == 422 => SendError::Invalid(problem),
        Ok(problem) => SendError::Refused(problem),
        Err(_) => SendError::Unreachable,
    }
}
