//! The ready-to-paste configs shown once with a new token: `config.alloy` when an Alloy collector's
//! token is minted, the `opampsupervisor`'s `supervisor.yaml` when an OpAMP enrollment token is
//! created or an `opamp` collector's own token is minted.

use super::alloy_syntax::quote;
use super::yaml::quote as quote_yaml;

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

/// Which token a `supervisor.yaml` carries, which its opening comment explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorToken {
    /// An enrollment token (`lmet_…`): any number of agents, each enrolled as a collector of its own.
    Enrollment,
    /// One `opamp` collector's own token (`lmct_…`): the one agent of that collector.
    Collector,
}

/// The `opampsupervisor` config for agents connecting with `token` at `server_url` (linkmesh's base
/// URL; the supervisor gets the WebSocket endpoint, `wss://` under https): an enrollment token's, shown
/// when it is created, or one `opamp` collector's own, shown when it is minted. The capabilities
/// linkmesh uses are on; OpAMP connection settings stay off: with them on, the supervisor v0.149
/// reconnects without TLS verification whenever settings without a certificate arrive.
pub fn render_supervisor_yaml(server_url: &str, token: &str, kind: SupervisorToken) -> String {
    let server_url = server_url.trim_end_matches('/');
    let endpoint = match server_url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/v1/opamp"),
        Some((_, rest)) => format!("ws://{rest}/v1/opamp"),
        None => format!("ws://{server_url}/v1/opamp"),
    };
    let endpoint = quote_yaml(&endpoint);
    let authorization = quote_yaml(&format!("Bearer {token}"));
    let about_token = match kind {
        SupervisorToken::Enrollment => {
            "The enrollment token enrolls each new
# agent as a collector of its own, and keeps authenticating it until the token is revoked."
        }
        SupervisorToken::Collector => {
            "The token is one collector's own: use this
# file for that collector's agent only. Minting the collector's token again rotates it out."
        }
    };
    format!(
        r#"# opampsupervisor config (supervisor.yaml) for linkmesh. {about_token}
server:
  endpoint: {endpoint}
  headers:
    Authorization: [{authorization}]

capabilities:
  accepts_remote_config: true
  reports_remote_config: true
  reports_effective_config: true
  reports_health: true
  reports_heartbeat: true
  reports_own_metrics: true
  reports_available_components: true
  accepts_restart_command: true
  # Left off on purpose: the supervisor then drops TLS verification when it takes new settings.
  accepts_opamp_connection_settings: false

agent:
  # The collector the supervisor runs; it needs the opamp extension (otelcol-contrib has it).
  executable: /usr/local/bin/otelcol-contrib

storage:
  # Keeps the agent's instance uid (its identity in linkmesh) and the last config it received.
  directory: /var/lib/otelcol/supervisor
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervisor_config_carries_the_websocket_endpoint_and_the_token() {
        let config =
            render_supervisor_yaml("https://lm.example.com/", "lmet_abc", SupervisorToken::Enrollment);
        assert!(config.contains("endpoint: \"wss://lm.example.com/v1/opamp\""), "{config}");
        assert!(config.contains("Authorization: [\"Bearer lmet_abc\"]"), "{config}");
        assert!(
            config.contains("accepts_remote_config: true") && config.contains("reports_remote_config: true")
        );
        let plain = render_supervisor_yaml("http://10.0.0.5:8080", "lmet_abc", SupervisorToken::Enrollment);
        assert!(plain.contains("endpoint: \"ws://10.0.0.5:8080/v1/opamp\""), "{plain}");
    }

    #[test]
    fn a_collector_tokens_supervisor_config_says_it_serves_that_collector_only() {
        let config = render_supervisor_yaml("http://lm:8080", "lmct_abc", SupervisorToken::Collector);
        assert!(config.contains("Authorization: [\"Bearer lmct_abc\"]"), "{config}");
        assert!(config.contains("that collector's agent only") && !config.contains("enrolls"), "{config}");
        let enrollment = render_supervisor_yaml("http://lm:8080", "lmct_abc", SupervisorToken::Enrollment);
        let body = |text: &str| text.split_once("\nserver:").map(|(_, rest)| rest.to_owned());
        assert_eq!(body(&config), body(&enrollment), "the same config but for its opening comment");
    }

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
