//! The shell every page shares: head, top bar (navigation, "+ Add Collector", who is signed in) and
//! the `<main>` landmark the page fills.

use maud::{html, Markup, DOCTYPE};

use super::assets;
use crate::http::principal::{Principal, PrincipalKind};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Collectors,
    Pipelines,
    Fleet,
    Rollouts,
    Cluster,
    Settings,
    Api,
    None,
}

pub struct Page<'a> {
    pub title: &'a str,
    /// The body's `data-page`: which part of `app.js` runs on this page.
    pub id: &'static str,
    pub nav: Nav,
    pub principal: Option<&'a Principal>,
    /// Whether the page draws a topology canvas (loads `topology.js`).
    pub topology: bool,
}

pub fn page(page: Page<'_>, content: Markup) -> Markup {
    let role = page.principal.map(|principal| principal.role.as_str()).unwrap_or("");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (page.title) " · linkmesh" }
                link rel="icon" type="image/svg+xml" href=(assets::url("logo.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                @if page.topology {
                    script src=(assets::url("topology.js")) defer {}
                }
                script src=(assets::url("app.js")) defer {}
            }
            body data-page=(page.id) data-role=(role) data-icon-alloy=(assets::url("alloy.svg")) data-icon-otel=(assets::url("otel.svg")) {
                a class="skip-link" href="#main" { "Skip to content" }
                @if let Some(principal) = page.principal {
                    (top_bar(page.nav, principal))
                }
                main id="main" tabindex="-1" class=(if page.principal.is_some() { "main" } else { "main main-bare" }) {
                    (content)
                }
                div id="toasts" class="toasts" role="status" aria-live="polite" {}
            }
        }
    }
}

fn top_bar(active: Nav, principal: &Principal) -> Markup {
    let link = |nav: Nav, href: &str, label: &str| {
        html! {
            @if nav == active {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    let kind = match principal.kind {
        PrincipalKind::User => "",
        PrincipalKind::ServiceAccount => " service account",
    };
    html! {
        header class="topbar" {
            a class="brand" href="/collectors" {
                img src=(assets::url("logo.svg")) alt="" width="24" height="24";
                span { "linkmesh" }
            }
            nav class="mainnav" aria-label="Main" {
                (link(Nav::Collectors, "/collectors", "Collectors"))
                (link(Nav::Pipelines, "/pipelines", "Pipelines"))
                (link(Nav::Fleet, "/fleet", "Fleet-wide"))
                (link(Nav::Rollouts, "/rollouts", "Rollouts"))
                (link(Nav::Cluster, "/cluster", "Cluster"))
                @if principal.role.can_manage_access() {
                    (link(Nav::Settings, "/settings", "Settings"))
                }
                (link(Nav::Api, "/api-reference", "API"))
            }
            div class="topbar-end" {
                @if principal.role.can_manage_collectors() {
                    a class="btn btn-primary" href="/collectors/new" data-testid="add-collector-header" {
                        (icon(Icon::Plus)) "Add Collector"
                    }
                }
                span class="whoami" data-testid="whoami" {
                    "Signed in as " strong { (principal.name) } (kind)
                    " " span class="role-tag" { "(" (principal.role.as_str()) ")" }
                }
                button type="button" class="btn btn-ghost" data-action="sign-out" { "Sign out" }
            }
        }
    }
}

#[derive(Clone, Copy)]
pub enum Icon {
    Plus,
    Copy,
    Key,
    Warning,
    Back,
}

/// A small inline icon; decorative (`aria-hidden`), the text beside it carries the meaning.
pub fn icon(icon: Icon) -> Markup {
    let path = match icon {
        Icon::Plus => "M8 3v10M3 8h10",
        Icon::Copy => "M5.5 5.5h7v7h-7zM3.5 10.5v-7h7",
        Icon::Key => "M9.5 6.5a3 3 0 1 1 .01 0M7.5 8.5 3 13M4.5 11.5l1.5 1.5",
        Icon::Warning => "M8 2 14.5 13.5h-13zM8 6.5v3.5M8 11.8v.2",
        Icon::Back => "M10 3 5 8l5 5",
    };
    html! {
        svg class="icon" width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false" {
            path d=(path) fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" {}
        }
    }
}

/// A status badge as the server first renders it; the script keeps it current.
pub fn status_badge(status: &str) -> Markup {
    html! {
        span class={ "badge status-" (status) } data-status=(status) {
            span class="dot" aria-hidden="true" {}
            (status)
        }
    }
}
