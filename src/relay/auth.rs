//! Bearer-token authentication and role checks, done by the relay on every
//! request (never trusted to the console).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode, header};

use super::{ApiError, Relay};
use crate::protocol::Role;
use crate::store::{Credential, hash_token};

/// Credentials already looked up, by token hash. Every alert post and
/// every command carries its token; reading the credential from the
/// database each time put a round trip to the pool on every request's
/// path. A cached credential is still checked against the revocation set
/// (as live streams are), so a revoked token stops within the revocation
/// poll. Unknown tokens are never cached, so guessing cannot fill it.
#[derive(Default)]
pub struct CredentialCache {
    by_hash: Mutex<HashMap<String, Credential>>,
}

/// Far more credentials than a district issues; past it the cache starts
/// over rather than grow with churn.
const CACHED_CREDENTIALS: usize = 4096;

impl CredentialCache {
    fn get(&self, hash: &str) -> Option<Credential> {
        self.by_hash.lock().ok()?.get(hash).cloned()
    }

    fn put(&self, hash: String, credential: Credential) {
        if let Ok(mut map) = self.by_hash.lock() {
            if map.len() >= CACHED_CREDENTIALS {
                map.clear();
            }
            map.insert(hash, credential);
        }
    }

    /// Forgets revoked credentials (called when the revocation set changes).
    pub fn forget(&self, revoked: &std::collections::HashSet<i64>) {
        if let Ok(mut map) = self.by_hash.lock() {
            map.retain(|_, c| !revoked.contains(&c.id));
        }
    }
}

/// The live credential `token` belongs to, from the cache or the store.
async fn lookup(relay: &Relay, token: &str) -> Result<Option<Credential>, ApiError> {
    let hash = hash_token(token);
    if let Some(credential) = relay.credentials.get(&hash) {
        if relay.is_revoked(credential.id) {
            return Ok(None);
        }
        return Ok(Some(credential));
    }
    let found = relay.store().authenticate(token).await?;
    if let Some(credential) = &found
        && !relay.is_revoked(credential.id)
    {
        relay.credentials.put(hash, credential.clone());
    }
    Ok(found)
}

/// Authenticates the request's bearer token and checks its role is one
/// `allowed` accepts. 401 for no or bad token, 403 for the wrong role.
pub async fn require(
    relay: &Relay,
    headers: &HeaderMap,
    allowed: fn(Role) -> bool,
    doing: &str,
) -> Result<Credential, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing `Authorization: Bearer <token>` header",
            )
        })?;
    let credential = lookup(relay, token).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown or revoked token",
        )
    })?;
    if !allowed(credential.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role `{}` may not {doing}", credential.role),
        ));
    }
    Ok(credential)
}
