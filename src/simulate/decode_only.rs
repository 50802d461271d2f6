//! The decode-only baseline of the own_metrics push benchmark: the same Alloy payloads the pushes
//! carry, inflated and decoded in a loop in-process (no HTTP, no auth, no ingest), one loop per
//! thread. A server's pushes/s divided by this is the share of its push path spent on anything but
//! decoding.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message as _;

use super::fleet::unix_nanos;
use super::own_metrics::{alloy_self_metrics, count_data_points, encode_body, Compression, ScrapeInput};
use super::stats::{CallKind, Outcome, Stats};

/// Distinct payloads cycled through (different hosts and scrape times).
const PAYLOADS: usize = 64;

/// Decodes for `duration` on `threads` threads; returns the elapsed time.
pub fn run(
    threads: usize,
    duration: Duration,
    compression: Compression,
    stats: Arc<Stats>,
) -> std::io::Result<Duration> {
    let now = unix_nanos();
    let mut bodies = Vec::with_capacity(PAYLOADS);
    for index in 0..PAYLOADS {
        let host_id = format!("sim-{}", index + 1);
        let request = alloy_self_metrics(&ScrapeInput {
            host_id: &host_id,
            seed: index as u64,
            process_start_unix_nanos: now.saturating_sub(86_400_000_000_000),
            now_unix_nanos: now.saturating_sub(index as u64 * 30_000_000_000),
        });
        bodies.push(encode_body(&request, compression)?);
    }
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..threads.max(1))
        .map(|worker| {
            let (bodies, stats) = (bodies.clone(), stats.clone());
            std::thread::spawn(move || {
                let mut plain = Vec::new();
                let mut next = worker;
                while Instant::now() < deadline {
                    let body = &bodies[next % bodies.len()];
                    next += 1;
                    let call_started = Instant::now();
                    match decode(body, compression, &mut plain) {
                        Ok(request) => {
                            stats.success(CallKind::Decode, Outcome::Ok, call_started.elapsed());
                            stats.add_points(CallKind::Decode, count_data_points(&request));
                            stats.add_request_bytes(CallKind::Decode, body.len() as u64);
                        }
                        Err(_) => stats.failure(CallKind::Decode, "decode"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(started.elapsed())
}

/// What the server must do at least with a push body: inflate it and decode the protobuf.
pub fn decode(
    body: &[u8],
    compression: Compression,
    scratch: &mut Vec<u8>,
) -> Result<ExportMetricsServiceRequest, std::io::Error> {
    let message = match compression {
        Compression::None => body,
        Compression::Gzip => {
            scratch.clear();
            flate2::read::GzDecoder::new(body).read_to_end(scratch)?;
            scratch.as_slice()
        }
    };
    ExportMetricsServiceRequest::decode(message).map_err(std::io::Error::other)
}
