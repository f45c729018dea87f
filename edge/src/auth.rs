//! Who is asking: the operator's `ADMIN_TOKEN`, or an API key with scopes. Every protected
//! handler starts with [`require`].

use leadglue_shared::sales::{PresentedKey, Scope, bearer_token, key_hash};
use subtle::ConstantTimeEq;
use worker::{Env, Request};

use crate::config;
use crate::error::AppError;
use crate::repo::Repo;

/// The caller of a protected endpoint.
#[derive(Debug)]
pub enum Principal {
    /// The `ADMIN_TOKEN` secret: may do everything.
    Operator,
    ApiKey {
        id: String,
        name: String,
    },
}

impl Principal {
    /// How changes by this caller are recorded.
    pub fn actor(&self) -> String {
        match self {
            Principal::Operator => "admin".to_owned(),
            Principal::ApiKey { id, name } => format!("{name} (key {id})"),
        }
    }
}

/// Checks `Authorization: Bearer …` and that the caller holds `needed`. No credentials, a token
/// that is not a key, an unknown, revoked or wrong key: 401. A good key without the scope: 403.
pub async fn require(
    req: &Request,
    env: &Env,
    repo: &Repo,
    needed: Scope,
) -> Result<Principal, AppError> {
    let header = req.headers().get("authorization")?.unwrap_or_default();
    let token = bearer_token(&header).ok_or(AppError::Unauthorized)?;
    let admin = env
        .secret(config::ADMIN_TOKEN)
        .map(|s| s.to_string())
        .unwrap_or_default();
    // No ADMIN_TOKEN configured means no operator access, never open access. `subtle` compares
    // without an early exit, so timing says nothing about where a guess first differs.
    if !admin.is_empty() && bool::from(token.as_bytes().ct_eq(admin.as_bytes())) {
        return Ok(Principal::Operator);
    }
    let presented = PresentedKey::parse(token).ok_or(AppError::Unauthorized)?;
    let key = repo
        .api_key(presented.id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    let hash = key_hash(presented.secret);
    let matches = bool::from(hash.as_bytes().ct_eq(key.secret_hash.as_bytes()));
    if !matches || key.revoked_at.is_some() {
        return Err(AppError::Unauthorized);
    }
    let scopes: Vec<Scope> = key.scopes.split(' ').filter_map(Scope::parse).collect();
    if !scopes.iter().any(|s| s.grants(needed)) {
        return Err(AppError::Forbidden {
            needed: needed.as_str(),
        });
    }
    // Kept to the minute: a write per request would double the cost of every read.
    repo.touch_api_key(&key.id, key.last_used_at.as_deref())
        .await?;
    Ok(Principal::ApiKey {
        id: key.id,
        name: key.name,
    })
}

/// `count` random bytes from the platform's CSPRNG (`crypto.getRandomValues`), as hex.
pub fn random_hex(count: usize) -> Result<String, AppError> {
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
