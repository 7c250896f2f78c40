//! Backend failures, worded for the user who reads them in `ps -l`, `wait` and `cat`: each names the
//! backend and says what happened in plain words.

use std::time::{Duration, SystemTime};

/// Why a generation could not start or could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("backend {url} refused the connection")]
    Refused { url: String },
    #[error("backend {url} could not be resolved: {detail}")]
    Dns { url: String, detail: String },
    #[error("backend {url} could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("backend {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    #[error("backend {url} sent nothing within {}s", timeout.as_secs_f32())]
    FirstTokenTimeout { url: String, timeout: Duration },
    #[error("backend {url} stalled: no token for {}s", timeout.as_secs_f32())]
    Stalled { url: String, timeout: Duration },
    #[error("backend {url} sent a malformed stream: {detail}")]
    Malformed { url: String, detail: String },
    #[error("backend {url} broke off the stream: {detail}")]
    Broken { url: String, detail: String },
    #[error("backend {url} reported an error: {detail}")]
    Reported { url: String, detail: String },
    /// A read other than the token stream (an error's text, `/models`) did not finish in time.
    #[error("backend {url} did not finish sending {what} within {}s", timeout.as_secs_f32())]
    Slow {
        url: String,
        what: &'static str,
        timeout: Duration,
    },
}

impl BackendError {
    /// Whether trying again later may succeed (the server is down, busy or overloaded), as opposed to
    /// an answer that will not change (a 400 for a bad request).
    pub fn is_transient(&self) -> bool {
        match self {
            BackendError::Http { status, .. } => matches!(status, 408 | 425 | 429 | 500..=599),
            BackendError::Malformed { .. } | BackendError::Reported { .. } => false,
            _ => true,
        }
    }

    /// Whether the failure may be this one request's rather than the whole backend's: an HTTP 5xx
    /// other than 502, 503 and 504 (a gateway that cannot reach the server, a server that says it is
    /// overloaded or down). A server whose chat template rejects one prompt answers 500 to that prompt
    /// only; the kernel asks the server's health before it believes that (see
    /// [`crate::kernel::circuit`]).
    pub fn may_be_request_specific(&self) -> bool {
        matches!(self, BackendError::Http { status, .. }
            if (500..=599).contains(status) && !(502..=504).contains(status))
    }

    /// How long the server asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BackendError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a transport error from reqwest into the user's words.
    pub(crate) fn from_transport(url: &str, e: &reqwest::Error) -> BackendError {
        let url = url.to_string();
        let chain = error_chain(e);
        if e.is_connect() {
            if chain.contains("Connection refused") {
                return BackendError::Refused { url };
            }
            if chain.contains("dns error") || chain.contains("failed to lookup") {
                // The resolver's own words are the useful part ("Name or service not known").
                let detail = chain.rsplit(": ").next().unwrap_or(&chain).to_string();
                return BackendError::Dns { url, detail };
            }
            return BackendError::Unreachable { url, detail: chain };
        }
        if e.is_body() || e.is_decode() {
            return BackendError::Broken { url, detail: chain };
        }
        BackendError::Unreachable { url, detail: chain }
    }
}

/// A `Retry-After` header's wait: delay-seconds (`120`) or an HTTP date, counted from `now`. A date
/// in the past means no wait; anything else unreadable is ignored.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error and its sources on one line: reqwest's top-level message alone ("error sending request")
/// does not tell a user what to fix.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let read = |v| parse_retry_after(v, now);
        assert_eq!(read("120"), Some(Duration::from_secs(120)));
        assert_eq!(read(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(
            read("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(read("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO));
        assert_eq!(read("soon"), None);
        assert_eq!(read("-5"), None);
    }

    #[test]
    fn only_plain_server_errors_may_be_one_requests() {
        let http = |status| BackendError::Http {
            url: "u".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        for status in [500, 501, 505, 507] {
            assert!(http(status).may_be_request_specific(), "{status}");
        }
        for status in [400, 429, 502, 503, 504] {
            assert!(!http(status).may_be_request_specific(), "{status}");
        }
        assert!(!BackendError::Refused { url: "u".into() }.may_be_request_specific());
    }

    #[test]
    fn only_errors_that_may_pass_are_transient() {
        let http = |status| BackendError::Http {
            url: "u".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        for status in [408, 425, 429, 500, 502, 503, 504] {
            assert!(http(status).is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!http(status).is_transient(), "{status}");
        }
        let url = || "u".to_string();
        let detail = String::new;
        assert!(BackendError::Refused { url: url() }.is_transient());
        assert!(
            BackendError::Dns {
                url: url(),
                detail: detail()
            }
            .is_transient()
        );
        assert!(
            BackendError::Broken {
                url: url(),
                detail: detail()
            }
            .is_transient()
        );
        assert!(
            !BackendError::Malformed {
                url: url(),
                detail: detail()
            }
            .is_transient()
        );
        assert!(
            !BackendError::Reported {
                url: url(),
                detail: detail()
            }
            .is_transient()
        );
    }
}
