//! The lead form: fields, validation feedback, sending, and the thank-you state.

use leadglue_shared::{Consent, FieldError, LeadSubmission, SiteConfig, validate};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, SendError};

const CSS: &str = include_str!("style.css");

/// Fields the visitor sees, in form order: the first with an error gets focus.
const VISIBLE_FIELDS: [&str; 5] = ["name", "email", "company", "message", "consent"];

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Editing,
    Sending,
    Sent,
    /// Sending failed; the message says why and the visitor may retry.
    Failed(String),
}

#[component]
pub fn LeadForm(site_id: String, api_base: String) -> impl IntoView {
    let site_id = StoredValue::new(site_id);
    let api_base = StoredValue::new(api_base);

    let config = RwSignal::new(None::<Result<SiteConfig, SendError>>);
    spawn_local(async move {
        let loaded = api::site_config(&api_base.get_value(), &site_id.get_value()).await;
        config.set(Some(loaded));
    });

    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let company = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let consent = RwSignal::new(false);
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let stage = RwSignal::new(Stage::Editing);
    let announcement = RwSignal::new(String::new());
    // One key per submission, reused by every retry of it, so a retry never makes a second lead.
    let key = StoredValue::new(idempotency_key());

    let name_ref = NodeRef::<html::Input>::new();
    let email_ref = NodeRef::<html::Input>::new();
    let company_ref = NodeRef::<html::Input>::new();
    let message_ref = NodeRef::<html::Textarea>::new();
    let consent_ref = NodeRef::<html::Input>::new();
    let thanks_ref = NodeRef::<html::H2>::new();

    let error_for = move |field: &'static str| {
        Signal::derive(move || {
            errors.with(|all| {
                all.iter()
                    .find(|e| e.field == field)
                    .map(|e| e.message.clone())
            })
        })
    };
    // Errors about fields the visitor cannot see (a misconfigured embed) go above the button.
    let general_errors = move || {
        errors.with(|all| {
            all.iter()
                .filter(|e| !VISIBLE_FIELDS.contains(&e.field.as_str()))
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
    };

    let show_errors = move |list: Vec<FieldError>| {
        let count = list.len();
        let first = VISIBLE_FIELDS
            .into_iter()
            .find(|f| list.iter().any(|e| e.field == *f));
        errors.set(list);
        announcement.set(if count == 1 {
            "One field needs attention.".to_owned()
        } else {
            format!("{count} fields need attention.")
        });
        let focused = match first {
            Some("name") => name_ref.get().map(|el| el.focus()),
            Some("email") => email_ref.get().map(|el| el.focus()),
            Some("company") => company_ref.get().map(|el| el.focus()),
            Some("message") => message_ref.get().map(|el| el.focus()),
            Some("consent") => consent_ref.get().map(|el| el.focus()),
            _ => None,
        };
        drop(focused);
    };

    let send = move || {
        if stage.get_untracked() == Stage::Sending {
            return;
        }
        let Some(Ok(site)) = config.get_untracked() else {
            return;
        };
        let submission = LeadSubmission {
            site_id: site.id,
            email: email.get_untracked(),
            name: name.get_untracked(),
            company: Some(company.get_untracked()),
            phone: None,
            message: Some(message.get_untracked()),
            consent: Consent {
                given: consent.get_untracked(),
                text_version: site.consent_version,
            },
            page_url: window().location().href().ok(),
            idempotency_key: key.get_value(),
        };
        let lead = match validate(&submission) {
            Ok(lead) => lead.get().clone(),
            Err(list) => return show_errors(list),
        };
        errors.set(Vec::new());
        stage.set(Stage::Sending);
        announcement.set("Sending your request…".to_owned());
        spawn_local(async move {
            match api::submit(&api_base.get_value(), &lead).await {
                Ok(()) => {
                    stage.set(Stage::Sent);
                    announcement.set("Thank you! Your request has been sent.".to_owned());
                    // Let the thank-you heading render, then move focus to it.
                    request_animation_frame(move || {
                        if let Some(h) = thanks_ref.get() {
                            let _ = h.focus();
                        }
                    });
                }
                Err(SendError::Invalid(problem)) => {
                    stage.set(Stage::Editing);
                    show_errors(problem.errors);
                }
                Err(SendError::Refused(problem)) => {
                    announcement.set(problem.title.clone());
                    stage.set(Stage::Failed(problem.title));
                }
                Err(SendError::Unreachable) => {
                    let text = "We could not send your request. Please check your connection \
                                and try again.";
                    announcement.set(text.to_owned());
                    stage.set(Stage::Failed(text.to_owned()));
                }
            }
        });
    };

    let site = move || config.get().and_then(Result::ok);
    let consent_text = move || match config.get() {
        None => "Loading…".to_owned(),
        Some(Ok(site)) => site.consent_text,
        Some(Err(_)) => String::new(),
    };
    let unavailable = move || match config.get() {
        Some(Err(SendError::Refused(problem))) => Some(problem.title),
        Some(Err(_)) => {
            Some("This form cannot be loaded right now. Please try again later.".into())
        }
        _ => None,
    };
    let busy = move || stage.get() == Stage::Sending;

    let form = move || {
        view! {
            <form novalidate on:submit=move |ev| {
                ev.prevent_default();
                send();
            }>
                <h2>"Ask us anything"</h2>
                <p>"Tell us what you need and we'll get back to you."</p>
                <TextField id="name" label="Name" kind="text" autocomplete="name" required=true
                    value=name error=error_for("name") node_ref=name_ref />
                <TextField id="email" label="Email" kind="email" autocomplete="email" required=true
                    value=email error=error_for("email") node_ref=email_ref />
                <TextField id="company" label="Company" kind="text" autocomplete="organization"
                    required=false value=company error=error_for("company") node_ref=company_ref />
                <div class="field">
                    <label for="lg-message">"How can we help? "<span class="opt">"(optional)"</span></label>
                    <textarea id="lg-message" name="message" data-testid="message"
                        node_ref=message_ref
                        prop:value=message
                        on:input=move |ev| message.set(event_target_value(&ev))
                        aria-invalid=move || error_for("message").get().is_some().to_string()
                        aria-describedby=move || error_for("message").get().map(|_| "lg-message-error")
                    ></textarea>
                    <p class="error" id="lg-message-error">{move || error_for("message").get()}</p>
                </div>
                <div class="field">
                    <label class="consent">
                        <input type="checkbox" id="lg-consent" name="consent" data-testid="consent"
                            required node_ref=consent_ref
                            prop:checked=consent
                            on:change=move |ev| consent.set(event_target_checked(&ev))
                            aria-invalid=move || error_for("consent").get().is_some().to_string()
                            aria-describedby=move || error_for("consent").get().map(|_| "lg-consent-error")
                        />
                        <span data-testid="consent-text">{consent_text}</span>
                    </label>
                    <p class="error" id="lg-consent-error">{move || error_for("consent").get()}</p>
                </div>
                <p class="error" data-testid="general-error">{general_errors}</p>
                {move || match stage.get() {
                    Stage::Failed(reason) => view! {
                        <div class="alert" data-testid="send-error">
                            {reason}
                            <button type="submit" data-testid="retry">"Try again"</button>
                        </div>
                    }.into_any(),
                    _ => view! {
                        <button type="submit" data-testid="submit" aria-disabled=move || busy().to_string()>
                            {move || if busy() { "Sending…" } else { "Send" }}
                        </button>
                    }.into_any(),
                }}
            </form>
        }
    };

    let thanks = move || {
        let first_name = name
            .get_untracked()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let phone = site().and_then(|s| s.phone);
        view! {
            <div data-testid="thank-you">
                <h2 tabindex="-1" node_ref=thanks_ref>{format!("Thank you, {first_name}!")}</h2>
                <p>{format!("We have your request and will reply to {} soon.", email.get_untracked())}</p>
                {phone.map(|phone| {
                    let href = format!("tel:{}", phone.replace(' ', ""));
                    view! { <p>"Questions in the meantime? Call us at "<a href=href>{phone}</a>"."</p> }
                })}
            </div>
        }
    };

    view! {
        <style>{CSS}</style>
        <div class="lg" data-testid="leadglue">
            <p class="sr-only" role="status" aria-live="polite" data-testid="announcer">
                {move || announcement.get()}
            </p>
            {move || match unavailable() {
                Some(reason) => view! { <p class="alert" data-testid="unavailable">{reason}</p> }.into_any(),
                None => view! {
                    <Show when=move || stage.get() == Stage::Sent fallback=form>{thanks}</Show>
                }.into_any(),
            }}
        </div>
    }
}

/// A labelled single-line input with its error message wired up for assistive technology.
#[component]
fn TextField(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    required: bool,
    value: RwSignal<String>,
    error: Signal<Option<String>>,
    node_ref: NodeRef<html::Input>,
) -> impl IntoView {
    let input_id = format!("lg-{id}");
    let error_id = format!("lg-{id}-error");
    let described_by = error_id.clone();
    view! {
        <div class="field">
            <label for=input_id.clone()>
                {label}
                {(!required).then(|| view! { " "<span class="opt">"(optional)"</span> })}
            </label>
            <input id=input_id name=id type=kind autocomplete=autocomplete required=required
                data-testid=id
                node_ref=node_ref
                prop:value=value
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=move || error.get().map(|_| described_by.clone())
            />
            <p class="error" id=error_id>{move || error.get()}</p>
        </div>
    }
}

/// 128 random bits as hex. `crypto.getRandomValues` works on plain-http pages too, where
/// `crypto.randomUUID` does not exist.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    let filled = window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).map(drop));
    if filled.is_err() {
        // Never reached in a browser that runs wasm; still, two visitors must not share a key.
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
