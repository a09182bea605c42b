//! Filling and moving the cache: `shimmer preload LIST`, `shimmer cache ls`,
//! `shimmer cache export DIR` / `import DIR` (carry a filled cache into an air-gapped site).

use std::path::Path;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::{
    AppState, Error,
    cache::{Cache, MANIFEST_ACCEPT, content_path},
    error::OciError,
    path::{check_digest, is_valid_name, is_valid_tag},
    upstream::Upstream,
};

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
        if !is_valid_name(&repository) {
            return Err(format!("{line:?}: invalid repository name"));
        }
        Ok(Self {
            host: host.to_owned(),
            repository,
            reference: reference.to_owned(),
        })
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.repository, self.reference)
    }
}

/// The references of a preload list: one a line, blank lines and `#` comments skipped; the
/// first invalid line is the error.
pub fn parse_list(text: &str) -> Result<Vec<ImageRef>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(ImageRef::parse)
        .collect()
}

/// What preloading one reference did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
}

impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            manifests,
            blobs,
            bytes,
        } = self;
        write!(f, "{manifests} manifests, {blobs} blobs, {bytes} bytes")
    }
}

/// One reference of a list preloaded (or not), as `shimmer preload` reports it.
pub struct Progress<'a> {
    pub index: usize,
    pub total: usize,
    pub image: &'a ImageRef,
    pub result: &'a Result<Loaded, String>,
}

impl std::fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            index,
            total,
            image,
            ..
        } = self;
        match self.result {
            Ok(loaded) => write!(f, "[{index}/{total}] {image}  {loaded}"),
            Err(e) => write!(f, "[{index}/{total}] {image}  failed: {e}"),
        }
    }
}

/// Preloads every reference in turn, handing each outcome to `report` as it comes; returns how
/// many failed (the others are cached whatever happened to them).
pub async fn preload_all(
    state: &AppState,
    refs: &[ImageRef],
    platforms: &[String],
    concurrency: usize,
    mut report: impl FnMut(Progress<'_>),
) -> usize {
    let mut failed = 0;
    for (i, image) in refs.iter().enumerate() {
        let result = preload(state, image, platforms, concurrency).await;
        failed += usize::from(result.is_err());
        report(Progress {
            index: i + 1,
            total: refs.len(),
            image,
            result: &result,
        });
    }
    failed
}

/// Whether an index entry's `platform` is the one `wanted` names: `os/arch` or
/// `os/arch/variant`. Without a variant any variant matches; `arm64` without a variant is `v8`
/// (as containerd normalises it).
pub fn platform_matches(wanted: &str, platform: &Value) -> bool {
    let mut parts = wanted.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    let have = |key: &str| platform[key].as_str().unwrap_or("");
    if os != Some(have("os")) || arch != Some(have("architecture")) {
        return false;
    }
    let normal = |v: &str| {
        if have("architecture") == "arm64" && v.is_empty() {
            "v8".to_owned()
        } else {
            v.to_owned()
        }
    };
    variant.is_none_or(|v| normal(v) == normal(have("variant")))
}

/// Pulls `image` into the cache: its manifest, and for an index every child manifest whose
/// platform is in `platforms` (`os/arch[/variant]`; all when empty), with their configs and
/// layers. Returns once the cache's entries for all of it are recorded.
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
            if !platforms.is_empty()
                && !platforms
                    .iter()
                    .any(|p| platform_matches(p, &child["platform"]))
            {
                continue;
            }
            let digest = descriptor_digest(image, child)?;
            images.push(manifest(cache, &up, &image.repository, digest).await?);
            loaded.manifests += 1;
        }
    } else {
        images.push(top);
    }
    let mut blobs: Vec<String> = Vec::new();
    for m in &images {
        let config = Some(&m["config"]).filter(|c| !c.is_null());
        for d in config
            .into_iter()
            .chain(m["layers"].as_array().into_iter().flatten())
        {
            let digest = descriptor_digest(image, d)?;
            if !blobs.iter().any(|b| b == digest) {
                blobs.push(digest.to_owned());
            }
        }
    }
    let results: Vec<Result<u64, String>> = futures_util::stream::iter(blobs.iter())
        .map(|digest| blob(cache, &up, &image.repository, digest))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    // Entries are recorded off the request path; a CLI that exits right after must not lose them.
    cache.flush().await;
    for r in results {
        loaded.bytes += r?;
        loaded.blobs += 1;
    }
    Ok(loaded)
}

/// A descriptor's digest, checked before it is used for anything: an upstream's manifest is
/// untrusted, and its digests name requests and cache files.
fn descriptor_digest<'a>(image: &ImageRef, descriptor: &'a Value) -> Result<&'a str, String> {
    let digest = descriptor["digest"].as_str().unwrap_or_default();
    check_digest(digest).map_err(|_| {
        format!(
            "{}:{}: invalid manifest: descriptor digest {digest:?}",
            image.repository, image.reference
        )
    })?;
    Ok(digest)
}

async fn manifest(
    cache: &Cache,
    up: &Upstream,
    repo: &str,
    reference: &str,
) -> Result<Value, String> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
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

#[cfg(test)]
mod tests {
    use super::{ImageRef, platform_matches};

    #[test]
    fn platforms_match_with_and_without_variants() {
        let p = |os: &str, arch: &str, variant: Option<&str>| {
            let mut v = serde_json::json!({"os": os, "architecture": arch});
            if let Some(variant) = variant {
                v["variant"] = variant.into();
            }
            v
        };
        // (wanted, os, architecture, variant, matches)
        let cases = [
            ("linux/amd64", "linux", "amd64", None, true),
            ("linux/amd64", "linux", "arm64", None, false),
            ("windows/amd64", "linux", "amd64", None, false),
            ("linux/arm", "linux", "arm", Some("v7"), true),
            ("linux/arm/v7", "linux", "arm", Some("v7"), true),
            ("linux/arm/v7", "linux", "arm", Some("v6"), false),
            ("linux/arm/v7", "linux", "arm", None, false),
            // arm64 without a variant is v8.
            ("linux/arm64/v8", "linux", "arm64", None, true),
            ("linux/arm64", "linux", "arm64", Some("v8"), true),
            ("linux/arm64/v8", "linux", "arm64", Some("v8"), true),
            ("linux/arm64/v9", "linux", "arm64", None, false),
        ];
        for (wanted, os, arch, variant, matches) in cases {
            assert_eq!(
                platform_matches(wanted, &p(os, arch, variant)),
                matches,
                "{wanted} vs {os}/{arch}/{variant:?}"
            );
        }
    }

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
