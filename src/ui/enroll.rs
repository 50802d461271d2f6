//! `/collectors/enroll`: OpAMP enrollment tokens for OpenTelemetry Collectors run by the
//! `opampsupervisor` (`http/api/enrollment_tokens.rs`, docs/adr/0010). Operators create a token and
//! are shown, once, the token and a ready-to-paste `supervisor.yaml`, with the install steps around
//! them; everyone sees the tokens, with how many collectors still authenticate with each, and
//! operators revoke them from a dialog that says so before anything is disconnected.

use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::layout::{self, icon, Icon, Nav, Page};
use super::{ok_html, signed_in};
use crate::http::principal::Principal;

/// The TTL choices (seconds, label); the selected one is the API's default (a day).
const TTL_CHOICES: [(u64, &str); 4] =
    [(3600, "1 hour"), (86_400, "1 day"), (7 * 86_400, "7 days"), (30 * 86_400, "30 days")];
const DEFAULT_TTL: u64 = 86_400;

/// Installing the collector and the supervisor from the OpenTelemetry Collector releases, where the
/// rendered `supervisor.yaml` expects them (`agent.executable`, `storage.directory`).
const INSTALL_OTELCOL: &str = r#"OTEL_VERSION=0.149.0
case "$(uname -m)" in aarch64|arm64) ARCH=arm64 ;; *) ARCH=amd64 ;; esac
RELEASES=https://github.com/open-telemetry/opentelemetry-collector-releases/releases/download
curl -fsSL "$RELEASES/v$OTEL_VERSION/otelcol-contrib_${OTEL_VERSION}_linux_$ARCH.tar.gz" | sudo tar -xz -C /usr/local/bin otelcol-contrib
sudo curl -fsSL -o /usr/local/bin/opampsupervisor "$RELEASES/cmd%2Fopampsupervisor%2Fv$OTEL_VERSION/opampsupervisor_${OTEL_VERSION}_linux_$ARCH"
sudo chmod +x /usr/local/bin/opampsupervisor
sudo mkdir -p /etc/otelcol-supervisor /var/lib/otelcol/supervisor"#;

const RUN_SUPERVISOR: &str = "sudo opampsupervisor --config /etc/otelcol-supervisor/supervisor.yaml";

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let can_manage = principal.role.can_manage_collectors();
    let content = html! {
        nav class="breadcrumbs" aria-label="Breadcrumb" {
            a href="/collectors" { "Collectors" } span aria-hidden="true" { " / " }
            span aria-current="page" { "Enroll OpenTelemetry Collectors" }
        }
        div class="page-header" {
            div {
                h1 { "Enroll OpenTelemetry Collectors" }
                p class="muted" {
                    "An OpenTelemetry Collector run by the " code { "opampsupervisor" } " enrolls itself with an enrollment token: "
                    "no need to add it first. Each agent becomes a collector of its own, named "
                    code { "service.name@host.name" } " and given the token's labels."
                }
            }
        }
        @if can_manage {
            (enroll_steps())
        } @else {
            div class="callout callout-warning" role="note" {
                "Your role (" (principal.role.as_str()) ") cannot create or revoke enrollment tokens; ask an admin or operator."
            }
        }
        (token_list(can_manage))
        @if can_manage {
            (revoke_dialog())
        }
    };
    ok_html(layout::page(
        Page {
            title: "Enroll OpenTelemetry Collectors",
            id: "enroll",
            nav: Nav::Collectors,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}

/// Create a token, install, save `supervisor.yaml`, run: the same numbered steps as a collector's
/// enrollment banner. The token and the config appear only from the answer that created the token.
fn enroll_steps() -> Markup {
    html! {
        section class="enroll" aria-labelledby="enroll-steps-title" {
            div class="enroll-head" {
                div {
                    h2 id="enroll-steps-title" { "Connect OpenTelemetry Collectors" }
                    p class="muted" { "One token can enroll a whole fleet: put the same " code { "supervisor.yaml" } " on every host." }
                }
            }
            ol class="steps" {
                li {
                    h3 { "Create an enrollment token" }
                    p { "It enrolls new agents until it expires or its uses run out. The agents it enrolled keep connecting with it until you revoke it." }
                    form id="enroll-token-form" class="form narrow" novalidate {
                        div class="form-error" role="alert" hidden {}
                        div class="form-row" {
                            div class="field" data-field="ttl_seconds" {
                                label for="enroll-ttl" { "Enrolls new agents for" }
                                select id="enroll-ttl" name="ttl_seconds" {
                                    @for (seconds, label) in TTL_CHOICES {
                                        option value=(seconds) selected[seconds == DEFAULT_TTL] { (label) }
                                    }
                                }
                                p class="field-error" hidden {}
                            }
                            div class="field" data-field="uses" {
                                label for="enroll-uses" { "Uses" }
                                input id="enroll-uses" name="uses" type="number" min="1" step="1" inputmode="numeric" placeholder="Unlimited" autocomplete="off" aria-describedby="enroll-uses-help";
                                p class="help" id="enroll-uses-help" { "How many agents it may enroll; empty: any number until it expires." }
                                p class="field-error" hidden {}
                            }
                        }
                        div class="field" data-field="labels" {
                            label for="enroll-labels" { "Labels" }
                            textarea id="enroll-labels" name="labels" class="mono" rows="3" placeholder="env=prod\nteam=edge" spellcheck="false" aria-describedby="enroll-labels-help" {}
                            p class="help" id="enroll-labels-help" { "One " code { "key=value" } " per line, given to every collector it enrolls (what fleet-wide items select). Optional." }
                            p class="field-error" hidden {}
                        }
                        div class="form-actions" {
                            button type="submit" class="btn btn-primary" { (icon(Icon::Key)) "Create token" }
                        }
                    }
                    div class="minted" id="enroll-created" hidden {
                        div class="callout callout-success" role="status" {
                            strong { "Enrollment token created." } " Copy it now — it is not shown again. "
                            span id="enroll-created-expiry" {}
                        }
                        div class="copy-field" {
                            label for="enroll-token" { "Enrollment token" }
                            div class="copy-row" {
                                input id="enroll-token" class="mono" type="text" readonly;
                                button type="button" class="btn" data-copy="#enroll-token" { (icon(Icon::Copy)) "Copy" }
                            }
                        }
                    }
                }
                li {
                    h3 { "Install " code { "otelcol-contrib" } " and the " code { "opampsupervisor" } }
                    p { "Both from the OpenTelemetry Collector releases, into " code { "/usr/local/bin" } " where " code { "supervisor.yaml" } " expects the collector. The supervisor runs the collector and keeps its state in " code { "/var/lib/otelcol/supervisor" } "." }
                    div class="config-box" {
                        div class="config-box-head" {
                            span { "Linux (amd64 or arm64)" }
                            button type="button" class="btn btn-small" data-copy="#install-otelcol" aria-label="Copy the install commands" { (icon(Icon::Copy)) "Copy" }
                        }
                        pre class="code" { code id="install-otelcol" { (INSTALL_OTELCOL) } }
                    }
                }
                li {
                    h3 { "Save " code { "/etc/otelcol-supervisor/supervisor.yaml" } }
                    p { "It points the supervisor at this server's OpAMP endpoint (" code { "/v1/opamp" } ", over WebSocket) with the enrollment token in its " code { "Authorization" } " header." }
                    div class="config-box" id="supervisor-config-box" hidden {
                        div class="config-box-head" {
                            span class="mono" { "supervisor.yaml" }
                            button type="button" class="btn btn-small" data-copy="#supervisor-config" data-testid="copy-supervisor-config" aria-label="Copy supervisor.yaml" { (icon(Icon::Copy)) "Copy" }
                        }
                        pre class="code" { code id="supervisor-config" {} }
                    }
                    p class="muted" id="supervisor-config-placeholder" { "Create the token to see the ready-to-paste supervisor.yaml." }
                }
                li {
                    h3 { "Run the supervisor" }
                    div class="config-box" {
                        div class="config-box-head" {
                            span { "Start it (under systemd or your process manager to keep it running)" }
                            button type="button" class="btn btn-small" data-copy="#run-supervisor" aria-label="Copy the run command" { (icon(Icon::Copy)) "Copy" }
                        }
                        pre class="code" { code id="run-supervisor" { (RUN_SUPERVISOR) } }
                    }
                    p { "Within seconds the host appears under " a href="/collectors?mode=opamp" { "Collectors" } " in mode " code { "opamp" } ", named " code { "service.name@host.name" } " (e.g. " code { "otelcol-contrib@web-1" } ") with the token's labels, and connects. Its config comes from its sources, routes and destinations, and from fleet-wide items selecting its labels." }
                }
            }
            details class="troubleshooting" {
                summary { "Troubleshooting" }
                ul {
                    li { strong { "401 when connecting" } " — the token was revoked, or it expired or used up its uses before this agent enrolled. Create another token and update " code { "supervisor.yaml" } "." }
                    li { strong { "The collector exits at once" } " — " code { "agent.executable" } " must point at " code { "otelcol-contrib" } " (or another build with the " code { "opamp" } " extension)." }
                    li { strong { "Connects but gets no pipeline" } " — give the collector sources, a destination and a route, or add fleet-wide items that select the token's labels." }
                }
            }
        }
    }
}

/// The tokens, newest first, filled and kept current by the script from `GET /enrollment-tokens`.
fn token_list(can_manage: bool) -> Markup {
    let columns = if can_manage { 9 } else { 8 };
    html! {
        section class="panel" aria-labelledby="enrollment-tokens-title" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="enrollment-tokens-title" { "Enrollment tokens" }
                    p class="muted" { "Newest first. Expiry ends enrolling new agents only; the collectors a token enrolled keep connecting with it until it is revoked." }
                }
                button type="button" class="btn btn-small" id="enrollment-tokens-refresh" { "Refresh" }
            }
            table class="table" id="enrollment-tokens-table" data-testid="enrollment-tokens" data-can-manage=(can_manage) tabindex="-1" aria-labelledby="enrollment-tokens-title" {
                thead {
                    tr {
                        th scope="col" { "Token" }
                        th scope="col" { "State" }
                        th scope="col" class="num" { "Uses" }
                        th scope="col" { "Labels" }
                        th scope="col" class="num" { "Collectors" }
                        th scope="col" { "Created" }
                        th scope="col" { "Expires" }
                        th scope="col" { "Revoked" }
                        @if can_manage {
                            th scope="col" { span class="visually-hidden" { "Actions" } }
                        }
                    }
                }
                tbody { tr { td colspan=(columns) class="muted" { "Loading…" } } }
            }
        }
    }
}

/// Asked before revoking: how many collectors still authenticate with the token, since their agents
/// are disconnected at once (`assets/app.js`, `enrollPage`).
fn revoke_dialog() -> Markup {
    html! {
        dialog id="revoke-dialog" class="dialog" aria-labelledby="revoke-dialog-title" aria-describedby="revoke-dialog-text" {
            form method="dialog" class="form" id="revoke-form" novalidate {
                header class="dialog-header" {
                    h2 id="revoke-dialog-title" { "Revoke the enrollment token?" }
                    button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                }
                div class="dialog-body" {
                    div class="form-error" role="alert" hidden {}
                    p id="revoke-dialog-text" {}
                    p class="muted" { "No new agent can enroll with it either. This cannot be undone." }
                }
                footer class="dialog-footer" {
                    button type="button" class="btn" data-action="close-dialog" { "Cancel" }
                    button type="submit" class="btn btn-danger" id="revoke-confirm" { "Revoke token" }
                }
            }
        }
    }
}
