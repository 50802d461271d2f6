//! The web UI, served by the same binary at `/`.
//!
//! Pages are rendered on the server with maud ([`layout`] holds the shell every page shares); the
//! dynamic parts are filled in by one small hand-written script (`assets/app.js`) from the REST API
//! under `/api/v1`, with live updates over server-sent events (`http/api/stream.rs`). Nothing is
//! loaded from anywhere but this server: stylesheet, scripts and icons are embedded in the binary
//! ([`assets`]) and served under a content hash, so they can be cached forever.
//!
//! Invariants:
//! - Only `/login` and `/assets/…` are public. Every other page resolves the caller with the same
//!   [`Principal`] extractor as the API and redirects to `/login?next=…` without one.
//! - Pages carry no inline script or style (a strict `Content-Security-Policy` forbids them), and no
//!   secret: tokens are shown only by the script, from the one API response that mints them.

mod api_reference;
mod assets;
mod cluster;
mod collector;
mod collectors;
mod enroll;
mod fleet;
mod item_editor;
mod layout;
mod login;
mod not_found;
mod pipelines;
mod rollouts;
mod settings;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::Markup;

use crate::http::principal::Principal;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/").route(web::get().to(root)))
        .service(web::resource("/login").route(web::get().to(login::page)))
        .service(web::resource("/collectors").route(web::get().to(collectors::list_page)))
        .service(web::resource("/collectors/new").route(web::get().to(collectors::new_page)))
        .service(web::resource("/collectors/enroll").route(web::get().to(enroll::page)))
        .service(web::resource("/collectors/{id}").route(web::get().to(collector::page)))
        .service(web::resource("/pipelines").route(web::get().to(pipelines::page)))
        .service(web::resource("/settings").route(web::get().to(settings::page)))
        .service(web::resource("/cluster").route(web::get().to(cluster::page)))
        .service(web::resource("/rollouts").route(web::get().to(rollouts::page)))
        .service(web::resource("/fleet").route(web::get().to(fleet::page)))
        .service(web::resource("/api-reference").route(web::get().to(api_reference::page)))
        .service(web::resource("/assets/{version}/{name}").route(web::get().to(assets::serve)))
        .default_service(web::to(not_found::page));
}

async fn root(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    match signed_in(principal, &request) {
        Ok(_) => redirect("/collectors"),
        Err(to_login) => to_login.into(),
    }
}

/// Where an unauthenticated page request goes: the login page, which comes back here afterwards.
struct ToLogin {
    next: String,
}

impl From<ToLogin> for HttpResponse {
    fn from(to_login: ToLogin) -> HttpResponse {
        redirect(&format!("/login?next={}", percent_encode(&to_login.next)))
    }
}

/// The caller, or where to send a browser without a session.
fn signed_in(principal: Option<Principal>, request: &HttpRequest) -> Result<Principal, ToLogin> {
    principal.ok_or_else(|| {
        let next = match request.uri().path_and_query() {
            Some(path) if path.as_str() != "/" => path.as_str().to_owned(),
            _ => "/collectors".to_owned(),
        };
        ToLogin { next }
    })
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Headers of every HTML page: never cached (pages show live state and who is signed in), no inline
/// code, no framing, no referrer leaking collector ids to other origins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn html(status: actix_web::http::StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(markup.into_string())
}

fn ok_html(markup: Markup) -> HttpResponse {
    html(actix_web::http::StatusCode::OK, markup)
}

/// Percent-encodes everything but unreserved characters and `/` (for a `next=` query value).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_parameter_keeps_the_path_and_escapes_the_query() {
        assert_eq!(percent_encode("/collectors/col_1?tab=events"), "/collectors/col_1%3Ftab%3Devents");
        assert_eq!(percent_encode("/a b&c"), "/a%20b%26c");
    }
}
