//! The Alloy module a collector loads over remotecfg.

use super::{alloy_syntax, nothing_configured, RenderInput};

pub fn render_alloy_module(input: &RenderInput<'_>) -> String {
    if nothing_configured(input) {
        return format!(
            "// linkmesh: no sources or routes configured for collector {}\n",
            alloy_syntax::quote(input.collector_name)
        );
    }
    String::new()
}
