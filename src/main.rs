//! The `linkmesh` binary: parses the command line and hands off to the library.

use std::process::ExitCode;

use clap::Parser;
use linkmesh::cli::{access, backup, client, cluster, enrollment, import, Cli, CollectorsCommand, Command};

/// mimalloc instead of the system allocator: glibc's malloc and free were a quarter of a node's CPU
/// under load (sled's copied nodes, Raft entries, HTTP buffers; `BENCHMARKS.md`, "The allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            let config = match args.into_config() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("linkmesh: {error}");
                    return ExitCode::from(1);
                }
            };
            // Exit codes are the contract's: 1 configuration, 3 damaged data dir, 4 storage failed.
            match linkmesh::server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = %error, exit_code = error.exit_code(), "linkmesh stopped");
                    eprintln!("linkmesh: {error}");
                    ExitCode::from(error.exit_code())
                }
            }
        }
        Command::Check { data_dir } => ExitCode::from(linkmesh::raft::offline_check::run(&data_dir)),
        Command::Restore(args) => {
            init_tracing();
            ExitCode::from(backup::restore(args))
        }
        Command::Simulate(args) => {
            init_tracing();
            linkmesh::simulate::run(*args)
        }
        command => run_client(command),
    }
}

fn run_client(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("linkmesh: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Collectors(CollectorsCommand::Import {
                client,
                file,
                mint_tokens,
                tokens_out,
                skip_existing,
                batch_size,
            }) => {
                let args =
                    import::ImportArgs { client, file, mint_tokens, tokens_out, skip_existing, batch_size };
                import::import(args).await
            }
            Command::Collectors(command) => client::collectors(command).await,
            Command::Events { client: args, collector_id, after, limit } => {
                client::events(args, collector_id, after, limit).await
            }
            Command::Config { client: args, collector_id } => client::config(args, collector_id).await,
            Command::Users(command) => access::users(command).await,
            Command::ServiceAccounts(command) => access::service_accounts(command).await,
            Command::Sessions(command) => access::sessions(command).await,
            Command::Audit { client: args, after, limit } => access::audit(args, after, limit).await,
            Command::EnrollmentTokens(command) => enrollment::enrollment_tokens(command).await,
            Command::Cluster(command) => cluster::cluster(command).await,
            Command::Backup(args) => backup::backup(*args).await,
            Command::Serve(_) | Command::Simulate(_) | Command::Check { .. } | Command::Restore(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linkmesh: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Human-readable logs to stderr; `LINKMESH_LOG` (or `RUST_LOG`) sets the filter, default `info`.
fn init_tracing() {
    let filter = std::env::var("LINKMESH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,actix_server=warn,openraft=warn,sled=warn".to_owned());
    // Colours only for a person at a terminal: log files, journald and collectors get plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .init();
}
