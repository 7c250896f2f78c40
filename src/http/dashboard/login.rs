//! How a browser presents a key on TCP. A browser cannot add `Authorization: Bearer` to a page it
//! navigates to, so `GET /` without credentials answers with a login form (401); posting a key from
//! the keys file to `/login` sets it as an HttpOnly, SameSite=Strict cookie, which the front door
//! then takes as it takes the bearer key ([`cookie_key`]). A request carrying only the cookie must
//! come from the dashboard itself: a browser names the page behind every POST or DELETE in
//! `Origin`, and that must be this listener ([`check_origin`]), so a page of another site, or
//! of another port of localhost (cookies ignore ports), cannot use the cookie to kill processes.
//! On the Unix socket, or on TCP without a keys file, there is nothing to log in to.

use crate::http::Door;
use crate::http::door::Origin;
use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The cookie holding the key.
pub const COOKIE: &str = "llmkernel_key";

/// The login form; `<!--message-->` is where a refusal is said.
const FORM: &str = include_str!("login.html");

/// The key a request's cookie presents, if any.
pub fn cookie_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| percent_decode(value))
}

/// Refuses a cookie-authenticated request that another page made: any method but GET/HEAD needs an
/// `Origin` naming this listener, and an `Origin` present on any method must name it.
pub fn check_origin(
    method: &Method,
    headers: &HeaderMap,
    names_listener: impl Fn(&str) -> bool,
) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let ours = origin
        .and_then(|o| o.strip_prefix("http://"))
        .is_some_and(names_listener);
    match origin {
        Some(_) if ours => Ok(()),
        None if matches!(*method, Method::GET | Method::HEAD) => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "a request with the dashboard's cookie must come from the dashboard (Origin {origin:?}); \
             other clients present `Authorization: Bearer KEY`"
        ))),
    }
}

/// The front door's refusal, or for a browser asking for the dashboard without a key, the form.
pub fn or_form(error: ApiError, method: &Method, path: &str) -> Response {
    if error.status == StatusCode::UNAUTHORIZED && *method == Method::GET && path == "/" {
        return form(StatusCode::UNAUTHORIZED, "");
    }
    error.into_response()
}

/// `POST /login` (not behind the front door's check, since it is where the key arrives): a key from
/// the keys file becomes the cookie and the browser goes to the dashboard; another gets the form again.
pub async fn submit(
    State(door): State<Door>,
    ConnectInfo(origin): ConnectInfo<Origin>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rules = match (&origin, door.tcp.as_ref()) {
        (Origin::Tcp(_), Some(rules)) => rules,
        _ => return to_dashboard(None),
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| rules.host_allowed(h)) {
        return ApiError::forbidden("the Host header does not name this server").into_response();
    }
    // A form of another site may not log a browser in here (as another user); a client that is
    // no browser sends no Origin at all, and may, as GET may.
    if let Err(e) = check_origin(&Method::GET, &headers, |h| rules.host_allowed(h)) {
        return e.into_response();
    }
    let Some(keys) = &rules.keys else {
        return to_dashboard(None);
    };
    match form_field(&body, "key").filter(|k| keys.uid_of(k).is_some()) {
        Some(key) => to_dashboard(Some(&key)),
        None => form(
            StatusCode::UNAUTHORIZED,
            "That key is not in the kernel's keys file.",
        ),
    }
}

fn form(status: StatusCode, message: &str) -> Response {
    let page = FORM.replace("<!--message-->", message);
    (status, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// 303 to the dashboard, setting the cookie to `key` when given.
fn to_dashboard(key: Option<&str>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Some(key) = key {
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            percent_encode(key)
        );
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// The value of `name` in a form body (`application/x-www-form-urlencoded`).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, value)| percent_decode(&value.replace('+', " ")))
}

/// Every byte but unreserved ones as `%XX`, so any key fits in a cookie.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` decoded; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_the_cookie_and_the_form_whatever_its_characters() {
        for key in ["sk-plain", "sk with space;and=more", "ключ%"] {
            assert_eq!(percent_decode(&percent_encode(key)).as_deref(), Some(key));
        }
        assert_eq!(
            form_field(b"a=1&key=sk%2Dx+y", "key").as_deref(),
            Some("sk-x y")
        );
        assert_eq!(form_field(b"key=%zz", "key"), None);
        assert_eq!(percent_decode("%4"), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        let value = format!("a=b; {COOKIE}=sk%20one; c=d");
        headers.insert(header::COOKIE, value.parse().unwrap());
        assert_eq!(cookie_key(&headers).as_deref(), Some("sk one"));
        assert_eq!(cookie_key(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_dashboard_itself_may_act_with_the_cookie() {
        let ours = |h: &str| h == "127.0.0.1:8080";
        let with_origin = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ORIGIN, origin.parse().unwrap());
            headers
        };
        let none = HeaderMap::new();
        assert!(check_origin(&Method::GET, &none, ours).is_ok());
        assert!(check_origin(&Method::DELETE, &none, ours).is_err());
        let own = with_origin("http://127.0.0.1:8080");
        assert!(check_origin(&Method::POST, &own, ours).is_ok());
        for other in ["http://127.0.0.1:9999", "http://evil.example", "null"] {
            assert!(
                check_origin(&Method::POST, &with_origin(other), ours).is_err(),
                "{other}"
            );
            assert!(check_origin(&Method::GET, &with_origin(other), ours).is_err());
        }
    }
}
