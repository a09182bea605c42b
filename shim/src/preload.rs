//! Filling and moving the cache: `shimmer preload LIST`, `shimmer cache ls`,
//! `shimmer cache export DIR` / `import DIR` (carry a filled cache into an air-gapped site).

use std::path::Path;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::{AppState, cache::Cache, error::OciError, upstream::Upstream};

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// One reference of a preload list: `host/repository:tag` or `host/repository@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repository: String,
    pub reference: String,
}

impl ImageRef {
    pub fn parse(line: &str) -> Result<Self, String> {
        let (host, rest) = line
            .split_once('/')
            .ok_or_else(|| format!("{line:?}: expected host/repository:tag"))?;
        let (repository, reference) = match rest.split_once('@') {
            Some((r, d)) => (r, d),
            None => match rest.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r, t),
                _ => (rest, "latest"),
            },
        };
        // Docker Hub's official images live under `library/`.
        let repository = if crate::upstream::is_docker_hub(host) && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        if !crate::path::is_valid_name(&repository) {
            return Err(format!("{line:?}: invalid repository name"));
        }
        Ok(Self {
            host: host.to_owned(),
            repository,
            reference: reference.to_owned(),
        })
    }
}

/// What preloading one reference did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Pulls `image` into the cache: its manifest, and for an index every child manifest whose
/// platform is in `platforms` (all when empty), with their configs and layers.
pub async fn preload(
    state: &AppState,
    image: &ImageRef,
    platforms: &[String],
    concurrency: usize,
) -> Result<Loaded, String> {
    let cache = state
        .cache
        .as_ref()
        .ok_or("no [cache] path is configured")?;
    let up = state
        .upstreams
        .get(&image.host)
        .ok_or_else(|| format!("no upstream is configured for {}", image.host))?
        .clone();
    let mut loaded = Loaded::default();
    let top = manifest(cache, &up, &image.repository, &image.reference).await?;
    loaded.manifests += 1;
    let mut images = Vec::new();
    if let Some(children) = top["manifests"].as_array() {
        for child in children {
            let platform = format!(
                "{}/{}",
                child["platform"]["os"].as_str().unwrap_or(""),
                child["platform"]["architecture"].as_str().unwrap_or("")
            );
            if !platforms.is_empty() && !platforms.contains(&platform) {
                continue;
            }
            let digest = child["digest"]
                .as_str()
                .ok_or("index entry without digest")?;
            images.push(manifest(cache, &up, &image.repository, digest).await?);
            loaded.manifests += 1;
        }
    } else {
        images.push(top);
    }
    let mut blobs: Vec<String> = Vec::new();
    for m in &images {
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
            if let Some(digest) = d["digest"].as_str()
                && !blobs.iter().any(|b| b == digest)
            {
                blobs.push(digest.to_owned());
            }
        }
    }
    let results: Vec<Result<u64, String>> = futures_util::stream::iter(blobs.iter())
        .map(|digest| blob(cache, &up, &image.repository, digest))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for r in results {
        loaded.bytes += r?;
        loaded.blobs += 1;
    }
    Ok(loaded)
}

async fn manifest(
    cache: &Cache,
    up: &Upstream,
    repo: &str,
    reference: &str,
) -> Result<Value, String> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    let resp = cache
        .manifest(up, repo, reference, &Method::GET, &headers)
        .await
        .map_err(|e: OciError| format!("{repo}:{reference}: {}", e.message))?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{repo}:{reference}: manifest is not JSON: {e}"))
}

async fn blob(
    cache: &std::sync::Arc<Cache>,
    up: &std::sync::Arc<Upstream>,
    repo: &str,
    digest: &str,
) -> Result<u64, String> {
    let resp = cache
        .blob(up, repo, digest, &Method::GET, &HeaderMap::new())
        .await
        .map_err(|e| format!("{repo}@{digest}: {}", e.message))?
        .ok_or_else(|| format!("{repo}@{digest}: not cacheable"))?;
    let mut body = resp.into_body().into_data_stream();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        n += chunk.map_err(|e| format!("{repo}@{digest}: {e}"))?.len() as u64;
    }
    Ok(n)
}

/// Cached bytes and entries per upstream.
pub async fn list(pool: &shimmer_store::PgPool) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select upstream, count(*), coalesce(sum(size_bytes), 0)::bigint
         from cache_entries group by upstream order by upstream",
    )
    .fetch_all(pool)
    .await
}

/// Copies the cache directory to `out` with its metadata (`metadata.json`).
pub async fn export(state: &AppState, out: &Path) -> anyhow::Result<u64> {
    let root = state
        .config
        .cache
        .path
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [cache] path is configured"))?;
    let copied = copy_tree(root, &out.join("cache"), true)?;
    let tags: Vec<(String, String, String, String, Option<String>)> =
        sqlx::query_as("select upstream, repository, tag, digest, media_type from cache_tags")
            .fetch_all(&state.pool)
            .await?;
    let entries: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
        "select upstream, digest, repository, media_type, size_bytes from cache_entries",
    )
    .fetch_all(&state.pool)
    .await?;
    std::fs::write(
        out.join("metadata.json"),
        serde_json::to_vec(&serde_json::json!({ "tags": tags, "entries": entries }))?,
    )?;
    Ok(copied)
}

/// Copies an exported cache into this one and records its metadata.
pub async fn import(state: &AppState, from: &Path) -> anyhow::Result<u64> {
    let root = state
        .config
        .cache
        .path
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [cache] path is configured"))?;
    let copied = copy_tree(&from.join("cache"), root, true)?;
    let meta: Value = serde_json::from_slice(&std::fs::read(from.join("metadata.json"))?)?;
    for t in meta["tags"].as_array().into_iter().flatten() {
        let s = |i: usize| t[i].as_str().unwrap_or_default().to_owned();
        shimmer_store::cache::set_tag(&state.pool, &s(0), &s(1), &s(2), &s(3), t[4].as_str())
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

#[cfg(test)]
mod tests {
    use super::ImageRef;

    #[test]
    fn references() {
        let r = ImageRef::parse("registry.k8s.io/pause:3.9").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("registry.k8s.io", "pause", "3.9")
        );
        let r = ImageRef::parse("docker.io/nginx").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.reference.as_str()),
            ("library/nginx", "latest")
        );
        let r = ImageRef::parse("127.0.0.1:5000/a/b@sha256:abc").unwrap();
        assert_eq!(
            (r.host.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "sha256:abc")
        );
        assert!(ImageRef::parse("nohost").is_err());
    }
}
