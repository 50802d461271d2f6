//! The page for paths nothing serves. A browser navigating to one gets the app's 404 page (with its
//! navigation when signed in) instead of its own blank error; API paths keep their JSON errors, and a
//! client that does not ask for HTML (a collector, a scraper) keeps the empty 404.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::html as html_response;
use super::layout::{self, icon, Icon, Nav, Page};
use crate::http::principal::Principal;

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    if !wants_html_page(&request) {
        return HttpResponse::NotFound().finish();
    }
    let content = html! {
        div class="empty-state panel" {
            h1 { "Page not found" }
            p { "Nothing lives at " code { (request.path()) } ". The link may be mistyped, or what it named was deleted." }
            a class="btn" href="/collectors" { (icon(Icon::Back)) "All collectors" }
        }
    };
    html_response(
        StatusCode::NOT_FOUND,
        layout::page(
            Page {
                title: "Page not found",
                id: "not-found",
                nav: Nav::None,
                principal: principal.as_ref(),
                topology: false,
            },
            content,
        ),
    )
}

/// A browser's navigation (`GET` or `HEAD` asking for `text/html`) to a path outside the API.
fn wants_html_page(request: &HttpRequest) -> bool {
    let navigation = matches!(request.method().as_str(), "GET" | "HEAD");
    let under_api = request.path() == "/api" || request.path().starts_with("/api/");
    let accepts_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    navigation && !under_api && accepts_html
}
