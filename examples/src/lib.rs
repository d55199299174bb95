//! Runnable bindery services; see `src/bin/` (`cargo run -p bindery-examples --bin <name>`).

/// Initialises logging from `RUST_LOG` (default `warn`), for the example binaries.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
