#![doc = include_str!("../README.md")]

mod auth;
mod cache;
mod config;
mod error;
mod followups;
mod forms;
mod http;
mod leads;
mod links;
mod providers;
mod repo;
mod router;
mod sales;
mod sites;
mod turnstile;
mod webhooks;

use worker::{Context, Env, MessageBatch, Request, Response, ScheduledEvent, event};

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
}

/// Every HTTP request that is not a static asset arrives here (see `run_worker_first` in
/// wrangler.toml).
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(router::handle(req, &env, &ctx).await)
}

/// The cron trigger (every minute): queues the follow-up steps that have come due, as of the
/// event's scheduled time.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    let now_ms = event.schedule() as i64;
    if let Err(err) = followups::dispatch_due(&env, now_ms, None).await {
        worker::console_error!("dispatching follow-ups: {err}");
    }
}

/// The follow-up queue's consumer: sends each step through the email provider.
#[event(queue)]
async fn queue(
    batch: MessageBatch<followups::Dispatch>,
    env: Env,
    _ctx: Context,
) -> worker::Result<()> {
    followups::consume(batch, &env)
        .await
        .map_err(|err| worker::Error::RustError(err.to_string()))
}
