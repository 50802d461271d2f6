//! The ready-to-paste `config.alloy` shown once when a collector token is minted.

use super::alloy_syntax::quote;

/// Renders the enrollment config: the `remotecfg` block pulling config from linkmesh, and the optional
/// own_metrics chain pushing Alloy's own metrics back with the same token.
pub fn render_enrollment_config_alloy(server_url: &str, token: &str) -> String {
    let server_url = server_url.trim_end_matches('/');
    let url = quote(server_url);
    let bearer = quote(token);
    let authorization = quote(&format!("Bearer {token}"));
    format!(
        r#"logging {{
  level = "info"
}}

remotecfg {{
  // linkmesh base URL: Alloy appends /collector.v1.CollectorService/... itself.
  url            = {url}
  id             = constants.hostname
  poll_frequency = "60s"

  // Per-collector token minted in linkmesh. linkmesh accepts only the Bearer scheme, not basic_auth.
  bearer_token = {bearer}
}}

// Optional: own_metrics -> linkmesh, so the topology canvas shows per-component throughput.
// Uses the same token as remotecfg.bearer_token; the two must match.
prometheus.exporter.self "default" {{ }}

prometheus.scrape "linkmesh_self" {{
  targets         = prometheus.exporter.self.default.targets
  forward_to      = [otelcol.receiver.prometheus.linkmesh.receiver]
  scrape_interval = "30s"
}}

otelcol.receiver.prometheus "linkmesh" {{
  output {{
    metrics = [otelcol.exporter.otlphttp.linkmesh.input]
  }}
}}

otelcol.exporter.otlphttp "linkmesh" {{
  client {{
    endpoint = {url}
    headers  = {{
      "Authorization" = {authorization},
    }}
  }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_token_goes_in_both_places() {
        let config = render_enrollment_config_alloy("https://lm.example.com/", "lmct_abc");
        assert!(config.contains("url            = \"https://lm.example.com\""));
        assert!(config.contains("bearer_token = \"lmct_abc\""));
        assert!(config.contains("\"Authorization\" = \"Bearer lmct_abc\""));
        assert!(config.contains("id             = constants.hostname"));
        assert!(config.contains("poll_frequency = \"60s\""));
    }
}
