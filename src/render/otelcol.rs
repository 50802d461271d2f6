//! OpenTelemetry Collector YAML for `opamp` collectors.

use super::{nothing_configured, RenderInput};

pub fn render_otelcol_yaml(input: &RenderInput<'_>) -> String {
    if nothing_configured(input) {
        return format!(
            "# linkmesh: no sources or routes configured for collector {:?}\n",
            input.collector_name
        );
    }
    String::new()
}
