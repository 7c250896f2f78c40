//! The dashboard: one page at `/` of the front door, behind the same authentication as every other
//! endpoint (the Unix socket's peer credentials, or on TCP a key from the keys file, which a browser
//! presents once through the login form and then as a cookie, [`login`]). Its files are embedded in
//! the binary (no build step, no CDN): `index.html`, `dashboard.css` and hand-written
//! `dashboard.js`, which draws the live process table, a timeline per slot of which process held it
//! when, and the tokens/s chart, all fed by `GET /v1/events` ([`events`], the kernel's `Subscribe`
//! stream relayed as server-sent events); its kill/stop/continue/renice buttons call the
//! `/v1/processes` endpoints, so the kernel checks them exactly as it checks `llmsh`.

pub mod events;
pub mod login;

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The page, embedded at build time.
const INDEX: &str = include_str!("dashboard/index.html");
/// Its script: the event stream, the table, the timeline, the chart and the buttons.
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// The page never changes while a kernel runs, but a new binary may ship a new one: revalidate.
const CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

pub async fn index() -> impl IntoResponse {
    ([CACHE], Html(INDEX))
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            CACHE,
        ],
        SCRIPT,
    )
}

pub async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), CACHE],
        STYLE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_own_script_and_style_and_nothing_from_elsewhere() {
        assert!(INDEX.contains(r#"src="dashboard.js""#), "{INDEX}");
        assert!(INDEX.contains(r#"href="dashboard.css""#), "{INDEX}");
        for file in [INDEX, SCRIPT, STYLE] {
            assert!(!file.contains("http://") && !file.contains("https://"));
        }
        assert!(SCRIPT.contains("v1/events") && SCRIPT.contains("v1/processes/"));
    }
}
