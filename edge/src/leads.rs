//! `POST /v1/leads`: a visitor asks for information.

use leadglue_shared::attribution::{self, Attribution, FirstTouch};
use leadglue_shared::followup::plan_on_capture;
use leadglue_shared::form::DEFAULT_FORM_ID;
use leadglue_shared::score::next_step;
use leadglue_shared::{FieldError, LeadCreated, score, submission, validate};
use leadglue_shared::{spam, webhooks};
use worker::{Context, Env, Request, Response};

use crate::error::AppError;
use crate::followups::{self, Dispatch, Kind};
use crate::repo::{NewLead, Outcome, Refusal, Repo};
use crate::{config, forms, http, sites, turnstile};

pub async fn create(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    repo: &Repo,
) -> Result<Response, AppError> {
    let origin = http::origin(&req);
    let ip = req.headers().get("cf-connecting-ip")?;
    // Per visitor first, before the body is even read; then per site.
    rate_limit(
        env,
        config::IP_RATE_LIMIT,
        format!("ip:{}", ip.as_deref().unwrap_or("-")),
    )
    .await?;
    let body = http::json_body(&mut req).await?;
    let submission = submission::parse(&body)?;
    if let Some(key) = req.headers().get("idempotency-key")?
        && key != submission.idempotency_key
    {
        return Err(AppError::Invalid(vec![FieldError::new(
            "idempotency_key",
            "Must be the same as the Idempotency-Key header.",
        )]));
    }
    rate_limit(
        env,
        config::SITE_RATE_LIMIT,
        format!("site:{}", submission.site_id),
    )
    .await?;
    let settings = sites::ingest_settings(repo, &submission.site_id).await?;

    let form_id = submission.form_id.as_deref().unwrap_or(DEFAULT_FORM_ID);
    let Some(form) =
        forms::resolve(repo, &submission.site_id, form_id, submission.form_version).await?
    else {
        return Err(AppError::Invalid(vec![FieldError::new(
            if submission.form_version.is_some() {
                "form_version"
            } else {
                "form_id"
            },
            "This form is no longer available; please reload the page.",
        )]));
    };
    let lead = validate(&submission, &form.definition)
        .and_then(|lead| lead.with_ascii_domain())
        .map_err(AppError::Invalid)?;
    if settings.turnstile_site_key.is_some() {
        let host = origin.as_deref().and_then(spam::origin_host);
        turnstile::verify(
            env,
            lead.get().turnstile_token.as_deref(),
            ip.as_deref(),
            &lead.get().idempotency_key,
            host,
        )
        .await?;
    }

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
    let id = uuid::Uuid::now_v7().to_string();
    let now_ms = crate::now_ms();
    // Spam is kept, but nothing is sent about it and no one is told.
    let screening = spam::screen(
        lead.get(),
        &config::render_token_key(env).map_err(AppError::Internal)?,
        now_ms,
        settings.min_fill_seconds,
        settings.duplicate_window_hours,
    );
    let spam = screening.spam;
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
        merge_within_hours: screening.merge_within_hours,
        double_opt_in: settings.double_opt_in != 0,
        now_ms,
    };
    match repo.insert_lead(&new).await? {
        Ok(stored) => {
            if matches!(stored.outcome, Outcome::Created | Outcome::Resubmitted) {
                // The steps due now (the first email, a sales alert) and the webhook deliveries:
                // queued without making the visitor wait. Steps that do not apply to the site,
                // or that an updated lead already had (its first email; its sales alert, should
                // it have been hot before), were not stored, and are skipped by the consumer.
                // (Each candidate once: the confirmation and the sequence's start share step 0.)
                let due_now: std::collections::BTreeSet<String> = follow_ups
                    .iter()
                    .filter(|p| p.due_ms <= now_ms)
                    .map(|p| format!("{}/{}", stored.id, p.step))
                    .collect();
                let messages = (due_now.into_iter().map(|id| (id, Kind::FollowUp)))
                    .chain(stored.deliveries.into_iter().map(|id| (id, Kind::Webhook)))
                    .map(|(id, kind)| Dispatch { id, now_ms, kind })
                    .collect();
                followups::enqueue_soon(ctx, env, messages);
            }
            // 201 for a new lead (and a replay of the request that made it); 200 when an earlier
            // lead with the same email was updated.
            let status = match stored.outcome {
                Outcome::Created | Outcome::Replayed { created: true } => 201,
                Outcome::Resubmitted | Outcome::Replayed { created: false } => 200,
            };
            let created = LeadCreated {
                id: stored.id,
                grade: scored.grade,
                next_step: next_step(scored.grade, follow_up),
            };
            Ok(http::answer_to(
                http::json(status, &created)?,
                origin.as_deref(),
            ))
        }
        Err(Refusal::UnknownSite) => Err(AppError::UnknownSite),
        Err(Refusal::OriginNotAllowed) => Err(AppError::OriginNotAllowed),
    }
}

/// Counts one request against a rate limit (a `[[ratelimits]]` binding); over the limit is a
/// 429 with `Retry-After`. A configuration without the binding has no limit.
async fn rate_limit(env: &Env, binding: &str, key: String) -> Result<(), AppError> {
    let Ok(limiter) = env.rate_limiter(binding) else {
        return Ok(());
    };
    if limiter.limit(key).await?.success {
        Ok(())
    } else {
        Err(AppError::RateLimited {
            retry_after: config::RATE_LIMIT_PERIOD_SECONDS,
        })
    }
}
