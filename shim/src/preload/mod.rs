//! Filling the cache from a list of image references (`shimmer preload LIST`); listing and
//! moving it (`shimmer cache ls`, `export DIR`, `import DIR`) is in `transfer`.

mod transfer;

pub use transfer::{Listed, export, import, list};

use axum::http::{HeaderMap, HeaderValue, Method, header};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::{
    AppState,
    cache::{Cache, MANIFEST_ACCEPT},
    error::OciError,
    path::{check_digest, is_valid_name},
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
