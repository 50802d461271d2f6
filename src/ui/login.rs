//! `/login`: the only page served without a session.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav, Page};
use super::{assets, ok_html, redirect};
use crate::http::principal::Principal;

/// Where a browser goes after signing in when `next` is missing or not safe.
const DEFAULT_NEXT: &str = "/collectors";
const MAX_NEXT_BYTES: usize = 2048;

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// `next` when it is a path on this server, else [`DEFAULT_NEXT`]. A browser strips tabs and newlines
/// from URLs and reads `\` as `/`, so `/\t/evil.example` or `/\\evil.example` would leave the site;
/// any control character, whitespace or backslash, and anything not starting with one `/`, is refused.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.len() <= MAX_NEXT_BYTES
                && path.starts_with('/')
                && !path[1..].starts_with('/')
                && !path.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') =>
        {
            path
        }
        _ => DEFAULT_NEXT,
    }
}

/// The form posts with the script (to `POST /api/v1/auth/login`), which then goes to the form's
/// `data-next`: the `?next=` path, vetted here on the server. `method="post"` keeps a password out of
/// the URL even without script.
pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let query = web::Query::<LoginQuery>::from_query(request.query_string()).ok();
    let next = safe_next(query.as_ref().and_then(|query| query.next.as_deref()));
    if principal.is_some() {
        return redirect(next);
    }
    let content = html! {
        div class="login-wrap" {
            div class="login-card" {
                div class="login-brand" {
                    img src=(assets::url("logo.svg")) alt="" width="40" height="40";
                    div {
                        h1 { "Sign in to linkmesh" }
                        p class="muted" { "Fleet manager for Grafana Alloy and OpenTelemetry Collectors" }
                    }
                }
                form id="login-form" class="form" method="post" action="/login" data-next=(next) novalidate {
                    div class="form-error" id="login-error" role="alert" hidden {}
                    div class="field" {
                        label for="username" { "Username" }
                        input id="username" name="username" type="text" autocomplete="username" required autofocus;
                    }
                    div class="field" {
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                    }
                    button type="submit" class="btn btn-primary btn-block" { "Sign in" }
                }
                p class="login-hint muted" {
                    "First start? The password of " code { "admin" } " was printed once in the server log and written to "
                    code { "<data-dir>/initial-admin-password" } "."
                }
            }
        }
    };
    ok_html(layout::page(
        Page { title: "Sign in", id: "login", nav: Nav::None, principal: None, topology: false },
        content,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_followed_after_login() {
        assert_eq!(safe_next(Some("/collectors/col_1?tab=events")), "/collectors/col_1?tab=events");
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), DEFAULT_NEXT, "{hostile:?}");
        }
        assert_eq!(safe_next(None), DEFAULT_NEXT);
    }
}
