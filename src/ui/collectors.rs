//! `/collectors` (the live fleet list) and `/collectors/new` (+ Add Collector).

use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::layout::{self, icon, Icon, Nav, Page};
use super::{assets, ok_html, signed_in};
use crate::http::principal::Principal;

pub const STATUSES: [(&str, &str); 5] = [
    ("awaiting_connection", "Awaiting connection"),
    ("connected", "Connected"),
    ("degraded", "Degraded"),
    ("stale", "Stale"),
    ("offline", "Offline"),
];

pub async fn list_page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let content = html! {
        div class="page-header" {
            div {
                h1 { "Collectors" }
                p class="muted" id="collectors-summary" aria-live="polite" { "Loading…" }
            }
            @if principal.role.can_manage_collectors() {
                a class="btn btn-primary" href="/collectors/new" data-testid="add-collector" {
                    (icon(Icon::Plus)) "Add Collector"
                }
            }
        }
        div class="status-chips" id="status-chips" role="group" aria-label="Collectors by status" {
            @for (status, label) in STATUSES {
                button type="button" class={ "chip status-" (status) } data-status=(status) aria-pressed="false" {
                    span class="dot" aria-hidden="true" {}
                    (label) " " span class="chip-count" { "0" }
                }
            }
        }
        form class="filters" id="collector-filters" role="search" aria-label="Filter collectors" {
            div class="field field-inline grow" {
                label for="filter-q" { "Search" }
                input id="filter-q" name="q" type="search" placeholder="Name, id or host id" autocomplete="off";
            }
            div class="field field-inline" {
                label for="filter-status" { "Status" }
                select id="filter-status" name="status" {
                    option value="" { "All statuses" }
                    @for (status, label) in STATUSES {
                        option value=(status) { (label) }
                    }
                }
            }
            div class="field field-inline" {
                label for="filter-mode" { "Mode" }
                select id="filter-mode" name="mode" {
                    option value="" { "All modes" }
                    option value="alloy-remotecfg" { "Grafana Alloy (alloy-remotecfg)" }
                    option value="opamp" { "OpenTelemetry Collector (opamp)" }
                }
            }
            span class="live-indicator" id="live-indicator" data-state="connecting" {
                span class="dot" aria-hidden="true" {} span class="live-text" { "Connecting…" }
            }
        }
        div class="panel table-panel" {
            table class="table" id="collectors-table" aria-describedby="collectors-summary" {
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Mode" }
                        th scope="col" { "Status" }
                        th scope="col" { "Host ID" }
                        th scope="col" { "Last seen" }
                        th scope="col" class="num" { "Config" }
                    }
                }
                tbody id="collectors-body" {}
            }
            div class="empty-state" id="collectors-empty" hidden {
                h2 { "No collectors yet" }
                p { "Add a Grafana Alloy or OpenTelemetry Collector, mint its token and paste the config it shows." }
                @if principal.role.can_manage_collectors() {
                    a class="btn btn-primary" href="/collectors/new" { (icon(Icon::Plus)) "Add Collector" }
                }
            }
            div class="empty-state" id="collectors-nomatch" hidden {
                p { "No collector matches these filters." }
                button type="button" class="btn" data-action="clear-filters" { "Clear filters" }
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: "Collectors",
            id: "collectors",
            nav: Nav::Collectors,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}

pub async fn new_page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let content = html! {
        nav class="breadcrumbs" aria-label="Breadcrumb" {
            a href="/collectors" { "Collectors" } span aria-hidden="true" { " / " } span aria-current="page" { "Add collector" }
        }
        div class="page-header" {
            div {
                h1 { "Add collector" }
                p class="muted" { "Create the collector here, then mint its token on the next page and paste the config it shows." }
            }
        }
        @if !principal.role.can_manage_collectors() {
            div class="callout callout-warning" role="note" {
                "Your role (" (principal.role.as_str()) ") cannot add collectors; ask an admin or operator."
            }
        }
        form id="add-collector-form" class="panel form narrow" novalidate {
            div class="form-error" role="alert" hidden {}
            fieldset class="choices" data-field="mode" {
                legend { "What runs on the host?" }
                label class="choice" {
                    input type="radio" name="mode" value="alloy-remotecfg" checked;
                    img src=(assets::url("alloy.svg")) alt="" width="36" height="36";
                    span class="choice-text" {
                        strong { "Grafana Alloy" }
                        span class="muted" { "Pulls its config from linkmesh with the " code { "remotecfg" } " block. No linkmesh agent on the host." }
                        code class="choice-mode" { "alloy-remotecfg" }
                    }
                }
                label class="choice" {
                    input type="radio" name="mode" value="opamp";
                    img src=(assets::url("otel.svg")) alt="" width="36" height="36";
                    span class="choice-text" {
                        strong { "OpenTelemetry Collector" }
                        span class="muted" { "Managed over OpAMP by an OpAMP-capable collector or supervisor." }
                        code class="choice-mode" { "opamp" }
                    }
                }
                p class="field-error" hidden {}
            }
            div class="field" data-field="name" {
                label for="collector-name" { "Name" }
                input id="collector-name" name="name" type="text" required maxlength="128" placeholder="edge-1" autocomplete="off" aria-describedby="collector-name-help";
                p class="help" id="collector-name-help" { "Unique in the fleet; usually the host or its role, e.g. " code { "web-eu-1" } "." }
                p class="field-error" hidden {}
            }
            div class="form-actions" {
                button type="submit" class="btn btn-primary" { "Create collector" }
                a class="btn" href="/collectors" { "Cancel" }
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: "Add collector",
            id: "new-collector",
            nav: Nav::Collectors,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}
