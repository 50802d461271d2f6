//! What a collector's own metrics mean to linkmesh, and how they are read out of an OTLP push. Pure
//! functions over plain data, shared by the OTLP receiver (`http/otlp.rs`, which extracts) and the
//! collector actor (`actors/throughput.rs`, which turns the extracted points into rates).
//!
//! Two producers push here (facts: `shared/reference/opamp-and-self-telemetry.md` §4):
//!
//! - **Alloy** (`prometheus.exporter.self` → `prometheus.scrape` → `otelcol.receiver.prometheus` →
//!   `otelcol.exporter.otlphttp`): every component metric carries `component_id`. Older Alloy puts the
//!   module path in it (`remotecfg/linkmesh_pipeline.default/otelcol.receiver.otlp.src_1`), newer Alloy
//!   moves the path to `component_path`; both reduce to the id relative to its module, which is how the
//!   rendered graph names components. Counters may arrive with or without the Prometheus `_total`.
//!   `alloy_component_graph_connection{from,to}` gives the edges between components.
//! - **OpenTelemetry Collector** internal metrics: `otelcol_receiver_*`, `otelcol_processor_*`,
//!   `otelcol_exporter_*` with the component in the `receiver` / `processor` / `exporter` attribute
//!   (`otlp/src_1`). Component ids are unique per kind only, so the kind is part of the key.
//!
//! - [`metric_rules`]: the one mapping table, [`metric_rules::METRIC_RULES`]: which metrics are read and
//!   which of a component's rates each one feeds; component identity ([`metric_rules::ComponentKey`]).
//! - [`apply_signals`]: the figures of Alloy's own metrics that tell whether a remote config loaded
//!   (`remotecfg_*`, controller component counts and edges), one [`crate::apply_status::ApplySignals`]
//!   per scrape, for the inference in [`crate::apply_status`].
//! - [`otlp_values`]: attribute and point values as text and numbers, for both readers.
//! - [`push_view`]: the part of a push those readers look at, borrowed from the request; [`wire`] reads
//!   it straight from protobuf bytes (accepting exactly what prost accepts) without building the request.
//! - [`extract`]: picks those metrics out of an `ExportMetricsServiceRequest`, checks every point and
//!   keys it by series, into a [`MetricsBatch`] for the collector's actor.

pub mod apply_signals;
pub mod extract;
pub mod metric_rules;
pub mod otlp_values;
pub mod push_view;
pub mod wire;

pub use extract::{extract, extract_from, MetricPoint, MetricsBatch};
