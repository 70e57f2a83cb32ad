//! Bearer-token authentication and role checks, done by the relay on every
//! request (never trusted to the console).

use axum::http::{HeaderMap, StatusCode, header};

use super::{ApiError, Relay};
use crate::protocol::Role;
use crate::store::Credential;

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
    let credential = relay.store().authenticate(token).await?.ok_or_else(|| {
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
