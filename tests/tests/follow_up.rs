//! Follow-up through the real Worker, queue and D1, with the local provider stand-in (the mail
//! sink `cargo xtask test` runs) receiving what a real provider would.

use leadglue_tests::{Answer, Worker, eventually, lead, now_ms, unique};
use serde_json::{Value, json};

const DAY: i64 = 24 * 3600 * 1000;

/// Posts a lead with its own address and the given answers; returns (lead id, address).
fn capture(worker: &Worker, site: &str, tag: &str, answers: Value) -> (String, String) {
    let email = format!("{}@example.com", unique(tag).replace('-', "."));
    (capture_as(worker, site, &email, answers), email)
}

/// Posts a new lead from `email` with the given answers; returns its id.
fn capture_as(worker: &Worker, site: &str, email: &str, answers: Value) -> String {
    let mut body = lead(site);
    body["email"] = json!(email);
    body["answers"] = answers;
    let answer = worker.post_lead(&body, None);
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.json()["id"].as_str().expect("an id").to_owned()
}

/// The path of the one-click link in a received email's `List-Unsubscribe` header.
fn unsubscribe_path(worker: &Worker, received: &Value) -> String {
    let list = received["email"]["headers"]["List-Unsubscribe"]
        .as_str()
        .expect("a List-Unsubscribe header");
    let link = &list[1..list.find('>').expect("a <link>")];
    link.strip_prefix(&worker.base)
        .expect("a link to this Worker")
        .to_owned()
}

/// What a mail client sends for RFC 8058 one-click: this body, no cookie, no login.
fn one_click(worker: &Worker, path: &str) -> Answer {
    worker.send(
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(b"List-Unsubscribe=One-Click"),
    )
}

fn warm() -> Value {
    json!({ "timeline": "3_months", "role": "influencer", "company_size": "11_50", "follow_up": "send_information" })
}

fn cold() -> Value {
    json!({ "timeline": "browsing", "role": "researcher", "company_size": "1_10", "follow_up": "send_information" })
}

fn mails(worker: &Worker, to: &str, count: usize) -> Vec<Value> {
    eventually(&format!("{count} email(s) to {to}"), 30, || {
        let got = worker.mail_to(to);
        (got.len() >= count).then_some(got)
    })
}

#[test]
fn the_immediate_email_arrives_within_seconds_with_unsubscribe_headers() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let (id, email) = capture(&worker, &site, "welcome", warm());

    let received = &mails(&worker, &email, 1)[0];
    let message = &received["email"];
    assert_eq!(
        message["subject"],
        "Thanks for getting in touch with Example Ltd"
    );
    assert_eq!(
        message["from"],
        "Northwind Analytics <hello@northwind.example>"
    );
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("Hello Ada,"), "{text}");
    assert!(text.contains("We'll answer that directly."));
    assert!(text.contains("Call us at +1 555 010 0199"));
    let unsubscribe = format!("{}/v1/unsubscribe/", worker.base);
    assert!(text.contains(&format!("Unsubscribe: {unsubscribe}")));
    let list = message["headers"]["List-Unsubscribe"].as_str().unwrap();
    // The one-click link alone: no mailto that nobody would read.
    assert!(list.starts_with(&format!("<{unsubscribe}")), "{list}");
    assert_eq!(list.matches('<').count(), 1, "{list}");
    assert_eq!(
        message["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        received["idempotency_key"],
        format!("{id}/1"),
        "the welcome is step 1"
    );
    assert!(
        received["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Bearer ")
    );

    // Warm: the sequence started, the welcome is sent, days 3 and 10 wait in the outbox.
    let steps = eventually("the welcome marked sent", 10, || {
        let steps = worker.follow_ups(&id);
        steps.get(1).is_some_and(|s| s.2 == "sent").then_some(steps)
    });
    let states: Vec<_> = steps.iter().map(|s| (s.1.as_str(), s.2.as_str())).collect();
    assert_eq!(
        states,
        [
            ("start_sequence", "sent"),
            ("welcome", "sent"),
            ("check_in", "scheduled"),
            ("resources", "scheduled")
        ]
    );
}

#[test]
fn a_whole_sequence_runs_without_waiting_days_and_nothing_is_sent_twice() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let (id, email) = capture(&worker, &site, "sequence", cold());
    mails(&worker, &email, 1);
    let start = now_ms();
    // Running as of day 1 sends nothing new; day 15 sends the second step; day 46 the last.
    worker.run_follow_ups(&site, start + DAY);
    worker.run_follow_ups(&site, start + 15 * DAY);
    let second = mails(&worker, &email, 2);
    assert_eq!(
        second[1]["email"]["subject"],
        "A few resources from Example Ltd"
    );
    worker.run_follow_ups(&site, start + 46 * DAY);
    let all = mails(&worker, &email, 3);
    assert_eq!(
        all[2]["email"]["subject"],
        "Our last note, from Example Ltd"
    );
    // Running again changes nothing.
    worker.run_follow_ups(&site, start + 50 * DAY);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(worker.mail_to(&email).len(), 3);
    let states: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.2).collect();
    assert_eq!(states, ["sent", "sent", "sent", "sent"]);
}

#[test]
fn a_failing_provider_is_retried_and_the_email_delivered_exactly_once() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    // The sink refuses this recipient's first two attempts with a 500.
    let (id, email) = capture(&worker, &site, "retry+fail2", warm());
    let first = eventually("the first attempt to fail", 20, || {
        let steps = worker.follow_ups(&id);
        (steps.len() > 1 && steps[1].3 == 1 && steps[1].2 == "scheduled").then_some(steps)
    });
    assert_eq!(first[1].2, "scheduled", "back in the outbox with a backoff");
    assert!(worker.mail_to(&email).is_empty());
    let start = now_ms();
    // Not yet due again at +30 s; due at +2 min (backoff 1 min), then at +5 min (2 min more).
    worker.run_follow_ups(&site, start + 30_000);
    worker.run_follow_ups(&site, start + 120_000);
    eventually("the second attempt's failure to be recorded", 20, || {
        let step = &worker.follow_ups(&id)[1];
        (step.3 == 2 && step.2 == "scheduled").then_some(())
    });
    worker.run_follow_ups(&site, start + 300_000);
    let delivered = mails(&worker, &email, 1);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["attempts_refused"], 2);
    let step = eventually("the step marked sent", 10, || {
        let steps = worker.follow_ups(&id);
        (steps[1].2 == "sent").then_some(steps[1].clone())
    });
    assert_eq!(step.3, 3, "three attempts in all");
    worker.run_follow_ups(&site, start + 600_000);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(worker.mail_to(&email).len(), 1);
}

#[test]
fn one_click_unsubscribe_stops_the_remaining_steps_but_a_get_does_not() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let (id, email) = capture(&worker, &site, "unsub", warm());
    let path = unsubscribe_path(&worker, &mails(&worker, &email, 1)[0]);

    // A mail scanner following the link only gets the confirmation page.
    let page = worker.get(&path, &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\""));
    page.assert_hardened_html();
    // Nor does a link checker's HEAD: it gets the page's headers.
    let checked = worker.send("HEAD", &path, &[], None);
    assert_eq!(checked.status, 200);
    assert!(checked.body.is_empty());
    checked.assert_hardened_html();
    assert_eq!(worker.follow_ups(&id)[2].2, "scheduled");

    let click = one_click(&worker, &path);
    assert_eq!(click.status, 200, "{}", click.body);
    assert!(click.body.contains("You are unsubscribed"));
    click.assert_hardened_html();
    let states: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.2).collect();
    assert_eq!(states, ["sent", "sent", "cancelled", "cancelled"]);
    assert!(worker.lead_column(&id, "unsubscribed_at").is_some());
    worker.run_follow_ups(&site, now_ms() + 30 * DAY);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(worker.mail_to(&email).len(), 1);
}

#[test]
fn a_form_sent_again_after_unsubscribing_is_a_new_lead_that_hears_back() {
    let worker = Worker::from_env();
    // Within the site's duplicate window, where a second form would update the first lead.
    let site = worker.new_site_with(&[], &json!({ "duplicate_window_hours": 24 }));
    let (first, email) = capture(&worker, &site, "changed.mind", warm());
    let welcome = &mails(&worker, &email, 1)[0];
    assert_eq!(
        one_click(&worker, &unsubscribe_path(&worker, welcome)).status,
        200
    );

    // The same day they ask again, consenting again: the form promises information.
    let mut body = lead(&site);
    body["email"] = json!(email);
    body["answers"] = warm();
    let again = worker.post_lead(&body, None);
    assert_eq!(again.status, 201, "a new lead: {}", again.body);
    let second = again.json()["id"].as_str().expect("an id").to_owned();
    assert_ne!(second, first);
    assert!(worker.lead_column(&second, "unsubscribed_at").is_none());
    let second_welcome = mails(&worker, &email, 2)
        .into_iter()
        .find(|m| m["idempotency_key"] == format!("{second}/1"));
    assert!(second_welcome.is_some(), "the new lead's welcome was sent");
}

#[test]
fn unsubscribing_stops_everything_the_site_sends_that_address_and_nothing_else() {
    let worker = Worker::from_env();
    // Each form a lead of its own, as two visits weeks apart are.
    let site = worker.new_site_with(&[], &json!({ "duplicate_window_hours": 0 }));
    let (first, email) = capture(&worker, &site, "twice", warm());
    let (local, domain) = email.split_once('@').unwrap();
    let shouted = format!("{}@{domain}", local.to_uppercase());
    let second = capture_as(&worker, &site, &shouted, warm());
    assert_ne!(first, second, "two leads");
    // The same address on another site is another relationship.
    let other = capture_as(&worker, &worker.new_site(&[]), &email, warm());

    // The link in the first lead's welcome, once all three welcomes are out (the second's to
    // the address as typed that time).
    mails(&worker, &shouted, 1);
    let welcome = mails(&worker, &email, 2)
        .into_iter()
        .find(|m| m["idempotency_key"] == format!("{first}/1"))
        .expect("the first lead's welcome");
    let click = one_click(&worker, &unsubscribe_path(&worker, &welcome));
    assert_eq!(click.status, 200, "{}", click.body);

    for id in [&first, &second] {
        assert!(worker.lead_column(id, "unsubscribed_at").is_some(), "{id}");
        assert!(
            worker
                .follow_ups(id)
                .iter()
                .all(|s| s.2 == "sent" || s.2 == "cancelled"),
            "{id}: {:?}",
            worker.follow_ups(id)
        );
    }
    assert!(worker.lead_column(&other, "unsubscribed_at").is_none());
    assert!(
        worker.follow_ups(&other).iter().any(|s| s.2 == "scheduled"),
        "the other site's sequence goes on"
    );
}

#[test]
fn forged_unsubscribe_tokens_are_refused() {
    let worker = Worker::from_env();
    for token in ["garbage", "bGVhZA.AAAA", ""] {
        let path = format!("/v1/unsubscribe/{token}");
        let shown = worker.get(&path, &[]);
        let clicked = one_click(&worker, &path);
        for answer in [shown, clicked] {
            assert_eq!(answer.status, 404, "{token}");
            // A person followed it: a page that says the link is damaged, not an API problem.
            assert!(
                answer.body.contains("This link does not work"),
                "{}",
                answer.body
            );
            answer.assert_hardened_html();
        }
    }
}

#[test]
fn a_retried_submission_schedules_its_follow_up_once() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let email = format!("{}@example.com", unique("replay").replace('-', "."));
    let mut body = lead(&site);
    body["email"] = json!(email);
    let first = worker.post_lead(&body, None).json();
    let again = worker.post_lead(&body, None).json();
    assert_eq!(first["id"], again["id"]);
    let id = first["id"].as_str().unwrap();
    mails(&worker, &email, 1);
    assert_eq!(
        worker.follow_ups(id).len(),
        4,
        "the start and the three warm steps"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(worker.mail_to(&email).len(), 1);
}

#[test]
fn running_follow_ups_needs_the_admin_token() {
    let worker = Worker::from_env();
    worker
        .send("POST", "/v1/admin/follow-ups/run", &[], None)
        .problem(401);
}

fn hot() -> Value {
    json!({ "timeline": "now", "role": "decision_maker", "company_size": "51_200", "follow_up": "book_demo" })
}

#[test]
fn every_footer_carries_the_postal_address() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[], &json!({ "postal_address": "1 Main St, Springfield" }));
    let (_, email) = capture(&worker, &site, "footer", warm());
    let message = &mails(&worker, &email, 1)[0]["email"];
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("Example Ltd, 1 Main St, Springfield")
    );
    assert!(
        message["html"]
            .as_str()
            .unwrap()
            .contains("Example Ltd, 1 Main St, Springfield")
    );
}

#[test]
fn sales_hear_about_hot_leads_at_once() {
    let worker = Worker::from_env();
    let sales = format!("{}@example.com", unique("sales").replace('-', "."));
    let site = worker.new_site_with(&[], &json!({ "sales_email": sales }));
    let (id, email) = capture(&worker, &site, "hot", hot());
    let alert = &mails(&worker, &sales, 1)[0]["email"];
    assert_eq!(alert["subject"], "Hot lead: Ada Lovelace (Example Ltd)");
    let text = alert["text"].as_str().unwrap();
    assert!(text.contains(&format!("Email: {email}")));
    assert!(text.contains("Grade: hot"));
    assert!(alert["headers"].get("List-Unsubscribe").is_none());
    // The lead gets the welcome; a warm lead of the same site alerts nobody.
    mails(&worker, &email, 1);
    let templates: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.1).collect();
    assert_eq!(templates, ["start_sequence", "welcome", "sales_alert"]);
    let (warm_id, _) = capture(&worker, &site, "warm", warm());
    assert!(
        worker
            .follow_ups(&warm_id)
            .iter()
            .all(|s| s.1 != "sales_alert")
    );

    // No sales inbox, no alert.
    let quiet = worker.new_site(&[]);
    let (quiet_id, _) = capture(&worker, &quiet, "hot", hot());
    assert!(
        worker
            .follow_ups(&quiet_id)
            .iter()
            .all(|s| s.1 != "sales_alert")
    );
}

#[test]
fn sales_hear_once_when_a_returning_lead_turns_hot() {
    let worker = Worker::from_env();
    let sales = format!("{}@example.com", unique("sales").replace('-', "."));
    let settings = json!({ "sales_email": sales, "duplicate_window_hours": 24 });
    let site = worker.new_site_with(&[], &settings);
    let (id, email) = capture(&worker, &site, "returning", warm());
    mails(&worker, &email, 1);
    assert!(
        worker.mail_to(&sales).is_empty(),
        "a warm lead alerts nobody"
    );

    // The same person sends the form again (within the site's duplicate window), ready now:
    // the lead is updated, not doubled, and sales hear of it at once.
    let again = |answers: Value| {
        let mut body = lead(&site);
        body["email"] = json!(email);
        body["answers"] = answers;
        let answer = worker.post_lead(&body, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["id"], id.as_str(), "the first lead, updated");
        assert_eq!(answer.json()["grade"], "hot");
    };
    again(hot());
    let alert = &mails(&worker, &sales, 1)[0]["email"];
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Email: {email}"))
    );
    assert!(alert["text"].as_str().unwrap().contains("Grade: hot"));

    // Once: hot again, and nobody is told twice; the person gets no second welcome either.
    again(hot());
    let alerts = |lead: &str| {
        let steps = worker.follow_ups(lead);
        steps.iter().filter(|s| s.1 == "sales_alert").count()
    };
    assert_eq!(alerts(&id), 1);
    eventually("the alert marked sent", 10, || {
        let steps = worker.follow_ups(&id);
        steps
            .iter()
            .any(|s| s.1 == "sales_alert" && s.2 == "sent")
            .then_some(())
    });
    assert_eq!(worker.mail_to(&sales).len(), 1);
    assert_eq!(worker.mail_to(&email).len(), 1, "one welcome");
}

#[test]
fn sending_the_form_again_resends_a_lost_confirmation_but_not_too_often() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(
        &[],
        &json!({ "double_opt_in": true, "duplicate_window_hours": 24 }),
    );
    let (id, email) = capture(&worker, &site, "lost.confirmation", warm());
    mails(&worker, &email, 1);
    let start = now_ms();
    // The confirmation step: (state, times armed again, due).
    let step = || -> (String, i64, i64) {
        worker
            .d1()
            .query_row(
                "SELECT state, resent, due_at FROM follow_ups WHERE id = ?1",
                [format!("{id}/0")],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("the confirmation step")
    };
    let sent = || {
        eventually("the confirmation marked sent", 20, || {
            (step().0 == "sent").then_some(())
        })
    };
    let again = || {
        let mut body = lead(&site);
        body["email"] = json!(email);
        body["answers"] = warm();
        let answer = worker.post_lead(&body, None);
        assert_eq!(answer.status, 200, "the same lead: {}", answer.body);
        assert_eq!(answer.json()["id"], id.as_str());
    };
    let settle = || std::thread::sleep(std::time::Duration::from_secs(2));

    // Sent again at once: it goes again, but only ten minutes after the first; a second form
    // meanwhile changes nothing.
    sent();
    again();
    again();
    let (state, resent, due) = step();
    assert_eq!((state.as_str(), resent), ("scheduled", 1));
    assert!(
        due >= start + 9 * 60_000,
        "not before ten minutes: {}",
        due - start
    );
    settle();
    assert_eq!(worker.mail_to(&email).len(), 1);
    worker.run_follow_ups(&site, start + 11 * 60_000);
    let got = mails(&worker, &email, 2);
    assert_eq!(
        got[1]["email"]["subject"],
        "Please confirm your email for Example Ltd"
    );
    assert_eq!(
        got[1]["idempotency_key"],
        format!("{id}/0#1"),
        "its own key"
    );

    // Once more, later: a third confirmation.
    sent();
    again();
    worker.run_follow_ups(&site, start + 30 * 60_000);
    let got = mails(&worker, &email, 3);
    assert_eq!(got[2]["idempotency_key"], format!("{id}/0#2"));

    // Then the limit: a form cannot fill a stranger's inbox.
    sent();
    again();
    assert_eq!(step().0, "sent");
    worker.run_follow_ups(&site, start + 60 * 60_000);
    settle();
    assert_eq!(worker.mail_to(&email).len(), 3);
    let steps: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.1).collect();
    assert_eq!(
        steps,
        ["confirm"],
        "nothing but the confirmation before confirming"
    );
}

#[test]
fn double_opt_in_sends_only_the_confirmation_until_the_person_confirms() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[], &json!({ "double_opt_in": true }));
    let (id, email) = capture(&worker, &site, "optin", warm());
    let first = &mails(&worker, &email, 1)[0]["email"];
    assert_eq!(
        first["subject"],
        "Please confirm your email for Example Ltd"
    );
    let steps: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.1).collect();
    assert_eq!(steps, ["confirm"]);
    let text = first["text"].as_str().unwrap();
    let start = text
        .find(&format!("{}/v1/confirm/", worker.base))
        .expect("a confirm link");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let path = link.strip_prefix(&worker.base).unwrap().to_owned();

    // Following the link only shows the button.
    let page = worker.get(&path, &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Confirm"));
    page.assert_hardened_html();
    assert_eq!(worker.follow_ups(&id).len(), 1);

    let confirmed = worker.send("POST", &path, &[], None);
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    confirmed.assert_hardened_html();
    let welcome = mails(&worker, &email, 2);
    assert_eq!(
        welcome[1]["email"]["subject"],
        "Thanks for getting in touch with Example Ltd"
    );
    let steps: Vec<_> = worker
        .follow_ups(&id)
        .into_iter()
        .map(|s| (s.0, s.1))
        .collect();
    assert_eq!(
        steps,
        [
            (0, "confirm".to_owned()),
            (20, "start_sequence".to_owned()),
            (21, "welcome".to_owned()),
            (22, "check_in".to_owned()),
            (23, "resources".to_owned())
        ]
    );
    // Confirming again starts nothing again.
    assert_eq!(worker.send("POST", &path, &[], None).status, 200);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(worker.mail_to(&email).len(), 2);
    assert!(worker.lead_column(&id, "confirmed_at").is_some());
}

#[test]
fn a_marketer_previews_each_template_with_the_sites_own_details() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(
        &[],
        &json!({
            "postal_address": "1 Main St, Springfield",
            "logo_url": "https://example.com/logo.png",
            "brand_color": "#0F766E"
        }),
    );
    let bearer = format!("Bearer {}", worker.admin_token());
    let auth = [("authorization", bearer.as_str())];
    for template in ["welcome", "check_in", "resources", "last_note", "confirm"] {
        let path = format!("/v1/admin/sites/{site}/templates/{template}");
        let preview = worker.get(&path, &auth);
        assert_eq!(preview.status, 200, "{template}: {}", preview.body);
        let rendered = preview.json();
        assert!(
            rendered["subject"]
                .as_str()
                .unwrap()
                .contains("Example Ltd"),
            "{template}"
        );
        let html = rendered["html"].as_str().unwrap();
        assert!(
            html.contains("<a href=\"tel:+15550100199\">+1 555 010 0199</a>"),
            "{template}"
        );
        assert!(
            html.contains("Example Ltd, 1 Main St, Springfield"),
            "{template}"
        );
        assert!(rendered["text"].as_str().unwrap().contains("Unsubscribe: "));
        assert!(
            html.contains("<img src=\"https://example.com/logo.png\""),
            "{template}"
        );
        assert!(html.contains("a{color:#0f766e}"), "{template}");
    }
    let alert = worker.get(
        &format!("/v1/admin/sites/{site}/templates/sales_alert"),
        &auth,
    );
    assert!(
        alert.json()["text"]
            .as_str()
            .unwrap()
            .contains("Grade: hot")
    );
    // Neither a made-up template nor the dispatcher's internal marker is a message.
    for template in ["nope", "start_sequence"] {
        worker
            .get(
                &format!("/v1/admin/sites/{site}/templates/{template}"),
                &auth,
            )
            .problem(404);
    }
    worker
        .get(&format!("/v1/admin/sites/{site}/templates/welcome"), &[])
        .problem(401);
    worker
        .get(
            &format!("/v1/admin/sites/{}/templates/welcome", unique("nosite")),
            &auth,
        )
        .problem(404);
}

#[test]
fn a_sites_own_sequence_runs_its_steps_including_a_signed_webhook() {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let worker = Worker::from_env();
    let site = worker.new_site_with(
        &[],
        &json!({
            "webhook_url": std::env::var("LEADGLUE_WEBHOOK_URL").expect("LEADGLUE_WEBHOOK_URL"),
            "sequences": { "warm": [
                { "delay_days": 0, "template": "welcome" },
                { "delay_days": 2, "template": "check_in", "channel": "webhook" }
            ] }
        }),
    );
    let (id, email) = capture(&worker, &site, "own", warm());
    mails(&worker, &email, 1);
    let steps: Vec<_> = worker.follow_ups(&id).into_iter().map(|s| s.1).collect();
    assert_eq!(steps, ["start_sequence", "welcome", "check_in"]);

    worker.run_follow_ups(&site, now_ms() + 3 * DAY);
    let hook = eventually("the webhook", 30, || {
        worker.webhooks_for(&email).into_iter().next()
    });
    let body = hook["body"].as_str().unwrap();
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["type"], "follow_up.step");
    assert_eq!(payload["data"]["step"], "check_in");
    assert_eq!(payload["data"]["lead"]["grade"], "warm");

    // Verified here with the HMAC and base64 crates directly, not the Worker's own code:
    // v1,base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")).
    let headers = &hook["headers"];
    let secret = std::env::var("LEADGLUE_WEBHOOK_SECRET").unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.{body}",
        headers["webhook-id"].as_str().unwrap(),
        headers["webhook-timestamp"].as_str().unwrap()
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    assert_eq!(
        headers["webhook-signature"].as_str(),
        Some(expected.as_str())
    );
    assert_eq!(
        headers["webhook-id"].as_str(),
        Some(format!("{id}/2").as_str())
    );
    // Signed as of now, though run as of three days ahead: receivers reject a timestamp more
    // than a few minutes from their clock.
    let signed_at: i64 = headers["webhook-timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (signed_at - now_ms() / 1000).abs() < 300,
        "webhook-timestamp {signed_at} is not the real time"
    );
    assert_eq!(payload["timestamp"], signed_at);
}

#[test]
fn a_hot_lead_is_announced_as_a_lead_hot_webhook_event() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(
        &[],
        &json!({ "webhook_url": std::env::var("LEADGLUE_WEBHOOK_URL").expect("the sink") }),
    );
    let (id, email) = capture(&worker, &site, "hotevent", hot());
    let hook = eventually("the lead.hot event", 30, || {
        worker.webhooks_for(&email).into_iter().next()
    });
    let payload: Value = serde_json::from_str(hook["body"].as_str().unwrap()).unwrap();
    assert_eq!(payload["type"], "lead.hot");
    assert_eq!(payload["data"]["lead"]["id"], id.as_str());
    assert_eq!(payload["data"]["lead"]["grade"], "hot");
    assert!(
        hook["headers"]["webhook-signature"]
            .as_str()
            .unwrap()
            .starts_with("v1,")
    );
    // A warm lead of the same site announces nothing.
    let (warm_id, _) = capture(&worker, &site, "warmevent", warm());
    assert!(
        worker
            .follow_ups(&warm_id)
            .iter()
            .all(|s| s.1 != "sales_alert")
    );
}

#[test]
fn a_provider_that_times_out_is_retried_without_sending_twice() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    // The stand-in keeps this recipient's first message but answers 12 s late, after the
    // Worker's 10 s limit: the answer is lost, the email was sent.
    let (id, email) = capture(&worker, &site, "timeout+slow12", warm());
    eventually("the attempt to time out", 40, || {
        let steps = worker.follow_ups(&id);
        (steps.len() > 1 && steps[1].2 == "scheduled" && steps[1].3 == 1).then_some(())
    });
    let error = worker
        .d1()
        .query_row(
            "SELECT last_error FROM follow_ups WHERE id = ?1",
            [format!("{id}/1")],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert!(error.contains("did not answer within 10 s"), "{error}");
    // The retry carries the same idempotency key: the provider recognises the message.
    worker.run_follow_ups(&site, now_ms() + 120_000);
    eventually("the step marked sent", 30, || {
        (worker.follow_ups(&id)[1].2 == "sent").then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(worker.mail_to(&email).len(), 1);
}

#[test]
fn the_welcome_links_what_the_form_offers() {
    let worker = Worker::from_env();
    let site = worker.new_site(&[]);
    let form = json!({
        "title": "Get the guide",
        "questions": [],
        "thresholds": { "hot": 100, "warm": 50 },
        "resource": { "label": "our buyer's guide", "url": "https://example.com/guide.pdf" }
    });
    assert_eq!(worker.put_form(&site, "guide", &form).status, 200);
    let email = format!("{}@example.com", unique("guide").replace('-', "."));
    let mut body = lead(&site);
    body["email"] = json!(email);
    body["form_id"] = json!("guide");
    body["answers"] = json!({});
    assert_eq!(worker.post_lead(&body, None).status, 201);
    let message = &mails(&worker, &email, 1)[0]["email"];
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("Here is our buyer's guide: https://example.com/guide.pdf")
    );
    assert!(
        message["html"]
            .as_str()
            .unwrap()
            .contains("<a href=\"https://example.com/guide.pdf\">our buyer&#x27;s guide</a>")
    );
}

#[test]
fn a_german_site_writes_to_its_leads_in_german() {
    let worker = Worker::from_env();
    let site = worker.new_site_with(&[], &json!({ "locale": "de" }));
    let (_, email) = capture(&worker, &site, "deutsch", warm());
    let message = &mails(&worker, &email, 1)[0]["email"];
    assert_eq!(message["subject"], "Danke für Ihre Anfrage bei Example Ltd");
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("Hallo Ada,"), "{text}");
    assert!(
        text.contains("Rufen Sie uns an unter +1 555 010 0199"),
        "{text}"
    );
    assert!(message["html"].as_str().unwrap().contains(">Abmelden</a>"));
    // The preview shows marketers the same language.
    let preview = worker.call(
        "GET",
        &format!("/v1/admin/sites/{site}/templates/check_in"),
        Some(worker.admin_token()),
        None,
    );
    assert_eq!(
        preview.json()["subject"],
        "Hat es geholfen? Eine kurze Nachricht von Example Ltd"
    );
    // An unknown language is refused by name.
    let mut definition = leadglue_tests::site_definition(&[]);
    definition["locale"] = json!("tlh");
    let problem = worker
        .put_site(&site, &definition, Some(worker.admin_token()))
        .problem(422);
    assert_eq!(problem.errors[0].field, "locale");
}
