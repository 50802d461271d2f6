//! `/login`: the only page served without a session.

use actix_web::HttpResponse;
use maud::html;

use super::layout::{self, Nav, Page};
use super::{assets, ok_html, redirect};
use crate::http::principal::Principal;

/// The form posts with the script (to `POST /api/v1/auth/login`), which then follows `?next=` when
/// it is a path on this server. `method="post"` keeps a password out of the URL even without script.
pub async fn page(principal: Option<Principal>) -> HttpResponse {
    if principal.is_some() {
        return redirect("/collectors");
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
                form id="login-form" class="form" method="post" action="/login" novalidate {
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
