//! `/collectors` (the live fleet list: virtualized rows, sortable columns, filters kept in the URL,
//! bulk actions) and `/collectors/new` (+ Add Collector, which points OpenTelemetry Collectors run by
//! the supervisor to `/collectors/enroll`).

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
                div class="header-actions" {
                    button type="button" class="btn" id="prune-open" data-testid="prune-collectors" { "Prune…" }
                    a class="btn" href="/collectors/enroll" data-testid="enroll-collectors" {
                        (icon(Icon::Key)) "Enroll OpenTelemetry Collectors"
                    }
                    a class="btn btn-primary" href="/collectors/new" data-testid="add-collector" {
                        (icon(Icon::Plus)) "Add Collector"
                    }
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
                input id="filter-q" name="q" type="search" placeholder="Name, id, host id or key=value" autocomplete="off";
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
            div class="filters-break" {}
            div class="field field-inline grow" data-field="selector" {
                label for="filter-selector" { "Labels" }
                input id="filter-selector" name="selector" type="text" class="mono" placeholder="env=prod,region!=eu" autocomplete="off" spellcheck="false" aria-describedby="filter-selector-error";
                p class="field-error" id="filter-selector-error" hidden {}
            }
            div class="field field-inline" data-field="attr" {
                label for="filter-attr" { "Attribute" }
                input id="filter-attr" name="attr" type="text" class="mono" placeholder="os=linux" autocomplete="off" spellcheck="false" aria-describedby="filter-attr-error";
                p class="field-error" id="filter-attr-error" hidden {}
            }
            span class="live-indicator" id="live-indicator" data-state="connecting" {
                span class="dot" aria-hidden="true" {} span class="live-text" { "Connecting…" }
            }
        }
        @if principal.role.can_manage_collectors() {
            div class="bulk-bar" id="bulk-bar" role="region" aria-label="Selected collectors" hidden {
                span class="bulk-count" id="bulk-count" aria-live="polite" { "0 selected" }
                button type="button" class="link-button" id="bulk-all" hidden { "Select all matching" }
                span class="bulk-actions" {
                    button type="button" class="btn btn-small" data-bulk="label" { "Label…" }
                    button type="button" class="btn btn-small" data-bulk="rotate" { "Rotate tokens" }
                    button type="button" class="btn btn-small btn-danger-ghost" data-bulk="delete" { "Delete" }
                    button type="button" class="btn btn-small btn-ghost" id="bulk-clear" { "Clear selection" }
                }
            }
        }
        div class="panel table-panel" {
            div class="table-scroll" id="collectors-scroll" tabindex="-1" {
                table class="table table-virtual" id="collectors-table" aria-describedby="collectors-summary" aria-rowcount="-1" {
                    thead {
                        tr {
                            @if principal.role.can_manage_collectors() {
                                th scope="col" class="col-check" {
                                    input type="checkbox" id="select-page" aria-label="Select the collectors shown";
                                }
                            }
                            th scope="col" class="col-name" data-sort="name" aria-sort="ascending" { button type="button" class="sort-button" { "Name" span class="sort-mark" aria-hidden="true" {} } }
                            th scope="col" class="col-mode" data-sort="mode" aria-sort="none" { button type="button" class="sort-button" { "Mode" span class="sort-mark" aria-hidden="true" {} } }
                            th scope="col" class="col-status" data-sort="status" aria-sort="none" { button type="button" class="sort-button" { "Status" span class="sort-mark" aria-hidden="true" {} } }
                            th scope="col" class="col-labels" { "Labels" }
                            th scope="col" class="col-host" { "Host ID" }
                            th scope="col" class="col-seen" data-sort="last_seen_at" aria-sort="none" { button type="button" class="sort-button" { "Last seen" span class="sort-mark" aria-hidden="true" {} } }
                            th scope="col" class="col-config num" { "Config" }
                        }
                    }
                    tbody id="collectors-body" {}
                }
            }
            div class="empty-state" id="collectors-empty" hidden {
                h2 { "No collectors yet" }
                p { "Add a Grafana Alloy or OpenTelemetry Collector, mint its token and paste the config it shows — or let OpenTelemetry Collectors run by the opampsupervisor enroll themselves with an enrollment token." }
                @if principal.role.can_manage_collectors() {
                    div class="btn-row btn-row-center" {
                        a class="btn btn-primary" href="/collectors/new" { (icon(Icon::Plus)) "Add Collector" }
                        a class="btn" href="/collectors/enroll" { (icon(Icon::Key)) "Enroll OpenTelemetry Collectors" }
                    }
                }
            }
            div class="empty-state" id="collectors-nomatch" hidden {
                p { "No collector matches these filters." }
                button type="button" class="btn" data-action="clear-filters" { "Clear filters" }
            }
        }
        @if principal.role.can_manage_collectors() {
            dialog id="bulk-dialog" class="dialog" aria-labelledby="bulk-dialog-title" {
                form method="dialog" class="form" id="bulk-form" novalidate {
                    header class="dialog-header" {
                        h2 id="bulk-dialog-title" { "Confirm" }
                        button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                    }
                    div class="dialog-body" {
                        div class="form-error" role="alert" hidden {}
                        p id="bulk-dialog-text" {}
                        div id="bulk-label-fields" hidden {
                            div class="field" data-field="labels.set" {
                                label for="bulk-set" { "Set labels" }
                                textarea id="bulk-set" name="set" class="mono" rows="3" placeholder="env=prod\nregion=eu" spellcheck="false" {}
                                p class="help" { "One key=value per line; an existing value of the key is replaced." }
                                p class="field-error" hidden {}
                            }
                            div class="field" data-field="labels.remove" {
                                label for="bulk-remove" { "Remove labels" }
                                input id="bulk-remove" name="remove" type="text" class="mono" placeholder="canary, owner" autocomplete="off" spellcheck="false";
                                p class="help" { "Keys, separated by commas." }
                                p class="field-error" hidden {}
                            }
                        }
                        div id="bulk-tokens" hidden {
                            div class="callout callout-warning" role="note" {
                                p { "These tokens are shown once and are not stored. The collectors' previous tokens no longer work." }
                            }
                            p { a class="btn btn-primary" id="bulk-tokens-download" download="collector-tokens.csv" href="#" { "Download tokens (CSV)" } }
                        }
                    }
                    footer class="dialog-footer" {
                        button type="button" class="btn" data-action="close-dialog" id="bulk-cancel" { "Cancel" }
                        button type="submit" class="btn btn-primary" id="bulk-confirm" { "Confirm" }
                    }
                }
            }
            (prune_dialog())
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

/// "Prune…": a dry run of `POST /collectors:prune` first (how many, the first names), then a
/// confirm button naming the count, then what was deleted and skipped (`assets/app.js`,
/// `collectorsPage`).
fn prune_dialog() -> maud::Markup {
    html! {
        dialog id="prune-dialog" class="dialog" aria-labelledby="prune-dialog-title" {
            form method="dialog" class="form" id="prune-form" novalidate {
                header class="dialog-header" {
                    h2 id="prune-dialog-title" { "Prune inactive collectors" }
                    button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                }
                div class="dialog-body" {
                    div class="form-error" role="alert" hidden {}
                    p { "Deletes the collectors not seen for a while (never seen: created that long ago), least recently active first, at most 1,000 at a time. Their tokens stop working. A collector that reconnects before the deletion is kept." }
                    div class="field" data-field="inactive_for" {
                        label for="prune-inactive-for" { "Inactive for" }
                        input id="prune-inactive-for" name="inactive_for" type="text" class="mono" value="7d" required autocomplete="off" spellcheck="false" aria-describedby="prune-inactive-for-help";
                        p class="help" id="prune-inactive-for-help" { "A duration such as " code { "7d" } " or " code { "12h" } "; at least " code { "1h" } "." }
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="selector" id="prune-selector-field" hidden {
                        label class="check" {
                            input type="checkbox" name="use_selector" id="prune-use-selector" checked;
                            "Only collectors matching the labels filter " code id="prune-selector" {}
                        }
                        p class="field-error" hidden {}
                    }
                    div id="prune-preview" aria-live="polite" hidden {
                        p id="prune-preview-text" {}
                        ul class="item-list" id="prune-preview-names" {}
                    }
                    div id="prune-result" aria-live="polite" hidden {
                        p id="prune-result-text" {}
                        ul class="item-list" id="prune-result-skipped" {}
                    }
                }
                footer class="dialog-footer" {
                    button type="button" class="btn" data-action="close-dialog" id="prune-cancel" { "Cancel" }
                    button type="button" class="btn btn-primary" id="prune-check" { "Find inactive collectors" }
                    button type="submit" class="btn btn-danger" id="prune-confirm" hidden { "Delete" }
                }
            }
        }
    }
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
            div class="callout callout-info" id="opamp-enroll" role="note" hidden {
                p { strong { "Running the opampsupervisor? Let the collectors enroll themselves." } }
                p {
                    "An OpenTelemetry Collector run by the " code { "opampsupervisor" } " enrolls itself with an enrollment token — "
                    "no need to create it here first. Each agent becomes a collector named " code { "service.name@host.name" }
                    ", with the token's labels; one token can enroll a whole fleet."
                }
                p { a class="btn btn-primary" href="/collectors/enroll" data-testid="go-enroll" { (icon(Icon::Key)) "Enroll OpenTelemetry Collectors" } }
                p class="muted" { "Or create one collector here by hand: its agent then connects with that collector's own token." }
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
