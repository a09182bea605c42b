//! Listing and moving the cache: `shimmer cache ls`, and `shimmer cache export DIR` /
//! `import DIR`, which carry a filled cache and its records into an air-gapped site. An import
//! checks everything first (metadata names only what this site would cache itself; every file
//! hashes to its name) and imports nothing if anything fails.

use std::path::Path;

use serde_json::Value;

use crate::{
    AppState, Error,
    cache::content_path,
    path::{check_digest, is_valid_name, is_valid_tag},
};

/// What one upstream has in the cache.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listed {
    pub upstream: String,
    pub manifests: u64,
    pub blobs: u64,
    pub bytes: u64,
}

impl Listed {
    /// The header of `cache ls`'s table, aligned with each row's [`Display`](std::fmt::Display).
    pub const HEADER: &str = "UPSTREAM              MANIFESTS      BLOBS            BYTES";
}

impl std::fmt::Display for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            upstream,
            manifests,
            blobs,
            bytes,
        } = self;
        write!(f, "{upstream:<20} {manifests:>10} {blobs:>10} {bytes:>16}")
    }
}

/// The configured cache directory, which the cache commands need.
fn cache_root(state: &AppState) -> Result<&std::path::PathBuf, Error> {
    state
        .config
        .cache
        .path
        .as_ref()
        .ok_or_else(|| Error::Invalid("no [cache] path is configured".into()))
}

/// Cached manifests, blobs and bytes per upstream (an entry is a manifest when the cache holds
/// it under `manifests/`).
pub async fn list(state: &AppState) -> Result<Vec<Listed>, Error> {
    let root = cache_root(state)?;
    let rows = shimmer_store::cache::sizes(&state.pool).await?;
    let mut out: Vec<Listed> = Vec::new();
    for (upstream, digest, size) in rows {
        if out.last().is_none_or(|l| l.upstream != upstream) {
            out.push(Listed {
                upstream: upstream.clone(),
                ..Default::default()
            });
        }
        let l = out.last_mut().expect("pushed above");
        if content_path(root, &upstream, "manifests", &digest).is_some_and(|p| p.exists()) {
            l.manifests += 1;
        } else {
            l.blobs += 1;
        }
        l.bytes += size.max(0) as u64;
    }
    Ok(out)
}

/// Copies the cache directory to `out` with its metadata (`metadata.json`).
pub async fn export(state: &AppState, out: &Path) -> Result<u64, Error> {
    let root = cache_root(state)?;
    let copied = copy_tree(root, &out.join("cache"), true)?;
    let (tags, entries) = shimmer_store::cache::export_rows(&state.pool).await?;
    std::fs::write(
        out.join("metadata.json"),
        serde_json::to_vec(&serde_json::json!({ "tags": tags, "entries": entries }))?,
    )?;
    Ok(copied)
}

/// Copies an exported cache into this one and records its metadata. The metadata and every
/// blob and manifest are checked first; if any is invalid or corrupt, nothing is imported.
pub async fn import(state: &AppState, from: &Path) -> Result<u64, Error> {
    let root = cache_root(state)?;
    let meta: Value = serde_json::from_slice(&std::fs::read(from.join("metadata.json"))?)?;
    check_metadata(state, &meta)?;
    let exported = from.join("cache");
    let corrupt = tokio::task::spawn_blocking(move || verify_tree(&exported)).await??;
    if !corrupt.is_empty() {
        return Err(Error::Invalid(format!(
            "refusing the import: {} file(s) do not match their digest (nothing was imported): {}",
            corrupt.len(),
            corrupt
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let copied = copy_tree(&from.join("cache"), root, true)?;
    for t in meta["tags"].as_array().into_iter().flatten() {
        let s = |i: usize| t[i].as_str().unwrap_or_default().to_owned();
        // Imported tags count as checked now: an export does not say when they were.
        shimmer_store::cache::set_tag(
            &state.pool,
            &s(0),
            &s(1),
            &s(2),
            (&s(3), t[4].as_str()),
            shimmer_store::unix_now(),
        )
        .await?;
    }
    for e in meta["entries"].as_array().into_iter().flatten() {
        let s = |i: usize| e[i].as_str().unwrap_or_default().to_owned();
        shimmer_store::cache::touch(
            &state.pool,
            &s(0),
            &s(1),
            &s(2),
            e[3].as_str(),
            e[4].as_i64().unwrap_or(0),
        )
        .await?;
    }
    Ok(copied)
}

/// Refuses exported metadata that names anything this site would not itself have put in its
/// cache tables: an upstream (or caching backend) that is not configured here, an invalid
/// repository name, tag or digest. The error names the entry.
fn check_metadata(state: &AppState, meta: &Value) -> Result<(), Error> {
    let text = |row: &Value, i: usize| row[i].as_str().unwrap_or_default().to_owned();
    let check = |what: &str, row: &Value, upstream: String, repo: String, digest: String| {
        let problem = if !state.upstreams.is_cache_name(&upstream) {
            format!("upstream {upstream:?} is not configured here")
        } else if !is_valid_name(&repo) {
            format!("invalid repository name {repo:?}")
        } else if check_digest(&digest).is_err() {
            format!("invalid digest {digest:?}")
        } else {
            return Ok(());
        };
        Err(Error::Invalid(format!(
            "refusing the import: metadata.json {what} {row}: {problem} (nothing was imported)"
        )))
    };
    for t in meta["tags"].as_array().into_iter().flatten() {
        let tag = text(t, 2);
        if !is_valid_tag(&tag) {
            return Err(Error::Invalid(format!(
                "refusing the import: metadata.json tag {t}: invalid tag {tag:?} (nothing was imported)"
            )));
        }
        check("tag", t, text(t, 0), text(t, 1), text(t, 3))?;
    }
    for e in meta["entries"].as_array().into_iter().flatten() {
        check("entry", e, text(e, 0), text(e, 2), text(e, 1))?;
    }
    Ok(())
}

/// The content-addressed files under an exported cache (`<upstream>/{blobs,manifests}/sha256/<hex>`)
/// whose bytes do not hash to their name.
fn verify_tree(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    use sha2::{Digest, Sha256};
    let mut corrupt = Vec::new();
    for upstream in std::fs::read_dir(dir)? {
        let upstream = upstream?;
        if upstream.file_name() == "tmp" || !upstream.file_type()?.is_dir() {
            continue;
        }
        for kind in ["blobs", "manifests"] {
            let Ok(files) = std::fs::read_dir(upstream.path().join(kind).join("sha256")) else {
                continue;
            };
            for file in files {
                let path = file?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let content_addressed =
                    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
                if !content_addressed {
                    continue; // `<hex>.type`: the media type, not content
                }
                let mut hasher = Sha256::new();
                std::io::copy(&mut std::fs::File::open(&path)?, &mut hasher)?;
                if hex::encode(hasher.finalize()) != name {
                    corrupt.push(path);
                }
            }
        }
    }
    Ok(corrupt)
}

/// Copies files under `from` to `to` (skipping `tmp/`, downloads in progress); returns bytes.
fn copy_tree(from: &Path, to: &Path, top: bool) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if top && name == "tmp" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            bytes += copy_tree(&entry.path(), &to.join(&name), false)?;
        } else if kind.is_file() {
            bytes += std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(bytes)
}
