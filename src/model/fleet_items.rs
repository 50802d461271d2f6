//! Fleet-wide sources, destinations and routes: defined once, attached to every collector whose
//! operator-set labels match the item's selector (`model/labels.rs`).
//!
//! A collector's config is the deterministic merge of its own items and the fleet-wide items that
//! apply to it (`FleetState::render_input`): its own first, then the fleet-wide ones, each group in
//! id order; routes are then ordered by priority by the renderer, as before. A fleet-wide route sends
//! to fleet-wide destinations; for one collector it sends to those of them that apply to that
//! collector, so one route can say "to the regional store" with one destination per region. A
//! fleet-wide route none of whose destinations applies to a collector is left out of its config (the
//! Config tab says so). Per-collector routes keep sending to the collector's own destinations only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::labels::{Labels, Selector};
use super::pipeline::{Destination, Route, Source};

/// One fleet-wide item and the selector that attaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attached<T> {
    pub selector: Selector,
    pub item: T,
}

impl<T> Attached<T> {
    pub fn applies_to(&self, labels: &Labels) -> bool {
        self.selector.matches(labels)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetItems {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, Attached<Source>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, Attached<Destination>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, Attached<Route>>,
}

impl FleetItems {
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.destinations.is_empty() && self.routes.is_empty()
    }

    /// Fleet-wide routes that name `destination_id` (for "still used by").
    pub fn routes_using_destination(&self, destination_id: &str) -> Vec<String> {
        self.routes
            .values()
            .filter(|attached| attached.item.destination_ids.iter().any(|id| id == destination_id))
            .map(|attached| format!("fleet-wide route {:?}", attached.item.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attached<T>(selector: &str, item: T) -> Attached<T> {
        Attached { selector: Selector::parse(selector).expect("selector"), item }
    }

    #[test]
    fn fleet_destinations_apply_where_their_selector_matches() {
        let mut items = FleetItems::default();
        items
            .destinations
            .insert("d-eu".into(), attached("region=eu", Destination::for_test("d-eu", "loki")));
        items
            .destinations
            .insert("d-us".into(), attached("region=us", Destination::for_test("d-us", "loki")));
        items
            .routes
            .insert("r".into(), attached("", Route::for_test("r", 10, "true", false, &["d-eu", "d-us"])));
        let eu: Labels = [("region".to_owned(), "eu".to_owned())].into();
        let applying: Vec<&str> =
            items.destinations.values().filter(|d| d.applies_to(&eu)).map(|d| d.item.id.as_str()).collect();
        assert_eq!(applying, ["d-eu"]);
        assert_eq!(items.routes_using_destination("d-us"), ["fleet-wide route \"r\""]);
    }
}
