//! `POST /v1/leads`: a visitor asks for information.

use leadglue_shared::attribution::{self, Attribution, FirstTouch};
use leadglue_shared::followup::plan_on_capture;
use leadglue_shared::form::DEFAULT_FORM_ID;
use leadglue_shared::score::next_step;
use leadglue_shared::webhooks;
use leadglue_shared::{FieldError, LeadCreated, score, submission, validate};
use worker::{Context, Env, Request, Response};

use crate::error::AppError;
use crate::followups::{self, Kind};
use crate::repo::{NewLead, Refusal, Repo};
use crate::{forms, http};

pub async fn create(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    repo: &Repo,
) -> Result<Response, AppError> {
    let origin = http::origin(&req);
    let body = http::json_body(&mut req).await?;
    let submission = submission::parse(&body)?;

    let form_id = submission.form_id.as_deref().unwrap_or(DEFAULT_FORM_ID);
    let Some(form) =
        forms::resolve(repo, &submission.site_id, form_id, submission.form_version).await?
    else {
        return Err(if repo.site_exists(&submission.site_id).await? {
            AppError::Invalid(vec![FieldError::new(
                if submission.form_version.is_some() {
                    "form_version"
                } else {
                    "form_id"
                },
                "This form is no longer available; please reload the page.",
            )])
        } else {
            AppError::UnknownSite
        });
    };
    let lead = validate(&submission, &form.definition).map_err(AppError::Invalid)?;

    // The edge's own judgement: whatever score a client sent was dropped by the parser.
    let scored = score(&form.definition, &lead.get().answers);
    let follow_up = form.definition.follow_up(&lead.get().answers);
    let touch = lead
        .get()
        .first_touch
        .clone()
        .unwrap_or_else(|| FirstTouch {
            landing_page: lead.get().page_url.clone().unwrap_or_default(),
            referrer: None,
        });
    let attribution = Attribution::from_first_touch(&touch);
    let ip = req.headers().get("cf-connecting-ip")?;
    let id = uuid::Uuid::now_v7().to_string();
    let now_ms = crate::now_ms();
    // Spam is kept, but nothing is sent about it and no one is told.
    let spam = submission.spam_reason();
    let follow_ups = match spam {
        Some(_) => Vec::new(),
        None => plan_on_capture(scored.grade, now_ms),
    };
    let events = webhooks::on_capture(scored.grade, spam.is_some());
    let new = NewLead {
        id: &id,
        lead: &lead,
        form: &form,
        scored: &scored,
        channel: attribution::channel(&attribution),
        attribution: &attribution,
        origin: origin.as_deref(),
        ip: ip.as_deref(),
        follow_ups: &follow_ups,
        events: &events,
        spam,
        now_ms,
    };
    match repo.insert_lead(&new).await? {
        Ok(stored) => {
            if stored.id == id {
                // The steps due now (the first email, a sales alert): queue them without making
                // the visitor wait. Steps that do not apply to the site were not stored and are
                // skipped by the consumer. Should this fail, the cron trigger finds the steps due
                // within a minute anyway.
                let env = env.clone();
                // (Each candidate once: the confirmation and the sequence's start share step 0,
                // only one of them being stored.)
                let due_now: std::collections::BTreeSet<String> = follow_ups
                    .iter()
                    .filter(|p| p.due_ms <= now_ms)
                    .map(|p| format!("{id}/{}", p.step))
                    .collect();
                let due_now: Vec<String> = due_now.into_iter().collect();
                let deliveries = stored.deliveries;
                ctx.wait_until(async move {
                    let queued = followups::enqueue(&env, &due_now, now_ms, Kind::FollowUp).await;
                    let told = followups::enqueue(&env, &deliveries, now_ms, Kind::Webhook).await;
                    if let Err(err) = queued.and(told) {
                        worker::console_error!("queueing the first follow-ups: {err}");
                    }
                });
            }
            let id = stored.id;
            let created = LeadCreated {
                id,
                grade: scored.grade,
                next_step: next_step(scored.grade, follow_up),
            };
            let response = http::json(201, &created)?;
            Ok(match origin {
                Some(origin) => http::allow_origin(response, &origin),
                None => response,
            })
        }
        Err(Refusal::UnknownSite) => Err(AppError::UnknownSite),
        Err(Refusal::OriginNotAllowed) => Err(AppError::OriginNotAllowed),
    }
}
