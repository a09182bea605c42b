//! Logging: an `EnvFilter` (from `RUST_LOG`, else `[log] filter`) and text or JSON output.

use shimmer_config::{LogConfig, LogFormat};
use tracing_subscriber::{EnvFilter, fmt};

/// Fails, naming the variable or key, on a filter that does not parse: a typo would otherwise
/// silence the logs an operator went looking for.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))?
        }
        _ => EnvFilter::try_new(&config.filter)
            .map_err(|e| format!("configuration key `log.filter`: {e}"))?,
    };
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}
