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
use super::own_metrics::{count_data_points, Compression, PreparedPushes};
use super::stats::{CallKind, Outcome, Stats};

/// Decodes for `duration` on `threads` threads; returns the elapsed time.
pub fn run(
    threads: usize,
    duration: Duration,
    compression: Compression,
    stats: Arc<Stats>,
) -> std::io::Result<Duration> {
    // The bodies the push benchmark sends.
    let bodies = Arc::new(PreparedPushes::for_benchmarks(compression, unix_nanos())?);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..threads.max(1))
        .map(|worker| {
            let (bodies, stats) = (bodies.clone(), stats.clone());
            std::thread::spawn(move || {
                let mut plain = Vec::new();
                let mut next = worker;
                while Instant::now() < deadline {
                    let body = &bodies.bodies()[next % bodies.bodies().len()];
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
