//! The words of the follow-up emails, per language. Each language is one [`Copy`] table with
//! named placeholders (`{site}`, `{name}`, …); [`fill`] substitutes them in one pass, so a value
//! that happens to contain `{site}` is never substituted again. Adding a language is adding a
//! table and a [`Locale`] variant; a test checks every table uses the same placeholders.

use serde::{Deserialize, Serialize};

/// A site's language for the emails it sends (its `locale` setting; English by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Locale {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "de")]
    De,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::De];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == value)
    }

    pub fn copy(self) -> &'static Copy {
        match self {
            Locale::En => &EN,
            Locale::De => &DE,
        }
    }
}

/// Every sentence an email may contain.
#[derive(Debug)]
pub struct Copy {
    pub greeting: &'static str,
    pub greeting_anonymous: &'static str,
    pub welcome_subject: &'static str,
    pub welcome_thanks: &'static str,
    pub welcome_asked: &'static str,
    pub welcome_soon: &'static str,
    pub check_in_subject: &'static str,
    pub check_in: [&'static str; 2],
    pub resources_subject: &'static str,
    pub resources: &'static str,
    pub last_note_subject: &'static str,
    pub last_note: [&'static str; 2],
    pub confirm_subject: &'static str,
    pub confirm: [&'static str; 2],
    /// `{resource}` is the label and address (text) or a link (HTML).
    pub resource_text: &'static str,
    pub resource_html: &'static str,
    /// `{phone}` is the number (text) or a `tel:` link (HTML).
    pub call_us: &'static str,
    pub booking_text: &'static str,
    /// `{link}` is a link whose text is `booking_label`.
    pub booking_html: &'static str,
    pub booking_label: &'static str,
    pub sign_off: &'static str,
    pub why: &'static str,
    pub unsubscribe: &'static str,
    pub alert_subject: &'static str,
    pub alert_intro: &'static str,
    pub alert_name: &'static str,
    pub alert_email: &'static str,
    pub alert_company: &'static str,
    pub alert_phone: &'static str,
    pub alert_grade: &'static str,
    pub alert_message: &'static str,
    pub alert_id: &'static str,
    pub alert_call: &'static str,
}

pub static EN: Copy = Copy {
    greeting: "Hello {name},",
    greeting_anonymous: "Hello,",
    welcome_subject: "Thanks for getting in touch with {site}",
    welcome_thanks: "Thank you for your interest in {site}. We have your request and a real person will read it.",
    welcome_asked: "You asked: \u{201c}{message}\u{201d}. We'll answer that directly.",
    welcome_soon: "We'll send you what you asked for shortly.",
    check_in_subject: "Did that help? A quick note from {site}",
    check_in: [
        "A few days ago you asked us for information. We hope it was useful.",
        "If anything was unclear, reply to this email and we'll explain.",
    ],
    resources_subject: "A few resources from {site}",
    resources: "Here are the guides our customers find most useful when they are weighing their options. No strings attached.",
    last_note_subject: "Our last note, from {site}",
    last_note: [
        "This is the last email in this series: we won't keep writing unless you ask us to.",
        "If your plans change, we're here.",
    ],
    confirm_subject: "Please confirm your email for {site}",
    confirm: [
        "Thanks for your interest in {site}. Please confirm this is your address, and we'll send what you asked for: {url}",
        "If you did not ask us anything, ignore this email and you won't hear from us.",
    ],
    resource_text: "Here is {resource}",
    resource_html: "Here is {resource}.",
    call_us: "Questions, or ready to talk? Call us at {phone}: we're happy to help.",
    booking_text: "Or book a time that suits you: {url}",
    booking_html: "Or {link}.",
    booking_label: "book a time that suits you",
    sign_off: "The {site} team",
    why: "You are receiving this because you asked {site} for information.",
    unsubscribe: "Unsubscribe",
    alert_subject: "Hot lead: {name} ({site})",
    alert_intro: "A hot lead just arrived on {site}.",
    alert_name: "Name: {value}",
    alert_email: "Email: {value}",
    alert_company: "Company: {value}",
    alert_phone: "Phone: {value}",
    alert_grade: "Grade: {grade} (score {score})",
    alert_message: "Message: {value}",
    alert_id: "Lead id: {value}",
    alert_call: "They were invited to call you now: a quick call back is welcome.",
};

pub static DE: Copy = Copy {
    greeting: "Hallo {name},",
    greeting_anonymous: "Hallo,",
    welcome_subject: "Danke für Ihre Anfrage bei {site}",
    welcome_thanks: "Vielen Dank für Ihr Interesse an {site}. Ihre Anfrage ist bei uns angekommen, und ein Mensch wird sie lesen.",
    welcome_asked: "Sie haben gefragt: \u{201e}{message}\u{201c}. Darauf antworten wir Ihnen direkt.",
    welcome_soon: "Wir schicken Ihnen in Kürze, worum Sie gebeten haben.",
    check_in_subject: "Hat es geholfen? Eine kurze Nachricht von {site}",
    check_in: [
        "Vor ein paar Tagen haben Sie uns um Informationen gebeten. Wir hoffen, sie waren nützlich.",
        "Wenn etwas unklar geblieben ist, antworten Sie einfach auf diese E-Mail, und wir erklären es.",
    ],
    resources_subject: "Ein paar hilfreiche Unterlagen von {site}",
    resources: "Hier sind die Leitfäden, die unseren Kundinnen und Kunden bei der Entscheidung am meisten helfen. Ganz unverbindlich.",
    last_note_subject: "Unsere letzte Nachricht, von {site}",
    last_note: [
        "Dies ist die letzte E-Mail dieser Reihe: Wir schreiben Ihnen nur wieder, wenn Sie es möchten.",
        "Wenn sich Ihre Pläne ändern, sind wir für Sie da.",
    ],
    confirm_subject: "Bitte bestätigen Sie Ihre E-Mail-Adresse für {site}",
    confirm: [
        "Danke für Ihr Interesse an {site}. Bitte bestätigen Sie, dass dies Ihre Adresse ist, dann schicken wir Ihnen, worum Sie gebeten haben: {url}",
        "Wenn Sie uns nichts gefragt haben, ignorieren Sie diese E-Mail; Sie hören dann nicht mehr von uns.",
    ],
    resource_text: "Hier ist {resource}",
    resource_html: "Hier ist {resource}.",
    call_us: "Fragen, oder möchten Sie direkt sprechen? Rufen Sie uns an unter {phone}: Wir helfen gern.",
    booking_text: "Oder vereinbaren Sie einen Termin, der Ihnen passt: {url}",
    booking_html: "Oder {link}.",
    booking_label: "vereinbaren Sie einen Termin, der Ihnen passt",
    sign_off: "Ihr Team von {site}",
    why: "Sie erhalten diese E-Mail, weil Sie {site} um Informationen gebeten haben.",
    unsubscribe: "Abmelden",
    alert_subject: "Heißer Lead: {name} ({site})",
    alert_intro: "Gerade ist ein heißer Lead auf {site} eingegangen.",
    alert_name: "Name: {value}",
    alert_email: "E-Mail: {value}",
    alert_company: "Firma: {value}",
    alert_phone: "Telefon: {value}",
    alert_grade: "Einstufung: {grade} (Punkte {score})",
    alert_message: "Nachricht: {value}",
    alert_id: "Lead-ID: {value}",
    alert_call: "Der Lead wurde eingeladen, Sie jetzt anzurufen: Ein schneller Rückruf ist willkommen.",
};

/// Substitutes `{key}` placeholders in one pass (values are never scanned for placeholders).
/// An unknown placeholder is left as it is.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let key = after.find('}').map(|close| &after[..close]);
        match key.and_then(|k| values.iter().find(|(name, _)| *name == k)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<&str> {
        s.split('{')
            .skip(1)
            .filter_map(|part| part.split_once('}').map(|(k, _)| k))
            .collect()
    }

    fn all_strings(c: &Copy) -> Vec<&'static str> {
        let mut v = vec![
            c.greeting,
            c.greeting_anonymous,
            c.welcome_subject,
            c.welcome_thanks,
            c.welcome_asked,
            c.welcome_soon,
            c.check_in_subject,
            c.resources_subject,
            c.resources,
            c.last_note_subject,
            c.confirm_subject,
            c.resource_text,
            c.resource_html,
            c.call_us,
            c.booking_text,
            c.booking_html,
            c.booking_label,
            c.sign_off,
            c.why,
            c.unsubscribe,
            c.alert_subject,
            c.alert_intro,
            c.alert_name,
            c.alert_email,
            c.alert_company,
            c.alert_phone,
            c.alert_grade,
            c.alert_message,
            c.alert_id,
            c.alert_call,
        ];
        v.extend(c.check_in);
        v.extend(c.last_note);
        v.extend(c.confirm);
        v
    }

    /// Every language fills every sentence, with exactly the placeholders English has.
    #[test]
    fn every_language_has_every_sentence_with_the_same_placeholders() {
        let english = all_strings(&EN);
        for locale in Locale::ALL {
            let strings = all_strings(locale.copy());
            assert_eq!(strings.len(), english.len());
            for (theirs, ours) in strings.iter().zip(&english) {
                assert!(!theirs.trim().is_empty(), "{locale:?}: an empty sentence");
                let (mut a, mut b) = (placeholders(theirs), placeholders(ours));
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "{locale:?}: {theirs:?} vs {ours:?}");
            }
        }
    }

    #[test]
    fn locales_round_trip_by_code() {
        for locale in Locale::ALL {
            assert_eq!(Locale::parse(locale.as_str()), Some(locale));
            let json = serde_json::to_string(&locale).unwrap();
            assert_eq!(json, format!("\"{}\"", locale.as_str()));
        }
        assert_eq!(Locale::default(), Locale::En);
    }

    #[test]
    fn fill_substitutes_once_and_leaves_the_unknown() {
        assert_eq!(
            fill(
                "Hi {name}, from {site} {x}",
                &[("name", "{site}"), ("site", "Acme")]
            ),
            "Hi {site}, from Acme {x}"
        );
        assert_eq!(fill("{", &[]), "{");
        assert_eq!(fill("a}b{c", &[("c", "d")]), "a}b{c");
    }
}
