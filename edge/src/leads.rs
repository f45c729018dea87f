//! `POST /v1/leads`: a visitor asks for information.

use leadglue_shared::{LeadCreated, submission, validate};
use worker::{Request, Response};

use crate::error::AppError;
use crate::http;
use crate::repo::{Refusal, Repo};

pub async fn create(mut req: Request, repo: &Repo) -> Result<Response, AppError> {
    let origin = http::origin(&req);
    let body = http::json_body(&mut req).await?;
    let lead = validate(&submission::parse(&body)?).map_err(AppError::Invalid)?;
    let ip = req.headers().get("cf-connecting-ip")?;
    let id = uuid::Uuid::now_v7().to_string();
    match repo
        .insert_lead(&id, &lead, origin.as_deref(), ip.as_deref())
        .await?
    {
        Ok(id) => {
            let response = http::json(201, &LeadCreated { id })?;
            Ok(match origin {
                Some(origin) => http::allow_origin(response, &origin),
                None => response,
            })
        }
        Err(Refusal::UnknownSite) => Err(AppError::UnknownSite),
        Err(Refusal::OriginNotAllowed) => Err(AppError::OriginNotAllowed),
    }
}
