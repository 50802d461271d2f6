//! `/pipelines`: tenant-wide pipelines and their step editor. Routes reference pipelines by id.

use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::layout::{self, icon, Icon, Nav, Page};
use super::{ok_html, signed_in};
use crate::http::principal::Principal;

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let can_edit = principal.role.can_manage_pipelines();
    let content = html! {
        div id="pipelines-root" data-can-edit=(can_edit) {
            div class="page-header" {
                div {
                    h1 { "Pipelines" }
                    p class="muted" { "Reusable chains of processing steps. A route sends the records it matches through one pipeline to its destinations." }
                }
                @if can_edit {
                    button type="button" class="btn btn-primary" data-action="new-pipeline" { (icon(Icon::Plus)) "New pipeline" }
                }
            }
            div class="split" {
                nav class="panel list-panel" aria-label="Pipelines" {
                    ul class="item-list" id="pipeline-list" { li class="muted" { "Loading…" } }
                }
                div class="panel editor-panel" id="pipeline-editor" {
                    div class="empty-state" id="pipeline-placeholder" {
                        h2 { "Select a pipeline" }
                        p { "Or create one: give it a name, the signals it applies to and its steps." }
                    }
                    form id="pipeline-form" class="form" novalidate hidden {
                        div class="form-error" role="alert" hidden {}
                        h2 class="panel-title" id="pipeline-form-title" { "New pipeline" }
                        div class="field" data-field="name" {
                            label for="pipeline-name" { "Name" }
                            input id="pipeline-name" name="name" type="text" required maxlength="128" autocomplete="off";
                            p class="field-error" hidden {}
                        }
                        div class="field" data-field="description" {
                            label for="pipeline-description" { "Description" }
                            textarea id="pipeline-description" name="description" rows="2" {}
                            p class="field-error" hidden {}
                        }
                        fieldset class="field checks" data-field="signals" {
                            legend { "Signals" }
                            @for signal in ["logs", "metrics", "traces"] {
                                label class="check" { input type="checkbox" name="signals" value=(signal) checked; (signal) }
                            }
                            p class="field-error" hidden {}
                        }
                        div class="steps-editor" data-field="steps" {
                            div class="steps-head" {
                                h3 { "Steps" }
                                p class="help" { "Run in order on every record the route sends through this pipeline." }
                            }
                            ol class="step-list" id="step-list" {}
                            p class="field-error" hidden {}
                            div class="add-step" {
                                label for="add-step-type" class="visually-hidden" { "Step type" }
                                select id="add-step-type" {}
                                button type="button" class="btn" data-action="add-step" { (icon(Icon::Plus)) "Add step" }
                            }
                        }
                        div class="form-actions" {
                            button type="submit" class="btn btn-primary" { "Save pipeline" }
                            button type="button" class="btn btn-danger-ghost" data-action="delete-pipeline" hidden { "Delete" }
                        }
                    }
                }
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: "Pipelines",
            id: "pipelines",
            nav: Nav::Pipelines,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}
