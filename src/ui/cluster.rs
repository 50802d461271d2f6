//! `/cluster`: the members of this node's cluster, who leads, how far each one lags and how the
//! collectors' slots are spread, kept live from `GET /api/v1/cluster` (every signed-in role may look).

use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::layout::{self, Nav, Page};
use super::{ok_html, signed_in};
use crate::http::principal::Principal;

/// Columns of the members table, in order; the script fills one row per member.
const MEMBER_COLUMNS: [&str; 9] =
    ["Node", "Role", "State", "HTTP", "Cluster port", "Last contact", "Lag", "Applied", "Slots"];

pub async fn page(principal: Option<Principal>, request: HttpRequest) -> HttpResponse {
    let principal = match signed_in(principal, &request) {
        Ok(principal) => principal,
        Err(to_login) => return to_login.into(),
    };
    let content = html! {
        div class="page-header" {
            div {
                h1 { "Cluster" }
                p class="muted" { "The nodes serving this fleet. Collectors may poll any node; each collector's live state is kept by the node that owns its slot." }
            }
            span class="live-indicator" id="live-indicator" data-state="connecting" { span class="dot" aria-hidden="true" {} span class="live-text" { "Connecting…" } }
        }
        div class="callout callout-warning" id="cluster-error" role="alert" hidden {}
        section class="cluster-summary" aria-label="Cluster summary" {
            dl class="summary-grid" {
                div { dt { "Cluster" } dd class="mono" id="cluster-id" { "…" } }
                div { dt { "Leader" } dd id="cluster-leader" { "…" } }
                div { dt { "Term" } dd class="num" id="cluster-term" { "…" } }
                div { dt { "Commit index" } dd class="num" id="cluster-commit" { "…" } }
            }
        }
        section class="panel table-panel" aria-labelledby="members-title" {
            div class="panel-head" {
                h2 class="panel-title" id="members-title" { "Members" }
            }
            table class="table" id="members-table" {
                thead { tr { @for column in MEMBER_COLUMNS { th scope="col" { (column) } } } }
                tbody { tr { td colspan=(MEMBER_COLUMNS.len()) class="muted" { "Loading…" } } }
            }
        }
        section class="panel" aria-labelledby="slots-title" {
            h2 class="panel-title" id="slots-title" { "Slots per node" }
            p class="muted" { "Collectors are spread over 1024 slots; the leader keeps them evenly spread over the live members." }
            div class="slot-bar" id="slot-bar" role="img" aria-label="Slots per node" {}
            ul class="slot-legend" id="slot-legend" {}
        }
    };
    ok_html(layout::page(
        Page {
            title: "Cluster",
            id: "cluster",
            nav: Nav::Cluster,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}
