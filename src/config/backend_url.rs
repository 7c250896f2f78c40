//! What a backend URL must be: an absolute `http` or `https` URL with a host, like
//! `http://127.0.0.1:8080/v1`. Checked where the URL comes in (the `--backend` flag and its
//! environment variable, the config file's `[backend] url`), so a typo stops the kernel at start-up
//! with the reason instead of being retried forever as a server that does not answer.

/// Checks a backend URL; the error says what is wrong and what a good one looks like.
pub fn check_backend_url(text: &str) -> Result<(), String> {
    let example = "an http(s) URL such as http://127.0.0.1:8080/v1";
    // `host:port` without a scheme is the likeliest slip: say what was probably meant.
    let with_scheme = format!("http://{}", text.trim());
    let hint = match reqwest::Url::parse(&with_scheme) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) && !text.contains("://") => {
            format!(" (did you mean `{with_scheme}`?)")
        }
        _ => String::new(),
    };
    let url = match reqwest::Url::parse(text.trim()) {
        Ok(url) => url,
        Err(e) => {
            return Err(format!(
                "`{text}` is not a URL ({e}); the backend must be {example}{hint}"
            ));
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` is not an http(s) URL (scheme `{}`); the backend must be {example}{hint}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "`{text}` names no host; the backend must be {example}"
        ));
    }
    Ok(())
}

/// `--backend`'s value parser: the URL as given, once it checks out.
pub fn parse_backend_url(text: &str) -> Result<String, String> {
    check_backend_url(text).map(|()| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_with_a_host_are_backends() {
        for good in [
            "http://127.0.0.1:5001/v1",
            "https://api.example.com/v1",
            "http://localhost:8080",
        ] {
            assert_eq!(check_backend_url(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("not a url", "is not a URL"),
            ("127.0.0.1:8080", "did you mean `http://127.0.0.1:8080`?"),
            ("localhost:8080", "did you mean `http://localhost:8080`?"),
            ("ftp://host/v1", "scheme `ftp`"),
            ("unix:/run/llm.sock", "is not an http(s) URL"),
            ("", "is not a URL"),
        ] {
            let err = check_backend_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("http://127.0.0.1:8080/v1"), "{bad}: {err}");
        }
    }
}
