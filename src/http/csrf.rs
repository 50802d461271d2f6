//! Cross-site request forgery: a browser sends the session cookie with requests other sites trigger
//! (a form post, a `fetch` with `mode: "no-cors"`), and `SameSite=Lax` alone does not cover every
//! browser or a sibling subdomain. So every unsafe method authenticated by cookie (and the login
//! itself) must also show that it came from linkmesh's own pages:
//!
//! - `Sec-Fetch-Site: cross-site` or `same-site` is refused (sent by every current browser);
//! - an `Origin` header is refused unless it is the request's own origin (scheme and host as the
//!   client addressed this server) or `external_url`'s;
//! - a request with neither header is accepted: it comes from a non-browser client such as curl, which
//!   cannot be made to carry someone else's cookie.
//!
//! Requests authenticated with `Authorization: Bearer` are not checked: a browser never attaches that
//! header by itself.

use actix_web::http::{header, Method};
use actix_web::HttpRequest;

use crate::error::ApiError;

/// Refuses a forged request; call it for every cookie-authenticated request (safe methods pass).
pub fn check(request: &HttpRequest, external_url: Option<&str>) -> Result<(), ApiError> {
    if is_safe(request.method()) {
        return Ok(());
    }
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
    let origin = headers.get(header::ORIGIN).map(|value| value.to_str().unwrap_or("\u{0}"));
    if fetch_site.is_none() && origin.is_none() {
        return Ok(());
    }
    let info = request.connection_info();
    let own_origin = format!("{}://{}", info.scheme(), info.host());
    verdict(fetch_site, origin, &own_origin, external_url)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// The decision on plain values, for tests.
fn verdict(
    fetch_site: Option<&str>,
    origin: Option<&str>,
    own_origin: &str,
    external_url: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(site) = fetch_site {
        let site = site.trim().to_ascii_lowercase();
        if site == "cross-site" || site == "same-site" {
            return Err(forged(&format!("Sec-Fetch-Site: {site}")));
        }
    }
    let Some(origin) = origin else { return Ok(()) };
    let presented = normalize(origin);
    let allowed = presented.is_some()
        && (presented == normalize(own_origin) || presented == external_url.and_then(normalize));
    if allowed {
        Ok(())
    } else {
        Err(forged("its Origin is not this server"))
    }
}

fn forged(reason: &str) -> ApiError {
    ApiError::permission_denied(format!(
        "cross-site request refused ({reason}); use linkmesh's own pages, or a service-account token"
    ))
}

/// `scheme://host[:port]` lowercased, without a default port or a path; `None` for anything that is
/// not an http(s) origin (including the opaque `null`).
fn normalize(url: &str) -> Option<String> {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "http://linkmesh.internal:8080";

    #[test]
    fn requests_without_browser_headers_pass() {
        assert!(verdict(None, None, OWN, None).is_ok());
    }

    #[test]
    fn cross_site_and_same_site_fetches_are_refused() {
        assert!(verdict(Some("cross-site"), None, OWN, None).is_err());
        assert!(verdict(Some("same-site"), Some(OWN), OWN, None).is_err());
        assert!(verdict(Some("same-origin"), Some(OWN), OWN, None).is_ok());
        assert!(verdict(Some("none"), None, OWN, None).is_ok());
    }

    #[test]
    fn only_the_own_or_the_external_origin_is_accepted() {
        assert!(verdict(None, Some("http://evil.example"), OWN, None).is_err());
        assert!(verdict(None, Some("null"), OWN, None).is_err());
        assert!(verdict(None, Some("HTTP://LinkMesh.internal:8080"), OWN, None).is_ok());
        let external = Some("https://linkmesh.example.com/base");
        assert!(verdict(None, Some("https://linkmesh.example.com:443"), OWN, external).is_ok());
        assert!(verdict(None, Some("http://linkmesh.example.com"), OWN, external).is_err());
        assert!(verdict(None, Some("https://linkmesh.example.com.evil.example"), OWN, external).is_err());
    }
}
