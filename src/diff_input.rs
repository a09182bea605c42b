//! One side of `shimmer diff`: a package source folder (a `crossplane.yaml` and every YAML
//! file beneath it but the `examples/` folder, as `crossplane xpkg build` reads a package
//! root), an `.xpkg` file (the image tarball `crossplane xpkg build` writes: its layers are
//! searched for `package.yaml`, read under the indexer's layer limits), or a registry reference
//! read through the configured backends (`repo:tag`, `repo@sha256:...`) or upstreams
//! (`host/repo:tag`). Folders and files need no database and no network.

use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context, anyhow, bail};
use shimmer_config::Config;
use shimmer_indexer::{
    pipeline::{self, Options},
    xpkg::{self, Limits, layers::read_layer},
};
use shimmer_registry::Client;

/// The API definitions of one side.
pub struct Side {
    /// (group, kind, digest) of each definition.
    pub apis: Vec<(String, String, String)>,
    /// Each definition's canonical JSON, by digest.
    pub json: HashMap<String, String>,
}

impl Side {
    pub fn definitions(&self) -> Vec<shimmer_diff::Definition<'_>> {
        self.apis
            .iter()
            .map(|(group, kind, digest)| shimmer_diff::Definition {
                group,
                kind,
                digest,
                json: self.json.get(digest).map_or("", String::as_str),
            })
            .collect()
    }
}

/// Reads the side `arg` names.
pub async fn read(config: &Config, arg: &str) -> anyhow::Result<Side> {
    let path = Path::new(arg);
    let package_yaml = if path.is_dir() {
        folder_stream(path)?
    } else if path.is_file() {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || xpkg_package_yaml(&path)).await??
    } else if looks_like_reference(arg) {
        from_registry(config, arg).await?
    } else {
        bail!("no such folder or file, and not a registry reference");
    };
    let parsed = tokio::task::spawn_blocking(move || {
        xpkg::parse_package(&package_yaml, None, &Limits::default())
    })
    .await?
    .map_err(|r| anyhow!("the package cannot be read: {r}"))?;
    let wanted: HashMap<&str, ()> = parsed
        .apis
        .iter()
        .map(|a| (a.digest.as_str(), ()))
        .collect();
    let json = parsed
        .objects
        .iter()
        .filter(|o| wanted.contains_key(o.digest.as_str()))
        .map(|o| (o.digest.clone(), o.json.clone()))
        .collect();
    let apis = parsed
        .apis
        .iter()
        .map(|a| (a.group.clone(), a.kind.clone(), a.digest.clone()))
        .collect();
    Ok(Side { apis, json })
}

/// A package root's YAML stream: `crossplane.yaml` first, then every other `.yaml`/`.yml`
/// file below it (sorted by path) that holds a Kubernetes object, but for `examples/` and
/// hidden folders.
fn folder_stream(root: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = root.join("crossplane.yaml");
    let mut out = b"---\n".to_vec();
    out.extend(std::fs::read(&meta).map_err(|_| anyhow!("no crossplane.yaml in this folder"))?);
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort();
    for f in files {
        let text = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        if !text.windows(11).any(|w| w == b"apiVersion:") {
            continue;
        }
        out.extend_from_slice(b"\n---\n");
        out.extend(text);
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            let examples = dir == root && name == "examples";
            if !examples && !name.starts_with('.') {
                walk(root, &path, files)?;
            }
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !(dir == root && matches!(name, "crossplane.yaml" | "upbound.yaml" | "auth.yaml"))
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The `package.yaml` of an image tarball: the first of its layers (tar entries other than
/// `manifest.json` and the config) that holds one.
fn xpkg_package_yaml(path: &Path) -> anyhow::Result<Vec<u8>> {
    let limits = Limits::default();
    let file = File::open(path).context("opening it")?;
    let mut archive = tar::Archive::new(file);
    for entry in archive
        .entries()
        .context("not a tar archive (an .xpkg file is one)")?
    {
        let mut entry = entry.context("not a readable tar archive")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name.ends_with(".json") || name.starts_with("sha256:") || entry.size() < 512 {
            continue;
        }
        let blob: Box<dyn Read> = Box::new(&mut entry);
        if let Ok(found) = read_layer(blob, "", &limits)
            && let Some(package) = found.package_yaml
        {
            return Ok(package.bytes);
        }
    }
    bail!(
        "no layer of this file holds a package.yaml (is it an .xpkg from `crossplane xpkg build`?)"
    )
}

/// `host/repo:tag` (a host has a dot or a port, or is `localhost`), `repo:tag`, `repo@digest`.
fn looks_like_reference(arg: &str) -> bool {
    !arg.is_empty()
        && !arg.starts_with(['.', '/'])
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "./:@_-".contains(c))
        && (arg.contains(':') || arg.contains('@'))
}

/// The package.yaml of a registry reference, through the upstream its host names or the
/// backend its repository routes to.
async fn from_registry(config: &Config, arg: &str) -> anyhow::Result<Vec<u8>> {
    let (host, rest) = match arg.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, arg),
    };
    let (repository, reference) = match rest.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => match rest.rsplit_once(':') {
            Some((repo, tag)) => (repo, tag),
            None => (rest, "latest"),
        },
    };
    let client = match host {
        Some(host) => {
            let upstream = config
                .upstreams
                .iter()
                .find(|u| u.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
                .ok_or_else(|| anyhow!("no configured upstream serves {host}"))?;
            Client::from_config(&upstream.as_backend())?
        }
        None => {
            let routes = config.route_table();
            let (_, route) = routes
                .route(repository)
                .ok_or_else(|| anyhow!("no route covers {repository}"))?;
            let backend = config
                .backends
                .iter()
                .find(|b| b.name == route.backend)
                .ok_or_else(|| anyhow!("no backend named {}", route.backend))?;
            Client::from_config(backend)?
        }
    };
    let options = Options {
        flatten_limit: config.indexer.flatten_limit_bytes,
        max_manifest_bytes: config.server.max_manifest_bytes,
        ..Options::default()
    };
    pipeline::read_package_yaml(&client, repository, reference, &options)
        .await?
        .map_err(|reason| anyhow!("{reason}"))
}
