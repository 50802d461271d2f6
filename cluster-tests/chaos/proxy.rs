//! The delaying TCP proxy on the peer path (these kernels have no `netem`). Each node's cluster port
//! listens on loopback inside its namespace; peers reach it only through this proxy, which listens on
//! the node's lab address (the address the node advertises) and holds every chunk of bytes, in both
//! directions, for the configured delay plus a random jitter. Order is kept: a chunk never leaves
//! before the one read before it.
//!
//! The proxy runs on a thread of the test process that moved into the node's namespace first, so its
//! sockets are there and nftables rules of that namespace apply to them as to the node's own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::lab;

/// The delay and jitter one proxy applies now, in milliseconds; changed while it runs.
#[derive(Default)]
pub struct Knob {
    delay_ms: AtomicU64,
    jitter_ms: AtomicU64,
}

impl Knob {
    pub fn set(&self, delay: Duration, jitter: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::Relaxed);
        self.jitter_ms.store(jitter.as_millis() as u64, Ordering::Relaxed);
    }

    fn hold(&self) -> Duration {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        let jitter = self.jitter_ms.load(Ordering::Relaxed);
        let extra = if jitter == 0 { 0 } else { rand::rng().random_range(0..=jitter) };
        Duration::from_millis(delay + extra)
    }
}

/// Starts the proxy for a node: `listen` (the advertised address) → `upstream` (the node's cluster
/// port on loopback), both inside `namespace`. Returns once it listens.
pub fn start(namespace: String, listen: SocketAddr, upstream: SocketAddr) -> Arc<Knob> {
    let knob = Arc::new(Knob::default());
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let thread_knob = knob.clone();
    std::thread::Builder::new()
        .name(format!("proxy-{namespace}"))
        .spawn(move || {
            lab::enter_ns(&namespace);
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind(listen)
                    .await
                    .unwrap_or_else(|error| panic!("proxy bind {listen}: {error}"));
                ready_tx.send(()).expect("ready");
                loop {
                    let Ok((inbound, _)) = listener.accept().await else { continue };
                    let knob = thread_knob.clone();
                    tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(upstream).await {
                            relay(inbound, outbound, knob).await;
                        }
                    });
                }
            });
        })
        .expect("proxy thread");
    ready.recv_timeout(Duration::from_secs(10)).expect("the proxy never listened");
    knob
}

async fn relay(inbound: TcpStream, outbound: TcpStream, knob: Arc<Knob>) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forward = pipe(in_read, out_write, knob.clone());
    let backward = pipe(out_read, in_write, knob);
    let _ = tokio::join!(forward, backward);
}

/// Copies `from` to `to`, each chunk held until its time; closes `to`'s write side at `from`'s end.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    knob: Arc<Knob>,
) {
    let (chunks_tx, mut chunks) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = chunks.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut last_due = Instant::now();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                last_due = last_due.max(Instant::now() + knob.hold());
                if chunks_tx.send((last_due, buffer[..read].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(chunks_tx);
    let _ = writer.await;
}
