//! Same-run baselines for `scripts/bench.sh`:
//!
//! - `bench_baseline serve`: a bare actix-web server answering every `collector.v1.CollectorService`
//!   call with a fixed Connect response (GetConfig: `not_modified`), with the body read as the real
//!   handler reads it and no auth, actor or Raft behind it. linkmesh's poll path divided by this is
//!   the share of the machine's HTTP capacity the poll path keeps.
//! - `bench_baseline fsync`: write-then-fdatasync of a small record in a loop in a directory — what a
//!   durable Raft append costs at least on that disk.
//!
//! Like `linkmesh serve`, `serve` prints `listening on <addr>` on stdout once bound.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::{Parser, Subcommand};
use linkmesh::config::human::parse_duration;
use linkmesh::proto::collector::v1 as pb;
use prost::Message as _;

#[derive(Parser)]
#[command(name = "bench_baseline", about = "Baselines for scripts/bench.sh")]
struct Cli {
    #[command(subcommand)]
    command: BaselineCommand,
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Serve a fixed Connect response on every CollectorService method.
    Serve {
        #[arg(long, env = "LINKMESH_BASELINE_ADDR", default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        /// HTTP worker threads (default: the number of CPUs, as `linkmesh serve`).
        #[arg(long, env = "LINKMESH_BASELINE_WORKERS")]
        workers: Option<usize>,
    },
    /// Measure durable small writes per second (write + fdatasync) in a directory.
    Fsync {
        #[arg(long, env = "LINKMESH_BASELINE_DIR")]
        dir: PathBuf,
        #[arg(long, env = "LINKMESH_BASELINE_DURATION", default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
    },
}

/// The allocator `linkmesh` uses, so a ratio against this baseline compares the handlers, not the
/// allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        BaselineCommand::Serve { addr, workers } => serve(addr, workers),
        BaselineCommand::Fsync { dir, duration } => fsync(&dir, duration),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_baseline: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct FixedResponses {
    get_config: web::Bytes,
    empty: web::Bytes,
}

async fn connect_method(
    method: web::Path<String>,
    body: web::Bytes,
    fixed: web::Data<FixedResponses>,
) -> HttpResponse {
    // Touch the body as a real handler must (it is read fully by the extractor).
    let _ = body.len();
    let response =
        if method.as_str() == "GetConfig" { fixed.get_config.clone() } else { fixed.empty.clone() };
    HttpResponse::Ok().content_type("application/proto").body(response)
}

fn serve(addr: SocketAddr, workers: Option<usize>) -> std::io::Result<()> {
    let fixed = web::Data::new(FixedResponses {
        get_config: web::Bytes::from(
            pb::GetConfigResponse {
                content: String::new(),
                hash: "4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899".to_owned(),
                not_modified: true,
            }
            .encode_to_vec(),
        ),
        empty: web::Bytes::new(),
    });
    actix_web::rt::System::new().block_on(async move {
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(fixed.clone())
                .route("/collector.v1.CollectorService/{method}", web::post().to(connect_method))
        });
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server.bind(addr)?;
        let bound: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
        println!("listening on {}", bound.join(","));
        std::io::stdout().flush()?;
        server.run().await
    })
}

#[allow(clippy::disallowed_methods, reason = "a benchmark: it measures real elapsed time on purpose")]
fn fsync(dir: &std::path::Path, duration: Duration) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bench-baseline-fsync.bin");
    let mut file = std::fs::OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
    let record = [0x5a_u8; 512];
    let started = Instant::now();
    let mut writes: u64 = 0;
    while started.elapsed() < duration {
        file.write_all(&record)?;
        file.sync_data()?;
        writes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    println!("FSYNC_PER_S={:.1}", writes as f64 / elapsed);
    println!("FSYNC_WRITES={writes}");
    Ok(())
}
