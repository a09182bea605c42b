//! The command line: every subcommand and flag `shimmer` takes, and the parsing of a
//! reference argument. No behaviour here: `main` composes the crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "An OCI registry front door for Crossplane packages")]
pub struct Cli {
    /// Configuration file (TOML). Every key can be overridden by `SHIMMER_<SECTION>__<KEY>`.
    #[arg(long, global = true, env = "SHIMMER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run every component in one process (the default).
    Serve {
        /// Fill the cache from this list of image references before serving.
        #[arg(long)]
        preload: Option<PathBuf>,
        /// With `--preload`: only these platforms of an index (`os/arch[/variant]`,
        /// repeatable; default all).
        #[arg(long = "preload-platform")]
        preload_platforms: Vec<String>,
        /// With `--preload`: blobs fetched at once per image.
        #[arg(long, default_value_t = 4)]
        preload_concurrency: usize,
    },
    /// Run only the OCI endpoint.
    Shim,
    /// Apply database migrations and exit.
    Migrate,
    /// Run only indexer workers.
    Indexer,
    /// Run only the marketplace web server (`[web] listen`).
    Web,
    /// Index one reference now (`REPO:TAG` or `REPO@sha256:...`) and print what was found.
    Index {
        reference: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fill the pull-through cache from a file of image references (`host/repo:tag` or
    /// `host/repo@sha256:...`, one per line; `#` comments).
    Preload {
        list: PathBuf,
        /// Only these platforms of an index (`os/arch[/variant]`, repeatable; default all).
        #[arg(long = "platform")]
        platforms: Vec<String>,
        /// Blobs fetched at once per image.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Inspect or move the pull-through cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// What changes, and what breaks, from OLD to NEW (each a package source folder, an .xpkg
    /// file or a registry reference). Exit 0: nothing breaks; 1: something does; 2: an error.
    Diff {
        old: String,
        new: String,
        /// Print one JSON object (the same as `--format json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text (default), json or markdown (for a pull-request comment).
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        /// A TOML or YAML file setting change codes to error, warn or ignore.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Queue every manifest a backend holds that the store has not seen.
    Reconcile {
        /// Only this backend (default: all).
        #[arg(long)]
        backend: Option<String>,
    },
}

/// How `shimmer diff` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

/// No subcommand: `serve`, without a preload list.
impl Default for Command {
    fn default() -> Self {
        Command::Serve {
            preload: None,
            preload_platforms: Vec::new(),
            preload_concurrency: 4,
        }
    }
}

#[derive(Subcommand)]
pub enum CacheAction {
    /// What is cached per upstream, with sizes.
    Ls,
    /// Copy the cache and its metadata into DIR (for an air-gapped site).
    Export { dir: PathBuf },
    /// Load a cache exported with `cache export`.
    Import { dir: PathBuf },
}

/// `REPO:TAG`, `REPO@DIGEST`, optionally behind a registry host (`host:port/REPO:TAG`).
pub fn split_reference(reference: &str) -> anyhow::Result<(String, String)> {
    let mut r = reference.trim_start_matches("docker://");
    if let Some((first, rest)) = r.split_once('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        r = rest;
    }
    let (repo, reference) = match r.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (r, "latest"),
        },
    };
    anyhow::ensure!(
        shimmer_shim::path::is_valid_name(repo),
        "invalid repository name {repo:?}"
    );
    Ok((repo.to_owned(), reference.to_owned()))
}
