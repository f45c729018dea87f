//! The thank-you, adapted to what the edge decided comes next. Every version invites the
//! visitor to call with questions, when the site has a phone number.

use leadglue_shared::{NextStep, SiteConfig};
use leptos::either::EitherOf3;
use leptos::html;
use leptos::prelude::*;

#[component]
pub fn ThankYou(
    site: SiteConfig,
    first_name: String,
    email: String,
    next_step: NextStep,
    heading: NodeRef<html::H2>,
) -> impl IntoView {
    let phone = site.phone.clone().map(|phone| {
        let href = format!("tel:{}", phone.replace([' ', '(', ')', '-', '.'], ""));
        view! { <a href=href data-testid="call">{phone}</a> }
    });
    let greeting = if first_name.is_empty() {
        "Thank you!".to_owned()
    } else {
        format!("Thank you, {first_name}!")
    };
    // Built once (the thank-you is never re-rendered): an enum of the three, not `into_any`, whose
    // type erasure keeps code to rebuild each in place.
    let body = match next_step {
        NextStep::CallNow => EitherOf3::A(view! {
            <p>"We're happy to help right away."</p>
            {phone.map(|phone| view! {
                <p class="call-now">"Call us now at "{phone}" and we'll pick up where you left off."</p>
            })}
            {site.booking_url.map(|url| view! {
                <p><a href=url target="_blank" rel="noopener" data-testid="book">"Or book a time that suits you"</a></p>
            })}
            <p>{format!("We'll also write to you at {email}.")}</p>
        }),
        NextStep::ExpectEmail => EitherOf3::B(view! {
            <p>{format!(
                "We'll send the information you asked for to {email}, and check in with you in \
                 a few days to see if it helped."
            )}</p>
            {phone.map(|phone| view! { <p>"Questions before then? Call us at "{phone}"."</p> })}
        }),
        NextStep::Browse => EitherOf3::C(view! {
            <p>{format!(
                "We'll send a short, useful note to {email}: no pressure, and you can unsubscribe \
                 with one click."
            )}</p>
            {phone.map(|phone| view! { <p>"If you ever have a question, call us at "{phone}"."</p> })}
        }),
    };
    let step = match next_step {
        NextStep::CallNow => "call_now",
        NextStep::ExpectEmail => "expect_email",
        NextStep::Browse => "browse",
    };
    let confirm = site.double_opt_in.then(|| {
        view! {
            <p data-testid="confirm-note">{format!(
                "One more step: we've emailed {email} a link to confirm your address. \
                 Nothing more is sent until you click it."
            )}</p>
        }
    });
    view! {
        <div data-testid="thank-you" data-next-step=step>
            <h2 tabindex="-1" node_ref=heading>{greeting}</h2>
            {confirm}
            {body}
        </div>
    }
}
