#![doc = include_str!("../README.md")]

mod config;
mod error;
mod forms;
mod http;
mod leads;
mod repo;
mod router;
mod sites;

use worker::{Context, Env, Request, Response, event};

/// Every HTTP request that is not a static asset arrives here (see `run_worker_first` in
/// wrangler.toml).
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(router::handle(req, &env).await)
}
