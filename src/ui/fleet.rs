//! `/fleet`: fleet-wide sources, destinations and routes, each attached by a label selector to every
//! collector whose operator-set labels match (`model/fleet_items.rs`). The script's item editor
//! (`itemEditor` in `assets/app.js`, scope `fleet`) fills the panels from `/api/v1/sources`,
//! `/destinations` and `/routes`, and asks how to roll out a change that alters collectors' configs.

use actix_web::{HttpRequest, HttpResponse};
use maud::html;

use super::item_editor;
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
        div id="fleet-root" data-can-edit=(can_edit) {
            div class="page-header" {
                div {
                    h1 { "Fleet-wide" }
                    p class="muted" {
                        "Sources, destinations and routes defined once and attached by a label selector to every collector whose labels match. "
                        "Labels are set by operators on the collectors' pages or in bulk from the list, never by the collectors themselves. "
                        "A collector's Config tab says why each item applies."
                    }
                }
            }
            (item_editor::panel("sources", "Sources", "Where the collectors a selector matches receive telemetry from.", "Add source", can_edit))
            (item_editor::panel(
                "routes",
                "Routes",
                "Each sends to the fleet-wide destinations among its own that apply to a collector; it is left out where none does.",
                "Add route",
                can_edit,
            ))
            (item_editor::panel("destinations", "Destinations", "Where telemetry goes. Credentials are write-only.", "Add destination", can_edit))
            (item_editor::dialog())
        }
    };
    ok_html(layout::page(
        Page {
            title: "Fleet-wide",
            id: "fleet",
            nav: Nav::Fleet,
            principal: Some(&principal),
            topology: false,
        },
        content,
    ))
}
