//! The markup the item editor of `assets/app.js` (`itemEditor`) fills: a panel per kind of item
//! (sources, destinations, routes) and the one add/edit dialog. Shared by a collector's tabs and the
//! fleet-wide page, which differ only in the API base the script is given.

use maud::{html, Markup};

use super::layout::{icon, Icon};

/// The panel listing one kind of item (`#{kind}-list`), with its add button for operators.
pub fn panel(kind: &str, title: &str, help: &str, add_label: &str, can_edit: bool) -> Markup {
    html! {
        div class="panel" {
            div class="panel-head" {
                div {
                    h2 class="panel-title" { (title) }
                    p class="muted" { (help) }
                }
                @if can_edit {
                    button type="button" class="btn btn-primary" data-action="add-item" data-kind=(kind) { (icon(Icon::Plus)) (add_label) }
                }
            }
            div id={ (kind) "-list" } { p class="muted" { "Loading…" } }
        }
    }
}

/// The add/edit dialog; the script builds its fields for the kind and type chosen.
pub fn dialog() -> Markup {
    html! {
        dialog id="item-dialog" class="dialog" aria-labelledby="item-dialog-title" {
            form method="dialog" class="form" id="item-form" novalidate {
                header class="dialog-header" {
                    h2 id="item-dialog-title" { "Add" }
                    button type="button" class="btn btn-ghost btn-icon" data-action="close-dialog" aria-label="Close" { "×" }
                }
                div class="dialog-body" {
                    div class="form-error" role="alert" hidden {}
                    div id="item-fields" {}
                }
                footer class="dialog-footer" {
                    button type="button" class="btn" data-action="close-dialog" { "Cancel" }
                    button type="submit" class="btn btn-primary" id="item-submit" { "Save" }
                }
            }
        }
    }
}
