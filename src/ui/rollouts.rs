//! `/rollouts`: how changes reach the collectors they alter, kept live from `GET /api/v1/rollouts`.
//! A rollout's detail shows its batches, each collector's progress (failed first) and, for
//! operators, resume, abort and rollback.

use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::layout::{self, Nav, Page};
use super::{ok_html, signed_in};
use crate::http::principal::Principal;

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let can_edit = principal.role.can_manage_collectors();
    let content = html! {
        div class="page-header" {
            div {
                h1 { "Rollouts" }
                p class="muted" { "Every change that gives collectors a new config. A staged change reaches a first batch, then the rest once they applied it; a collector that reports FAILED pauses it." }
            }
        }
        div class="callout callout-warning" id="rollouts-error" role="alert" hidden {}
        section class="panel table-panel" aria-labelledby="rollouts-title" {
            div class="panel-head" { h2 class="panel-title" id="rollouts-title" { "Recent rollouts" } }
            table class="table" id="rollouts-table" data-testid="rollouts-table" {
                thead { tr {
                    th scope="col" { "Change" } th scope="col" { "State" } th scope="col" { "Progress" }
                    th scope="col" { "Started by" } th scope="col" { "Started" }
                } }
                tbody { tr { td colspan="5" class="muted" { "Loading…" } } }
            }
        }
        section class="panel" id="rollout-detail" data-testid="rollout-detail" data-can-edit=(can_edit) hidden aria-live="polite" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" id="rollout-title" {}
                    p class="muted" id="rollout-meta" {}
                }
                @if can_edit {
                    div class="btn-row" {
                        button type="button" class="btn" data-action="rollout-resume" hidden { "Resume" }
                        button type="button" class="btn btn-danger" data-action="rollout-abort" hidden { "Abort" }
                        button type="button" class="btn" data-action="rollout-rollback" hidden { "Roll back" }
                    }
                }
            }
            div class="callout callout-warning" id="rollout-paused" role="status" hidden {}
            div id="rollout-batches" class="rollout-batches" {}
            table class="table" id="rollout-collectors" {
                thead { tr { th scope="col" { "Collector" } th scope="col" { "Batch" } th scope="col" { "Progress" } th scope="col" { "Status" } th scope="col" { "Error" } } }
                tbody {}
            }
        }
    };
    ok_html(layout::page(
        Page {
            title: "Rollouts",
            id: "rollouts",
            nav: Nav::Rollouts,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}
