//! Headers every response carries: no framing (clickjacking of the hosted pages' Pay and Cancel buttons), no
//! content sniffing, no referrer (page URLs hold session ids), and a Content Security Policy. Pages get one that
//! allows their own inline stylesheet and form posts to Tollgate, and nothing else — no script at all; every other
//! response (JSON) gets one that allows nothing.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Sets the headers on a response about to be sent; a handler's own value of a header is kept.
pub fn apply(headers: &mut HeaderMap) {
    let is_page =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    let policy = if is_page { PAGE_POLICY } else { API_POLICY };
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &HeaderValue) -> &str {
        value.to_str().unwrap()
    }

    #[test]
    fn pages_get_the_page_policy_and_everything_else_none() {
        let mut page = HeaderMap::new();
        page.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        apply(&mut page);
        let policy = text(page.get(header::CONTENT_SECURITY_POLICY).unwrap());
        assert!(policy.contains("form-action 'self'") && !policy.contains("script-src"), "{policy}");
        assert_eq!(text(page.get(header::X_FRAME_OPTIONS).unwrap()), "DENY");

        let mut json = HeaderMap::new();
        json.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        apply(&mut json);
        assert_eq!(text(json.get(header::CONTENT_SECURITY_POLICY).unwrap()), API_POLICY);
        assert_eq!(text(json.get(header::X_CONTENT_TYPE_OPTIONS).unwrap()), "nosniff");
        assert_eq!(text(json.get(header::REFERRER_POLICY).unwrap()), "no-referrer");
    }

    #[test]
    fn a_handlers_own_header_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
        apply(&mut headers);
        assert_eq!(text(headers.get(header::X_FRAME_OPTIONS).unwrap()), "SAMEORIGIN");
    }
}
