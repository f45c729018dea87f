//! The other email providers, each through its own Worker: Postmark's HTTP API (answered by the
//! local stand-in) and Cloudflare's send_email binding, whose MIME messages are parsed here with
//! a standard MIME parser.

use leadglue_tests::{Worker, eml_to, eventually, lead, unique};
use mail_parser::MessageParser;
use serde_json::json;

fn address(tag: &str) -> String {
    format!("{}@example.com", unique(tag).replace('-', "."))
}

#[test]
fn postmark_receives_the_welcome_in_its_own_format() {
    let worker = Worker::other("LEADGLUE_POSTMARK_URL");
    let site = worker.new_site(&[]);
    let email = address("postmark");
    let mut body = lead(&site);
    body["email"] = json!(email);
    assert_eq!(worker.post_lead(&body, None).status, 201);
    let received = eventually("the Postmark email", 30, || {
        worker.mail_to(&email).into_iter().next()
    });
    assert_eq!(received["provider"], "postmark");
    let original = &received["email"]["postmark"];
    assert_eq!(
        original["Subject"],
        "Thanks for getting in touch with Example Ltd"
    );
    assert_eq!(original["MessageStream"], "outbound");
    let headers = original["Headers"].as_array().unwrap();
    assert!(headers.iter().any(
        |h| h["Name"] == "List-Unsubscribe-Post" && h["Value"] == "List-Unsubscribe=One-Click"
    ));
    assert!(
        !received["authorization"].as_str().unwrap().is_empty(),
        "server token sent"
    );
}

#[test]
fn send_email_gets_a_well_formed_mime_message_that_lead_data_cannot_break() {
    let worker = Worker::other("LEADGLUE_CLOUDFLARE_URL");
    let site = worker.new_site_with(&[], &json!({ "postal_address": "1 Main St, Springfield" }));
    let email = address("mime");
    let mut body = lead(&site);
    body["email"] = json!(email);
    body["name"] = json!("Ada <b>Lovelace</b>");
    // (No address or link in it: the welcome would not quote those back at all.)
    body["message"] = json!("<script>alert(1)</script>\r\nBcc: victim\r\n\r\nHi");
    assert_eq!(worker.post_lead(&body, None).status, 201, "lead accepted");

    let raw = eventually("the .eml file", 30, || eml_to(&email).into_iter().next());
    let message = MessageParser::default()
        .parse(&raw)
        .expect("a MIME message");
    assert_eq!(
        message.subject(),
        Some("Thanks for getting in touch with Example Ltd")
    );
    let from = message.from().and_then(|a| a.first()).expect("a From");
    assert_eq!(from.address(), Some("hello@northwind.example"));
    assert_eq!(from.name(), Some("Northwind Analytics"));
    assert!(
        message
            .message_id()
            .is_some_and(|id| id.ends_with("@northwind.example"))
    );
    assert!(message.date().is_some());
    assert!(
        message.bcc().is_none(),
        "no header injected from the lead's message"
    );
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let list = header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        list.starts_with(&format!("<{}/v1/unsubscribe/", worker.base)),
        "{list}"
    );
    assert_eq!(
        header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    let text = message.body_text(0).expect("a text part");
    assert!(text.starts_with("Hello Ada,"));
    assert!(text.contains("Example Ltd, 1 Main St, Springfield"));
    let html = message.body_html(0).expect("an HTML part");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "{html}"
    );
}
