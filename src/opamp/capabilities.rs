//! Capability bits: what an agent says it can do (`AgentToServer.capabilities`, in every message)
//! decides what the server may offer it, and what linkmesh offers in return.

use crate::proto::opamp::v1::{AgentCapabilities as Bit, ServerCapabilities as ServerBit};

/// What linkmesh offers every agent: it accepts status reports and effective configs, and offers
/// remote config and connection settings (the heartbeat interval, own_metrics). No packages.
pub const SERVER_CAPABILITIES: u64 = ServerBit::AcceptsStatus as u64
    | ServerBit::OffersRemoteConfig as u64
    | ServerBit::AcceptsEffectiveConfig as u64
    | ServerBit::OffersConnectionSettings as u64;

/// The capability bits one agent reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCapabilities(pub u64);

/// Every bit the protocol defines, with the name the UI shows.
const NAMED: [(Bit, &str); 16] = [
    (Bit::ReportsStatus, "reports status"),
    (Bit::AcceptsRemoteConfig, "accepts remote config"),
    (Bit::ReportsEffectiveConfig, "reports effective config"),
    (Bit::AcceptsPackages, "accepts packages"),
    (Bit::ReportsPackageStatuses, "reports package statuses"),
    (Bit::ReportsOwnTraces, "reports own traces"),
    (Bit::ReportsOwnMetrics, "reports own metrics"),
    (Bit::ReportsOwnLogs, "reports own logs"),
    (Bit::AcceptsOpAmpConnectionSettings, "accepts OpAMP connection settings"),
    (Bit::AcceptsOtherConnectionSettings, "accepts other connection settings"),
    (Bit::AcceptsRestartCommand, "accepts restart command"),
    (Bit::ReportsHealth, "reports health"),
    (Bit::ReportsRemoteConfig, "reports remote config status"),
    (Bit::ReportsHeartbeat, "reports heartbeats"),
    (Bit::ReportsAvailableComponents, "reports available components"),
    (Bit::ReportsConnectionSettingsStatus, "reports connection settings status"),
];

impl AgentCapabilities {
    fn has(self, bit: Bit) -> bool {
        self.0 & bit as u64 != 0
    }

    /// The server may offer a remote config only to an agent that accepts one (spec, "Configuration").
    pub fn accepts_remote_config(self) -> bool {
        self.has(Bit::AcceptsRemoteConfig)
    }

    /// APPLYING / APPLIED / FAILED will arrive; without it, delivery is all the server can know.
    pub fn reports_remote_config(self) -> bool {
        self.has(Bit::ReportsRemoteConfig)
    }

    pub fn reports_effective_config(self) -> bool {
        self.has(Bit::ReportsEffectiveConfig)
    }

    pub fn reports_health(self) -> bool {
        self.has(Bit::ReportsHealth)
    }

    /// An own_metrics destination may be offered.
    pub fn reports_own_metrics(self) -> bool {
        self.has(Bit::ReportsOwnMetrics)
    }

    /// New credentials may be handed over in `connection_settings.opamp.headers`.
    pub fn accepts_opamp_connection_settings(self) -> bool {
        self.has(Bit::AcceptsOpAmpConnectionSettings)
    }

    pub fn accepts_restart_command(self) -> bool {
        self.has(Bit::AcceptsRestartCommand)
    }

    pub fn reports_heartbeat(self) -> bool {
        self.has(Bit::ReportsHeartbeat)
    }

    pub fn reports_available_components(self) -> bool {
        self.has(Bit::ReportsAvailableComponents)
    }

    /// The names of the bits set, in the protocol's order; bits the protocol does not define are
    /// left out (an agent must not set them).
    pub fn names(self) -> Vec<&'static str> {
        NAMED.iter().filter(|(bit, _)| self.has(*bit)).map(|(_, name)| *name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkmesh_offers_status_remote_config_effective_config_and_connection_settings() {
        assert_eq!(SERVER_CAPABILITIES, 0x27);
    }

    #[test]
    fn the_real_supervisors_bits_read_as_what_it_does() {
        // opampsupervisor v0.149.0 with remote config and restarts enabled sent 0x7C47
        // (reference/opamp-and-self-telemetry.md, 3.4b).
        let supervisor = AgentCapabilities(0x7C47);
        assert!(supervisor.accepts_remote_config() && supervisor.reports_remote_config());
        assert!(supervisor.reports_effective_config() && supervisor.reports_health());
        assert!(supervisor.reports_own_metrics() && supervisor.accepts_restart_command());
        assert!(supervisor.reports_heartbeat() && supervisor.reports_available_components());
        assert!(!supervisor.accepts_opamp_connection_settings());
        assert_eq!(supervisor.names().len(), 9);
        // The Python client's defaults (0x3007): no health, no own metrics.
        let python = AgentCapabilities(0x3007);
        assert!(python.accepts_remote_config() && !python.reports_health() && !python.reports_own_metrics());
        assert_eq!(AgentCapabilities(1 << 40).names(), Vec::<&str>::new(), "undefined bits are not named");
    }
}
