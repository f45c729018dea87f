//! Talking to the edge, with the browser's `fetch`. Bodies are written and read with
//! `leadglue_shared::codec`: serde's format without serde's code (the widget's size budget,
//! issue 7).

use leadglue_shared::codec::{self, FromJson, Value};
use leadglue_shared::{EmbedConfig, LeadCreated, Problem};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// What can go wrong when talking to the edge, as the form needs to tell it apart.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// The edge refused the input; show its messages next to the fields.
    Invalid(Problem),
    /// The edge refused for another reason it explained (unknown site, wrong origin, …).
    Refused(Problem),
    /// No answer, a server error or too many requests: worth sending again as is, after the
    /// edge's `Retry-After` (seconds; the edge exposes it to the origins it answers).
    Unreachable(Option<u32>),
}

/// Waits before the automatic retries of one send, in milliseconds: three retries within about
/// eight seconds ride out a blip, a deploy or a cold start without keeping a visitor waiting
/// long. Whatever is still undelivered after them stays in the outbox.
const RETRY_WAITS_MS: [u32; 3] = [1_000, 2_000, 4_000];

/// The longest `Retry-After` worth waiting for in front of the visitor; a longer one (the rate
/// limit's minute) ends the retries at once.
const MAX_WAIT_MS: u32 = 8_000;

/// How long to wait before automatic retry number `retry` (from 0), or `None` to stop: the
/// schedule's wait plus up to a quarter more (`jitter` in [0, 1)), so that visitors who failed
/// together do not all come back together; never less than the edge's `Retry-After`.
pub fn retry_wait_ms(retry: usize, retry_after_s: Option<u32>, jitter: f64) -> Option<u32> {
    let base = *RETRY_WAITS_MS.get(retry)?;
    let wait = base + (f64::from(base) * 0.25 * jitter) as u32;
    match retry_after_s.map(|s| s.saturating_mul(1000)) {
        Some(asked) if asked > MAX_WAIT_MS => None,
        Some(asked) => Some(wait.max(asked)),
        None => Some(wait),
    }
}

/// The site's public configuration and the form to render. `started` is the same request when
/// the loader already sent it (alongside the wasm, so the form is not a round trip later); it
/// is used only if its URL reads exactly as this one, else the widget asks itself.
pub async fn embed_config(
    api_base: &str,
    site_id: &str,
    form_id: &str,
    started: Option<js_sys::Promise>,
) -> Result<EmbedConfig, SendError> {
    let url = format!("{api_base}/v1/sites/{site_id}/forms/{form_id}");
    if let Some(started) = started {
        match JsFuture::from(started).await.map(web_sys::Response::from) {
            Ok(response) if response.url() == url => return read(answer(response).await),
            Ok(_) => {}
            Err(e) => return read(Err(e)),
        }
    }
    read(fetch(&url, None).await)
}

/// A token proving when the form was shown (the site's minimum fill time), or `None` when it
/// could not be fetched.
pub async fn render_token(api_base: &str, site_id: &str) -> Option<String> {
    let url = format!("{api_base}/v1/sites/{site_id}/render-token");
    let (200, Some(body), _) = fetch(&url, None).await.ok()? else {
        return None;
    };
    match codec::parse(&body)? {
        Value::Object(members) => members
            .iter()
            .find(|(k, _)| k == "token")
            .and_then(|(_, v)| String::from_value(v)),
        _ => None,
    }
}

/// A render token fetched only when the form is sent (fetching it when the form was shown
/// failed: the edge was unreachable then), handed over once the site's minimum fill time has
/// passed since it was issued: the edge counts the fill time from the token, and would
/// otherwise keep a person who took their time as too fast.
pub async fn late_render_token(
    api_base: &str,
    site_id: &str,
    min_fill_seconds: u32,
) -> Option<String> {
    let token = render_token(api_base, site_id).await?;
    // A little more than the minimum: the edge's clock reads the token, not this one.
    sleep(min_fill_seconds.saturating_mul(1000).saturating_add(250)).await;
    Some(token)
}

/// Posts a submission's JSON `body` once, with its idempotency `key` also as the
/// `Idempotency-Key` header.
pub async fn post(api_base: &str, key: &str, body: &str) -> Result<LeadCreated, SendError> {
    read(fetch(&format!("{api_base}/v1/leads"), Some((key, body))).await)
}

/// Posts a submission, retrying on [`SendError::Unreachable`] on [`retry_wait_ms`]'s schedule
/// while the browser is online. The same body and key every time: the edge stores one lead.
pub async fn deliver(api_base: &str, key: &str, body: &str) -> Result<LeadCreated, SendError> {
    let mut retry = 0;
    loop {
        let answer = post(api_base, key, body).await;
        let Err(SendError::Unreachable(after)) = answer else {
            return answer;
        };
        match retry_wait_ms(retry, after, js_sys::Math::random()) {
            Some(ms) if online() => sleep(ms).await,
            _ => return answer,
        }
        retry += 1;
    }
}

/// Whether the browser believes it has a network (false means surely not; true, maybe).
pub fn online() -> bool {
    leptos::prelude::window().navigator().on_line()
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let done = js_sys::Promise::new(&mut |resolve, _| {
        let _ = leptos::prelude::window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(done).await;
}

/// The answer's status, body and `Retry-After`.
type Answer = (u16, Option<String>, Option<String>);

/// How long a request may take, its answer's body included, before it is cut off as stalled
/// (browsers never give up on a stalled connection by themselves) and fails as unreachable:
/// a send is then tried again, with the same idempotency key.
const REQUEST_TIMEOUT_MS: i32 = 10_000;

/// GETs `url`, or POSTs a JSON body with its idempotency key to it.
async fn fetch(url: &str, post: Option<(&str, &str)>) -> Result<Answer, JsValue> {
    let window = leptos::prelude::window();
    let stop = web_sys::AbortController::new()?;
    let abort = js_sys::Reflect::get(&stop, &"abort".into())?
        .unchecked_into::<js_sys::Function>()
        .bind0(&stop);
    let timer =
        window.set_timeout_with_callback_and_timeout_and_arguments_0(&abort, REQUEST_TIMEOUT_MS)?;
    let answer = fetch_until(&window, url, post, &stop.signal()).await;
    window.clear_timeout_with_handle(timer);
    answer
}

/// [`fetch`]'s request, given up when `signal` aborts.
async fn fetch_until(
    window: &web_sys::Window,
    url: &str,
    post: Option<(&str, &str)>,
    signal: &web_sys::AbortSignal,
) -> Result<Answer, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(signal));
    if let Some((key, json)) = post {
        let headers = web_sys::Headers::new()?;
        headers.set("Content-Type", "application/json")?;
        headers.set("Idempotency-Key", key)?;
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&json.into());
    }
    let sent = window.fetch_with_str_and_init(url, &init);
    answer(JsFuture::from(sent).await?.dyn_into()?).await
}

/// Reads a response's status, body and `Retry-After`.
async fn answer(response: web_sys::Response) -> Result<Answer, JsValue> {
    let retry_after = response.headers().get("Retry-After").ok().flatten();
    let body = JsFuture::from(response.text()?).await?.as_string();
    Ok((response.status(), body, retry_after))
}

/// A JSON answer, or what went wrong as the form needs to tell it apart.
fn read<T: FromJson>(answer: Result<Answer, JsValue>) -> Result<T, SendError> {
    let Ok((status, body, retry_after)) = answer else {
        return Err(SendError::Unreachable(None));
    };
    let body = body.as_deref();
    match status {
        200..=299 => body
            .and_then(T::from_json)
            .ok_or(SendError::Unreachable(None)),
        429 | 500.. => Err(SendError::Unreachable(
            retry_after.and_then(|s| s.trim().parse().ok()),
        )),
        _ => match body.and_then(Problem::from_json) {
            Some(problem) if problem.status == 422 => Err(SendError::Invalid(problem)),
            Some(problem) => Err(SendError::Refused(problem)),
            None => Err(SendError::Unreachable(None)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_stop() {
        let waits: Vec<_> = (0..4).map(|n| retry_wait_ms(n, None, 0.0)).collect();
        assert_eq!(waits, [Some(1_000), Some(2_000), Some(4_000), None]);
        assert_eq!(retry_wait_ms(2, None, 0.999), Some(4_999));
    }

    /// What is worth sending again (kept in the outbox) and what is the edge's final word.
    #[test]
    fn answers_are_told_apart() {
        let created = r#"{"id":"1","grade":"warm","next_step":"expect_email"}"#;
        let problem = |status: u16| {
            format!(r#"{{"type":"about:blank","title":"No","status":{status},"errors":[]}}"#)
        };
        let answer = |status: u16, body: Option<String>, retry_after: Option<&str>| {
            read::<LeadCreated>(Ok((status, body, retry_after.map(str::to_owned))))
        };
        assert!(answer(201, Some(created.into()), None).is_ok());
        assert!(answer(200, Some(created.into()), None).is_ok());
        assert_eq!(
            answer(201, Some("<html>".into()), None),
            Err(SendError::Unreachable(None)),
            "an unreadable success is asked again: the same key answers the same"
        );
        assert_eq!(
            answer(429, Some(problem(429)), Some("60")),
            Err(SendError::Unreachable(Some(60)))
        );
        assert_eq!(
            answer(503, None, Some("soon")),
            Err(SendError::Unreachable(None))
        );
        assert!(matches!(
            answer(422, Some(problem(422)), None),
            Err(SendError::Invalid(_))
        ));
        assert!(matches!(
            answer(403, Some(problem(403)), None),
            Err(SendError::Refused(_))
        ));
    }

    #[test]
    fn retry_after_is_honoured_when_short_and_ends_retries_when_long() {
        assert_eq!(retry_wait_ms(0, Some(5), 0.5), Some(5_000));
        assert_eq!(retry_wait_ms(2, Some(1), 0.0), Some(4_000));
        assert_eq!(retry_wait_ms(0, Some(60), 0.0), None);
        assert_eq!(retry_wait_ms(0, Some(u32::MAX), 0.0), None);
    }
}
