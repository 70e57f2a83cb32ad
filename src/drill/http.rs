//! Playing a drill into a relay over HTTP (`drill run`): the one piece of
//! the drill module that needs an HTTP client, so it is built only with
//! the `drill-client` feature.

use std::time::Duration;

use super::run::{Deliver, Delivered, PostError};
use crate::protocol::{Alert, ErrorBody, IngestReply};

/// A relay reached over plain HTTP.
pub struct HttpRelay {
    agent: ureq::Agent,
    alerts_url: String,
    authorization: String,
}

impl HttpRelay {
    /// `relay` is `http://HOST:PORT` (a `ws://` console URL is accepted
    /// too). TLS is refused until it exists, rather than silently sending
    /// student data in the clear to an address that promised otherwise.
    pub fn new(relay: &str, token: &str) -> Result<HttpRelay, String> {
        let relay = relay.trim();
        let rest = match relay.split_once("://") {
            Some(("http" | "ws", rest)) => rest,
            Some(("https" | "wss", _)) => {
                return Err(
                    "--relay: TLS (https:// or wss://) is not supported by `drill run` yet; \
                     use http://HOST:PORT on a trusted network"
                        .into(),
                );
            }
            Some((other, _)) => {
                return Err(format!(
                    "--relay: unsupported scheme `{other}://`; use http://HOST:PORT"
                ));
            }
            None => relay,
        };
        let rest = rest.trim_end_matches('/').trim_end_matches("/v1/alerts");
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err("--relay: missing or invalid host, e.g. http://127.0.0.1:7710".into());
        }
        let token = token.trim();
        if token.is_empty() {
            return Err("--token is empty".into());
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build()
            .into();
        Ok(HttpRelay {
            agent,
            alerts_url: format!("http://{rest}/v1/alerts"),
            authorization: format!("Bearer {token}"),
        })
    }
}

impl Deliver for HttpRelay {
    fn post(&mut self, alert: &Alert) -> Result<Delivered, PostError> {
        let body = serde_json::to_vec(alert)
            .map_err(|e| PostError::Refused(format!("alert does not encode: {e}")))?;
        let mut response = self
            .agent
            .post(&self.alerts_url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| {
                PostError::Transient(format!("no answer from {}: {e}", self.alerts_url))
            })?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200 | 201 => {
                let reply: IngestReply = serde_json::from_str(&text).map_err(|e| {
                    PostError::Transient(format!("unreadable answer (HTTP {status}): {e}"))
                })?;
                Ok(Delivered {
                    seq: reply.seq,
                    case_id: reply.case_id,
                    duplicate: reply.duplicate,
                })
            }
            408 | 429 | 500..=599 => Err(PostError::Transient(format!(
                "HTTP {status}{}",
                relay_message(&text)
            ))),
            401 => Err(PostError::Refused(format!(
                "HTTP 401: the relay does not accept this --token{}",
                relay_message(&text)
            ))),
            403 => Err(PostError::Refused(format!(
                "HTTP 403: this token's role may not post alerts (use a producer token){}",
                relay_message(&text)
            ))),
            409 => Err(PostError::Refused(format!(
                "HTTP 409: alert id `{}` is already used by a different alert; \
                 choose a new --exercise-id",
                alert.id
            ))),
            _ => Err(PostError::Refused(format!(
                "HTTP {status}{}",
                relay_message(&text)
            ))),
        }
    }
}

/// The relay's error message, if the body is its JSON error.
fn relay_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => match e.error.field {
            Some(field) => format!(" ({}: {} [{field}])", e.error.code, e.error.message),
            None => format!(" ({}: {})", e.error.code, e.error.message),
        },
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_are_plain_http_only() {
        assert_eq!(
            HttpRelay::new("http://127.0.0.1:7710/", "t")
                .unwrap()
                .alerts_url,
            "http://127.0.0.1:7710/v1/alerts"
        );
        assert_eq!(
            HttpRelay::new("ws://relay:7710", "t").unwrap().alerts_url,
            "http://relay:7710/v1/alerts"
        );
        assert!(
            HttpRelay::new("https://relay", "t")
                .err()
                .unwrap()
                .contains("TLS")
        );
        assert!(HttpRelay::new("ftp://relay", "t").is_err());
        assert!(HttpRelay::new("http://", "t").is_err());
    }
}
