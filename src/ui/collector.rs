//! `/collectors/{id}`: one collector — the enrollment banner, and the tabs Overview, Inputs, Routing,
//! Destinations, Config, Events and Topology. The frame is rendered here; the script fills the tabs
//! from the API and keeps them live (collector stream, topology polling). An `opamp` collector's
//! Overview also has the Agent panel: what its agent reported of itself over OpAMP (health,
//! description, capabilities, its build's components), which is live state of the collector's actor
//! and so only ever filled by the script. Operators restart the collector from it
//! (`POST /collectors/{id}/restart`) when the agent accepts restart commands, after a dialog that
//! says the collector's pipelines stop meanwhile; the panel then follows the request to its
//! `restart_outcome` event.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::item_editor;
use super::layout::{self, icon, status_badge, Icon, Nav, Page};
use super::{html as html_response, ok_html, signed_in};
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::{CollectorMode, CollectorRecord};

const TABS: [(&str, &str); 7] = [
    ("overview", "Overview"),
    ("inputs", "Inputs"),
    ("routing", "Routing"),
    ("destinations", "Destinations"),
    ("config", "Config"),
    ("events", "Events"),
    ("topology", "Topology"),
];

/// Installing Alloy from Grafana's package repositories, as the product page's onboarding shows it:
/// (element id, systems, commands).
const INSTALL_ALLOY: [(&str, &str, &str); 2] = [
    (
        "install-alloy-apt",
        "Debian / Ubuntu",
        "sudo mkdir -p /etc/apt/keyrings
curl -fsSL https://apt.grafana.com/gpg.key | sudo gpg --dearmor -o /etc/apt/keyrings/grafana.gpg
echo \"deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main\" | sudo tee /etc/apt/sources.list.d/grafana.list
sudo apt-get update && sudo apt-get install -y alloy",
    ),
    (
        "install-alloy-rpm",
        "RHEL / Fedora",
        "sudo tee /etc/yum.repos.d/grafana.repo >/dev/null <<'EOF'
[grafana]
name=grafana
baseurl=https://rpm.grafana.com
enabled=1
gpgcheck=1
gpgkey=https://rpm.grafana.com/gpg.key
EOF
sudo dnf install -y alloy",
    ),
];

pub async fn page(
    principal: Option<Principal>,
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let record = state.raft.state().fleet.collectors.get(path.as_str()).cloned();
    let Some(record) = record else {
        return not_found(&principal, &path);
    };
    let can_edit = principal.role.can_manage_collectors();
    let content = html! {
        div id="collector-root" data-collector-id=(record.id) data-mode=(record.mode.as_str())
            data-can-edit=(can_edit) data-has-token=(record.token.is_some()) {
            nav class="breadcrumbs" aria-label="Breadcrumb" {
                a href="/collectors" { "Collectors" } span aria-hidden="true" { " / " }
                span aria-current="page" { (record.name) }
            }
            div class="page-header collector-header" {
                div {
                    div class="title-row" {
                        h1 { (record.name) }
                        span id="collector-status" { (status_badge(record.status.as_str())) }
                    }
                    p class="meta muted" {
                        span class="mode-tag" { (mode_label(record.mode)) } " · "
                        code class="id" title="Collector id" { (record.id) } " · "
                        span { "last seen " time id="collector-last-seen" data-rel=[record.last_seen_at.map(|at| at.to_rfc3339())] { "never" } span id="collector-poll-interval" {} }
                        " · " span id="collector-version" { "config v" (record.config.version) }
                    }
                }
                div class="header-actions" {
                    button type="button" class="btn" data-action="toggle-enroll" aria-controls="enroll" aria-expanded="false" {
                        (icon(Icon::Key)) "Enrollment"
                    }
                    @if can_edit {
                        button type="button" class="btn btn-danger-ghost" data-action="delete-collector" { "Delete" }
                    }
                }
            }
            (enrollment_banner(&record, can_edit))
            div class="tabs" role="tablist" aria-label="Collector" id="collector-tabs" {
                @for (index, (id, label)) in TABS.iter().enumerate() {
                    button type="button" role="tab" id={ "tab-" (id) } aria-controls={ "panel-" (id) }
                        aria-selected=(index == 0) tabindex=(if index == 0 { "0" } else { "-1" }) data-tab=(id) {
                        (label)
                        @if *id == "events" { span class="tab-count" id="events-count" hidden {} }
                    }
                }
            }
            @for (index, (id, _)) in TABS.iter().enumerate() {
                section class="tab-panel" role="tabpanel" id={ "panel-" (id) } aria-labelledby={ "tab-" (id) }
                    tabindex="0" hidden[index != 0] {
                    (panel(id, record.mode, can_edit))
                }
            }
            (item_editor::dialog())
            @if can_edit && record.mode == CollectorMode::Opamp {
                (restart_dialog())
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: &record.name,
            id: "collector",
            nav: Nav::Collectors,
            principal: Some(&principal),
            topology: true,
        },
        content,
    ))
}

fn mode_label(mode: CollectorMode) -> &'static str {
    match mode {
        CollectorMode::AlloyRemotecfg => "Grafana Alloy (alloy-remotecfg)",
        CollectorMode::Opamp => "OpenTelemetry Collector (opamp)",
    }
}

fn not_found(principal: &Principal, id: &str) -> HttpResponse {
    let content = html! {
        div class="empty-state panel" {
            h1 { "Collector not found" }
            p { "No collector has the id " code { (id) } ". It may have been deleted." }
            a class="btn" href="/collectors" { (icon(Icon::Back)) "All collectors" }
        }
    };
    html_response(
        StatusCode::NOT_FOUND,
        layout::page(
            Page {
                title: "Not found",
                id: "not-found",
                nav: Nav::Collectors,
                principal: Some(principal),
                topology: false,
            },
            content,
        ),
    )
}

/// The banner shown while the collector awaits its first connection (and on demand): how to install
/// Alloy, mint the token and paste the config — the product page's steps, in short.
fn enrollment_banner(record: &CollectorRecord, can_edit: bool) -> Markup {
    let alloy = record.mode == CollectorMode::AlloyRemotecfg;
    html! {
        section class="enroll" id="enroll" aria-labelledby="enroll-title" hidden {
            div class="enroll-head" {
                div {
                    h2 id="enroll-title" { "Connect " (record.name) }
                    p class="muted" id="enroll-status" { "This collector has not connected yet. Follow the steps on the host it runs on." }
                }
                button type="button" class="btn btn-ghost btn-icon" data-action="toggle-enroll" aria-label="Hide enrollment" { "×" }
            }
            div class="tabs tabs-small" role="tablist" aria-label="Collector software" {
                button type="button" role="tab" id="enroll-tab-alloy" aria-controls="enroll-alloy" aria-selected=(alloy) tabindex=(if alloy { "0" } else { "-1" }) data-enroll-tab="alloy" { "Grafana Alloy" }
                button type="button" role="tab" id="enroll-tab-otel" aria-controls="enroll-otel" aria-selected=(!alloy) tabindex=(if alloy { "-1" } else { "0" }) data-enroll-tab="otel" { "OpenTelemetry Collector" }
            }
            div role="tabpanel" id="enroll-alloy" aria-labelledby="enroll-tab-alloy" hidden[!alloy] {
                @if !alloy {
                    div class="callout callout-info" role="note" {
                        "This collector is in " code { "opamp" } " mode; the Grafana Alloy steps apply to collectors in "
                        code { "alloy-remotecfg" } " mode. Add a new collector to onboard Alloy."
                    }
                }
                ol class="steps" {
                    li {
                        h3 { "Install Grafana Alloy" }
                        p { "Add Grafana's package repository, then install; it installs the " code { "alloy" } " service reading " code { "/etc/alloy/config.alloy" } "." }
                        @for (id, title, commands) in INSTALL_ALLOY {
                            div class="config-box" {
                                div class="config-box-head" {
                                    span { (title) }
                                    button type="button" class="btn btn-small" data-copy={ "#" (id) } aria-label={ "Copy the " (title) " commands" } { (icon(Icon::Copy)) "Copy" }
                                }
                                pre class="code" { code id=(id) { (commands) } }
                            }
                        }
                    }
                    li {
                        h3 { "Mint the collector's token" }
                        p { "A per-collector bearer token for " code { "remotecfg" } " and the optional own_metrics push. It is shown once." }
                        @if alloy {
                            (mint_controls(record, can_edit, "config.alloy"))
                        }
                    }
                    li {
                        h3 { "Write " code { "/etc/alloy/config.alloy" } }
                        p { "The " code { "remotecfg" } " block points at this server's base URL — Alloy appends the CollectorService path itself (do not add " code { "/v1/opamp" } "). The same token goes in " code { "bearer_token" } " and in the own_metrics " code { "Authorization" } " header." }
                        div class="config-box" id="config-alloy-box" hidden {
                            div class="config-box-head" {
                                span class="mono" { "config.alloy" }
                                button type="button" class="btn btn-small" data-copy="#config-alloy" data-testid="copy-config" { (icon(Icon::Copy)) "Copy" }
                            }
                            pre class="code" { code id="config-alloy" {} }
                        }
                        p class="muted" id="config-alloy-placeholder" { "Mint the token to see the ready-to-paste config." }
                    }
                    li {
                        h3 { "Restart and verify" }
                        pre class="code" { code { "sudo systemctl restart alloy\nsudo journalctl -u alloy -f | grep -i remotecfg" } }
                        p { "Within one poll (about 60 s) the status leaves " code { "awaiting_connection" } "; the Events tab shows " code { "remotecfg_registered" } ", then config delivery." }
                    }
                }
                details class="troubleshooting" {
                    summary { "Troubleshooting" }
                    ul {
                        li { strong { "401 / Unauthenticated from remotecfg" } " — the token is wrong or was rotated. Mint again here and update " code { "bearer_token" } "." }
                        li { strong { "Connects but gets no pipeline" } " — give the collector sources, a destination and a route (Inputs, Destinations, Routing tabs); an empty config renders an empty pipeline." }
                        li { strong { "Nothing on the topology canvas" } " — the own_metrics block is missing, or its " code { "Authorization" } " token differs from " code { "remotecfg.bearer_token" } "; they must match." }
                        li { strong { "basic_auth" } " — linkmesh accepts only " code { "bearer_token" } " (the Bearer scheme)." }
                    }
                }
            }
            div role="tabpanel" id="enroll-otel" aria-labelledby="enroll-tab-otel" hidden[alloy] {
                div class="callout callout-info" role="note" {
                    p { strong { "OpenTelemetry Collectors connect over OpAMP, and enroll themselves." } }
                    p {
                        "An OpenTelemetry Collector run by the " code { "opampsupervisor" } " connects with an enrollment token and "
                        "becomes a collector of its own, named " code { "service.name@host.name" } ". The enrollment page creates the "
                        "token and shows the ready-to-paste " code { "supervisor.yaml" } " and the install steps."
                    }
                    @if alloy {
                        p { "This collector is in " code { "alloy-remotecfg" } " mode — use the Grafana Alloy tab." }
                    } @else {
                        p {
                            "This collector was added by hand: its agent connects with this collector's own token instead of an "
                            "enrollment token. The Config tab shows the OpenTelemetry Collector YAML it receives."
                        }
                    }
                    p { a class="btn" href="/collectors/enroll" { (icon(Icon::Key)) "Enroll OpenTelemetry Collectors" } }
                }
                @if !alloy {
                    ol class="steps" {
                        li {
                            h3 { "Mint the collector's token" }
                            p { "The bearer token its " code { "opampsupervisor" } " presents at " code { "/v1/opamp" } " (also " code { "linkmesh collectors token " (record.id) } "). It is shown once, with the " code { "supervisor.yaml" } " that carries it." }
                            (mint_controls(record, can_edit, "supervisor.yaml"))
                        }
                        li {
                            h3 { "Save " code { "/etc/otelcol-supervisor/supervisor.yaml" } }
                            p { "It points the supervisor at this server's OpAMP endpoint over WebSocket, with this collector's token in its " code { "Authorization" } " header. Install " code { "otelcol-contrib" } " and the " code { "opampsupervisor" } " as the enrollment page shows, then run " code { "opampsupervisor --config /etc/otelcol-supervisor/supervisor.yaml" } "." }
                            div class="config-box" id="supervisor-config-box" hidden {
                                div class="config-box-head" {
                                    span class="mono" { "supervisor.yaml" }
                                    button type="button" class="btn btn-small" data-copy="#supervisor-config" data-testid="copy-supervisor-config" aria-label="Copy supervisor.yaml" { (icon(Icon::Copy)) "Copy" }
                                }
                                pre class="code" { code id="supervisor-config" {} }
                            }
                            p class="muted" id="supervisor-config-placeholder" { "Mint the token to see the ready-to-paste supervisor.yaml." }
                        }
                    }
                }
            }
        }
    }
}

/// Minting (or rotating) the collector's own token, and where the new token appears: in the Alloy
/// steps for an Alloy collector, in the OpenTelemetry Collector steps for an `opamp` one, whose
/// `config_file` the new token goes into.
fn mint_controls(record: &CollectorRecord, can_edit: bool, config_file: &str) -> Markup {
    html! {
        @if can_edit {
            div class="mint-row" {
                button type="button" class="btn btn-primary" data-action="mint-token" id="mint-button" {
                    (icon(Icon::Key))
                    @if record.token.is_some() { "Rotate token" } @else { "Mint token" }
                }
                p class="warning-text" id="mint-warning" {
                    (icon(Icon::Warning))
                    @if let Some(token) = &record.token {
                        "A token (" code { (token.prefix) "…" } ") was minted " time data-rel=(token.created_at.to_rfc3339()) { (token.created_at.to_rfc3339()) }
                        ". Minting again rotates it: the current token stops working at once."
                    } @else {
                        "Minting again later rotates the token: the previous one stops working at once."
                    }
                }
            }
        } @else {
            p class="muted" { "Your role cannot mint tokens; ask an admin or operator." }
        }
        div class="minted" id="minted" data-config-file=(config_file) hidden {
            div class="callout callout-success" role="status" {
                strong { "Token minted." } " Copy it now — it is not shown again."
            }
            div class="copy-field" {
                label for="minted-token" { "Collector token" }
                div class="copy-row" {
                    input id="minted-token" class="mono" type="text" readonly;
                    button type="button" class="btn" data-copy="#minted-token" { (icon(Icon::Copy)) "Copy" }
                }
            }
        }
    }
}

/// The Agent panel's frame. Every part keeps its place whatever the agent reported (the script fills
/// them, "not reported" included), so live updates do not move the panels around it; the components
/// are a `details` the script never replaces, so it stays open or closed across updates. The restart
/// button exists only for roles that may manage collectors, and the script shows it only while the
/// agent's capabilities include accepting restart commands (the server sends none to another agent).
fn agent_panel(can_edit: bool) -> Markup {
    html! {
        section class="panel agent-panel" id="agent" aria-labelledby="agent-title" data-testid="agent-panel" {
            div class="panel-head agent-head" {
                h2 class="panel-title" id="agent-title" { "Agent" }
                @if can_edit {
                    button type="button" class="btn btn-small" data-action="restart-collector" id="agent-restart" hidden {
                        "Restart collector"
                    }
                }
            }
            p class="help agent-intro" { "What the collector's OpAMP agent reported of itself since this server's collector actor started." }
            div class="agent-health" id="agent-health" aria-live="polite" {
                span class="badge health-unknown" data-health="unknown" { span class="dot" aria-hidden="true" {} "unknown" }
                span class="muted" { "Loading…" }
            }
            h3 class="section-label" { "Description" }
            dl class="kv" id="agent-description" {
                @for key in ["Service", "Host", "OS"] {
                    dt { (key) } dd class="muted" { "…" }
                }
            }
            h3 class="section-label" id="agent-capabilities-title" { "Capabilities" }
            div id="agent-capabilities" { p class="muted" { "…" } }
            details class="agent-components" id="agent-components" {
                summary {
                    span class="agent-components-title" { "Available components" }
                    span class="agent-components-counts muted" id="agent-components-counts" {}
                }
                div class="agent-components-body" id="agent-components-body" {}
            }
            p class="agent-restart-status" id="agent-restart-status" role="status" data-testid="agent-restart-status" hidden {}
        }
    }
}

/// Asked before a restart: the agent stops and starts the collector process, so its pipelines stop
/// receiving and exporting for a moment (`assets/app.js`, `collectorPage`).
fn restart_dialog() -> Markup {
    html! {
        dialog id="restart-dialog" class="dialog" aria-labelledby="restart-dialog-title" aria-describedby="restart-dialog-text" {
            form method="dialog" class="form" id="restart-form" novalidate {
                header class="dialog-header" {
                    h2 id="restart-dialog-title" { "Restart the collector?" }
                    button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                }
                div class="dialog-body" {
                    div class="form-error" role="alert" hidden {}
                    p id="restart-dialog-text" {
                        "Its OpAMP agent restarts the collector process on its host: the collector's pipelines stop "
                        "briefly, and telemetry sent to it meanwhile may be refused or lost."
                    }
                    p class="muted" { "The agent's next health report says how the restart went; this panel shows it." }
                }
                footer class="dialog-footer" {
                    button type="button" class="btn" data-action="close-dialog" { "Cancel" }
                    button type="submit" class="btn btn-danger" id="restart-confirm" { "Restart collector" }
                }
            }
        }
    }
}

fn panel(id: &str, mode: CollectorMode, can_edit: bool) -> Markup {
    match id {
        "overview" => html! {
            div class="grid-2" id="overview" {
                div class="panel" {
                    h2 class="panel-title" { "Status" }
                    dl class="kv" id="overview-status" {}
                }
                @if mode == CollectorMode::Opamp {
                    (agent_panel(can_edit))
                }
                div class="panel" {
                    h2 class="panel-title" { "Configuration delivery" }
                    dl class="kv" id="overview-config" {}
                }
                div class="panel" {
                    div class="panel-head" {
                        h2 class="panel-title" { "Labels" }
                        @if can_edit {
                            button type="button" class="btn btn-small" data-action="edit-labels" { "Edit labels" }
                        }
                    }
                    p class="help" { "Set in linkmesh; fleet-wide sources, routes and destinations attach by label selector." }
                    div id="overview-labels" data-testid="overview-labels" {}
                    form id="labels-form" class="labels-form" hidden {
                        label for="labels-text" { "One " code { "key=value" } " per line" }
                        textarea id="labels-text" name="labels" rows="4" spellcheck="false" {}
                        p class="field-error" id="labels-error" role="alert" {}
                        div class="form-actions" {
                            button type="submit" class="btn btn-primary" { "Save labels" }
                            button type="button" class="btn" data-action="cancel-labels" { "Cancel" }
                        }
                    }
                }
                div class="panel" {
                    h2 class="panel-title" { "Attributes" }
                    div id="overview-attributes" {}
                }
                div class="panel" {
                    h2 class="panel-title" { "Effective config" }
                    p class="help" {
                        @match mode {
                            CollectorMode::AlloyRemotecfg => "What the collector reports it runs (Alloy 1.12 and later).",
                            CollectorMode::Opamp => "What the agent reports its collector runs, credentials replaced by markers.",
                        }
                    }
                    div id="overview-effective" {}
                }
            }
        },
        "inputs" => item_editor::panel("sources", "Inputs", "Where this collector receives telemetry from.", "Add source", can_edit),
        "routing" => item_editor::panel(
            "routes",
            "Routing",
            "Routes are evaluated by priority (lowest first); a final route stops evaluation for the records it matches.",
            "Add route",
            can_edit,
        ),
        "destinations" => item_editor::panel("destinations", "Destinations", "Where telemetry goes. Credentials are write-only.", "Add destination", can_edit),
        "config" => html! {
            div class="panel" {
                div class="panel-head" {
                    div {
                        h2 class="panel-title" { "Rendered config" }
                        p class="muted" id="config-meta" { "Loading…" }
                    }
                    button type="button" class="btn btn-small" data-copy="#config-content" { (icon(Icon::Copy)) "Copy" }
                }
                pre class="code code-lines" { code id="config-content" {} }
            }
            div class="panel" {
                h2 class="panel-title" { "Why this config" }
                p class="help" { "Every item in the config: the collector's own, or fleet-wide and attached by a label selector." }
                table class="table" id="config-items" data-testid="config-items" {
                    thead { tr { th scope="col" { "Item" } th scope="col" { "Kind" } th scope="col" { "Applies because" } } }
                    tbody {}
                }
            }
            div class="panel" {
                div class="panel-head" {
                    h2 class="panel-title" { "Versions" }
                }
                form class="diff-form" id="diff-form" {
                    div class="field field-inline" {
                        label for="diff-from" { "Compare" }
                        select id="diff-from" {}
                    }
                    div class="field field-inline" {
                        label for="diff-to" { "with" }
                        select id="diff-to" {}
                    }
                    button type="submit" class="btn" { "Show diff" }
                }
                div id="config-diff" class="diff" aria-live="polite" {}
                table class="table table-compact" id="versions-table" {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Created" } th scope="col" { "Hash" } th scope="col" { "Format" } } }
                    tbody {}
                }
            }
        },
        "events" => html! {
            div class="panel" {
                div class="panel-head" {
                    div {
                        h2 class="panel-title" { "Events" }
                        p class="muted" { "Newest first; updates live." }
                    }
                    div class="field field-inline" {
                        label for="events-type" { "Type" }
                        select id="events-type" { option value="" { "All types" } }
                    }
                }
                ol class="events" id="events-list" {}
                p class="empty-state" id="events-empty" hidden { "No events of this type yet." }
            }
        },
        "topology" => html! {
            div class="panel topology-panel" {
                div class="panel-head" {
                    div {
                        h2 class="panel-title" { "Topology" }
                        p class="muted" id="topology-meta" { "Loading…" }
                    }
                    div class="legend" aria-hidden="true" {
                        span class="legend-item kind-source" { "source" }
                        span class="legend-item kind-processor" { "step" }
                        span class="legend-item kind-route" { "route" }
                        span class="legend-item kind-destination" { "destination" }
                        span class="legend-item kind-error" { "errors" }
                    }
                }
                div class="callout callout-info" id="topology-empty" hidden {}
                div class="topology-canvas" id="topology-canvas" {}
            }
        },
        _ => html! {},
    }
}
