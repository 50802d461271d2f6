//! `/settings`: service accounts and their tokens, users, and the audit log for admins (the API
//! enforces the same); and for every signed-in user, their own password and sessions ("Your account",
//! also on the page other roles get with its 403).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::layout::{self, icon, Icon, Nav, Page};
use super::{html as html_response, ok_html, signed_in};
use crate::http::principal::{Principal, PrincipalKind};

const ROLES: [(&str, &str); 4] = [
    ("admin", "admin — everything, including users and service accounts"),
    ("operator", "operator — collectors, their tokens and pipelines"),
    ("pipeline_engineer", "pipeline_engineer — pipelines"),
    ("viewer", "viewer — read only"),
];

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    if !principal.role.can_manage_access() {
        let content = html! {
            div class="empty-state panel" {
                h1 { "Settings" }
                p { "Only admins manage users and service accounts. You are signed in as " strong { (principal.name) } " (" (principal.role.as_str()) ")." }
            }
            (account_panel(&principal))
        };
        return html_response(
            StatusCode::FORBIDDEN,
            layout::page(
                Page {
                    title: "Settings",
                    id: "settings-denied",
                    nav: Nav::Settings,
                    principal: Some(&principal),
                    topology: false,
                },
                content,
            ),
        );
    }
    let content = html! {
        div class="page-header" {
            div {
                h1 { "Settings" }
                p class="muted" { "Who may use linkmesh: people sign in with a password; automation uses service-account tokens." }
            }
        }
        (account_panel(&principal))
        section class="panel" aria-labelledby="sa-title" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="sa-title" { "Service accounts" }
                    p class="muted" { "For the CLI and scripts: " code { "Authorization: Bearer lmsat_…" } " on every " code { "/api/v1" } " route." }
                }
            }
            div class="callout callout-success" id="sa-token-box" hidden {
                p { strong { "New token for " span id="sa-token-account" {} "." } " Copy it now — it is not shown again." }
                div class="copy-row" {
                    label for="sa-token" class="visually-hidden" { "Service-account token" }
                    input id="sa-token" class="mono" type="text" readonly;
                    button type="button" class="btn" data-copy="#sa-token" { (icon(Icon::Copy)) "Copy" }
                }
            }
            table class="table" id="sa-table" {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {}
            }
            div id="sa-tokens" hidden {
                h3 id="sa-tokens-title" { "Tokens" }
                p class="muted" { "A revoked token is refused from the next request on. Last use is recorded to within a few minutes." }
                table class="table" id="sa-tokens-table" {
                    thead { tr { th scope="col" { "Label" } th scope="col" { "Prefix" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                    tbody {}
                }
            }
            form class="form inline-form" id="sa-form" novalidate {
                h3 { "New service account" }
                div class="form-error" role="alert" hidden {}
                div class="form-row" {
                    div class="field" data-field="name" {
                        label for="sa-name" { "Name" }
                        input id="sa-name" name="name" type="text" required maxlength="128" placeholder="ci-deployer" autocomplete="off";
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="role" {
                        label for="sa-role" { "Role" }
                        (role_select("sa-role"))
                        p class="field-error" hidden {}
                    }
                    div class="field field-button" {
                        button type="submit" class="btn btn-primary" { (icon(Icon::Plus)) "Create" }
                    }
                }
            }
        }
        section class="panel" aria-labelledby="users-title" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="users-title" { "Users" }
                    p class="muted" { "People who sign in to this UI. Disabling or deleting a user ends their sessions at once; the last enabled admin stays." }
                }
            }
            table class="table" id="users-table" {
                thead { tr { th scope="col" { "Username" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Created" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {}
            }
            form class="form inline-form" id="user-form" novalidate {
                h3 { "Add user" }
                div class="form-error" role="alert" hidden {}
                div class="form-row" {
                    div class="field" data-field="username" {
                        label for="user-name" { "Username" }
                        input id="user-name" name="username" type="text" required maxlength="128" autocomplete="off";
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="role" {
                        label for="user-role" { "Role" }
                        (role_select("user-role"))
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="password" {
                        label for="user-password" { "Initial password" }
                        input id="user-password" name="password" type="password" required minlength="12" autocomplete="new-password" aria-describedby="user-password-help";
                        p class="help" id="user-password-help" { "At least 12 characters; share it over a safe channel." }
                        p class="field-error" hidden {}
                    }
                    div class="field field-button" {
                        button type="submit" class="btn btn-primary" { (icon(Icon::Plus)) "Add user" }
                    }
                }
            }
        }
        section class="panel" aria-labelledby="audit-title" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="audit-title" { "Audit log" }
                    p class="muted" { "Every change made with a session or a token: who, from where, what, and the outcome. Newest first; the same on every node." }
                }
                button type="button" class="btn btn-small" id="audit-refresh" { "Refresh" }
            }
            table class="table" id="audit-table" {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "From" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" } } }
                tbody {}
            }
        }
        dialog id="token-dialog" class="dialog" aria-labelledby="token-dialog-title" {
            form method="dialog" class="form" id="token-form" novalidate {
                header class="dialog-header" {
                    h2 id="token-dialog-title" { "New token" }
                    button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                }
                div class="dialog-body" {
                    div class="form-error" role="alert" hidden {}
                    div class="field" data-field="label" {
                        label for="token-label" { "Label" }
                        input id="token-label" name="label" type="text" placeholder="laptop" autocomplete="off";
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="expires_in_days" {
                        label for="token-expiry" { "Expires after (days)" }
                        input id="token-expiry" name="expires_in_days" type="number" min="0" step="1" placeholder="365" aria-describedby="token-expiry-help";
                        p class="help" id="token-expiry-help" { "Empty: 365 days. 0: never (only if the server allows tokens that never expire)." }
                        p class="field-error" hidden {}
                    }
                }
                footer class="dialog-footer" {
                    button type="button" class="btn" data-action="close-dialog" { "Cancel" }
                    button type="submit" class="btn btn-primary" { "Create token" }
                }
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: "Settings",
            id: "settings",
            nav: Nav::Settings,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}

/// The signed-in user's own password and sessions (service accounts have neither).
fn account_panel(principal: &Principal) -> Markup {
    if principal.kind != PrincipalKind::User {
        return html! {};
    }
    html! {
        section class="panel" aria-labelledby="account-title" id="account-panel" data-user-id=(principal.id) {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="account-title" { "Your account" }
                    p class="muted" { "Signed in as " strong { (principal.name) } "." }
                }
            }
            form class="form inline-form" id="password-form" novalidate {
                h3 { "Change your password" }
                div class="form-error" role="alert" hidden {}
                div class="form-row" {
                    div class="field" data-field="current_password" {
                        label for="current-password" { "Current password" }
                        input id="current-password" name="current_password" type="password" required autocomplete="current-password";
                        p class="field-error" hidden {}
                    }
                    div class="field" data-field="new_password" {
                        label for="new-password" { "New password" }
                        input id="new-password" name="new_password" type="password" required minlength="12" autocomplete="new-password" aria-describedby="new-password-help";
                        p class="help" id="new-password-help" { "At least 12 characters. Your other sessions end; this one stays." }
                        p class="field-error" hidden {}
                    }
                    div class="field field-button" {
                        button type="submit" class="btn btn-primary" { "Change password" }
                    }
                }
            }
            h3 { "Your sessions" }
            table class="table" id="sessions-table" {
                thead { tr { th scope="col" { "Signed in" } th scope="col" { "From" } th scope="col" { "Expires" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {}
            }
        }
    }
}

fn role_select(id: &str) -> Markup {
    html! {
        select id=(id) name="role" {
            @for (role, label) in ROLES {
                option value=(role) selected[role == "viewer"] { (label) }
            }
        }
    }
}
