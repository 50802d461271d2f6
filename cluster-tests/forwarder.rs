//! A TCP forwarder on a free loopback port whose backend can be switched: the load balancer operators
//! put in front of a cluster, reduced to what the tests need. Each accepted connection is dialled to
//! the backend of the moment and copied both ways until either side ends, so a killed node's
//! connections end with it and their agents reconnect — to whatever the forwarder points at by then.
//! A backend that refuses the dial gets the client's connection closed, as a load balancer without a
//! healthy backend does.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Routing {
    /// `host:port` new connections are dialled to.
    backend: String,
    /// Connections dialled so far, by backend.
    dialled: BTreeMap<String, usize>,
    /// The tasks copying open connections (some may have ended).
    open: Vec<tokio::task::AbortHandle>,
}

pub struct Forwarder {
    /// `host:port` clients connect to.
    pub addr: String,
    routing: Arc<Mutex<Routing>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free loopback port, forwarding to `backend` (`host:port`).
    pub async fn start(backend: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the forwarder");
        let addr = listener.local_addr().expect("forwarder address").to_string();
        let routing = Arc::new(Mutex::new(Routing { backend: backend.to_owned(), ..Routing::default() }));
        let shared = routing.clone();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let backend = shared.lock().backend.clone();
                let routing = shared.clone();
                let copying = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&backend).await else { return };
                    *routing.lock().dialled.entry(backend).or_default() += 1;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                let mut routing = shared.lock();
                routing.open.retain(|task| !task.is_finished());
                routing.open.push(copying.abort_handle());
            }
        });
        Forwarder { addr, routing, accepting }
    }

    /// New connections go to `backend` (`host:port`); open ones stay where they are.
    pub fn point_at(&self, backend: &str) {
        self.routing.lock().backend = backend.to_owned();
    }

    /// Closes every open connection (both sides), as a load balancer taking a backend out of service
    /// does: their clients reconnect, to the backend of the moment.
    pub fn cut(&self) {
        for task in self.routing.lock().open.drain(..) {
            task.abort();
        }
    }

    /// Connections dialled to `backend` so far.
    pub fn dialled(&self, backend: &str) -> usize {
        self.routing.lock().dialled.get(backend).copied().unwrap_or(0)
    }

    /// `http://host:port` of the forwarder.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}
