//! OpAMP (open-telemetry/opamp-spec) for upstream OpenTelemetry Collectors managed by the
//! `opampsupervisor` or the collector's `opamp` extension: the wire types
//! (`proto/opamp/v1/opamp.proto`, generated into [`crate::proto::opamp::v1`]), the WebSocket
//! framing, agent identity and capability bits. Pure: the transports on `/v1/opamp` and the
//! per-collector conversation build on these (issue 18).

pub mod capabilities;
pub mod components;
pub mod connections;
pub mod credentials;
pub mod frame;
pub mod instance_uid;
pub mod session;

pub use capabilities::{AgentCapabilities, SERVER_CAPABILITIES};
pub use connections::{ConnectionWatch, Notice, OpampConnections};
pub use instance_uid::{InstanceUid, InstanceUidError};
pub use session::AgentSession;
