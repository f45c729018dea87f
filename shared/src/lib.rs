#![doc = include_str!("../README.md")]

pub mod attribution;
pub mod codec;
pub mod followup;
pub mod form;
pub mod json;
pub mod locale;
pub mod markup;
pub mod problem;
pub mod sales;
pub mod score;
pub mod site;
pub mod spam;
pub mod submission;
pub mod validate;
pub mod webhooks;

pub use form::{Answer, Answers, EmbedConfig, FormDefinition, VersionedForm, default_form};
pub use problem::{FieldError, Problem};
pub use score::{Grade, NextStep, Scored, grade, score};
pub use site::{SiteConfig, SiteDefinition};
pub use submission::{Consent, LeadCreated, LeadSubmission};
pub use validate::{ValidLead, validate};

/// Largest request body the edge accepts, in bytes. A lead is a few hundred bytes; anything near
/// this is abuse or a bug, and refusing it early keeps the Worker's memory flat.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
