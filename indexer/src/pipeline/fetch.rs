//! Reading blobs from the backend: whole small ones, layers streamed through the xpkg reader on
//! a blocking thread (digest verified, bytes counted), and an `xpkg-extensions` manifest's
//! layers within the version's extension budget.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{IndexError, Outcome, Run, manifest::Desc, record::add_note};
use shimmer_registry::{Client, RegistryError};

use crate::xpkg::{self, Limits, Rejection, layers::LayerContents};

/// The files of an `xpkg-extensions` manifest's layers, each distinct layer read once, within
/// `version.max_extension_bytes` over all of them; a layer that cannot be read or would pass the
/// budget is left out with a note.
pub(super) async fn read_extensions(
    backend: &Client,
    repository: &str,
    manifest: &Desc,
    limits: &Limits,
    run: &mut Run,
    outcome: &mut Outcome,
) -> Result<Vec<xpkg::layers::ExtensionFile>, IndexError> {
    let mut files = Vec::new();
    let (raw, _) = backend.manifest(repository, &manifest.digest).await?;
    run.downloaded += raw.len() as u64;
    let Ok(m) = serde_json::from_slice::<Value>(&raw) else {
        add_note(
            &mut outcome.note,
            "extensions manifest is not valid JSON".into(),
        );
        return Ok(files);
    };
    let mut seen = std::collections::HashSet::new();
    let mut budget = limits.clone();
    for layer in m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Desc::parse)
        .filter(|l| seen.insert(l.digest.clone()))
    {
        match optional_layer(read_layer(backend, repository, &layer, &budget, run).await)? {
            Ok(c) => {
                let bytes: u64 = c
                    .extension_files
                    .iter()
                    .map(|f| f.file.bytes.len() as u64)
                    .sum();
                budget.version.max_extension_bytes =
                    budget.version.max_extension_bytes.saturating_sub(bytes);
                files.extend(c.extension_files);
            }
            Err(r) => add_note(&mut outcome.note, format!("extension layer not read: {r}")),
        }
    }
    Ok(files)
}

/// Reads a small blob whole; `None` (and no more bytes read) once it is over `limit` bytes, by
/// its descriptor's size before any download or by what the stream delivers.
pub(super) async fn read_small_blob(
    backend: &Client,
    repository: &str,
    blob: &Desc,
    limit: usize,
    run: &mut Run,
) -> Result<Option<Vec<u8>>, IndexError> {
    if blob.size > limit as u64 {
        return Ok(None);
    }
    let mut stream = Box::pin(backend.blob(repository, &blob.digest).await?);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(RegistryError::from)?;
        run.downloaded += chunk.len() as u64;
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// A layer the package can do without (examples, extensions) whose blob the registry does not
/// have: a note, like a layer that cannot be read, not a failure retried until the job gives
/// up with the package never indexed. Other registry errors stay errors (retried).
pub(super) fn optional_layer(
    read: Result<Result<LayerContents, Rejection>, IndexError>,
) -> Result<Result<LayerContents, String>, IndexError> {
    match read {
        Ok(contents) => Ok(contents.map_err(|r| r.to_string())),
        Err(IndexError::Registry(e)) if e.is_blob_unknown() => {
            Ok(Err("its blob is missing from the registry".to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// Streams one layer through the xpkg reader on a blocking thread, then drains what the reader
/// left (past the tar's end) so the blob's digest is verified. Memory stays bounded by the
/// reader's limits whatever the blob size.
pub(super) async fn read_layer(
    backend: &Client,
    repository: &str,
    layer: &Desc,
    limits: &Limits,
    run: &mut Run,
) -> Result<Result<LayerContents, Rejection>, IndexError> {
    // A compressed layer is never smaller than its tar by much: one declared larger than the
    // decompression cap would pass it, so it is refused before a byte is read.
    if layer.size
        > limits
            .layer
            .max_decompressed_bytes
            .saturating_add(1024 * 1024)
    {
        return Ok(Err(Rejection::limit(
            xpkg::Limit::DecompressedBytes,
            limits.layer.max_decompressed_bytes,
            format!("the layer's descriptor declares {} bytes", layer.size),
        )));
    }
    let stream = backend.blob(repository, &layer.digest).await?;
    let watch = std::sync::Arc::new(StreamWatch::default());
    let counted = count(stream, watch.clone());
    let media_type = layer.media_type.clone();
    let limits = limits.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut reader = SyncIoBridge::new(StreamReader::new(counted));
        let contents = xpkg::layers::read_layer(&mut reader, &media_type, &limits);
        // Drain to the end so the digest check (in the stream) runs; a mismatch is an error.
        let drained = std::io::copy(&mut reader, &mut std::io::sink());
        (contents, drained)
    })
    .await?;
    run.downloaded += watch.bytes.load(std::sync::atomic::Ordering::Relaxed);
    let (contents, drained) = result;
    // A rejection stands only on the bytes the registry really holds. A stream that broke (the
    // connection dropped, the read timed out) or ended with a digest mismatch is the registry's
    // failure: the job fails and is retried, rather than storing "not a readable gzip tar" for
    // good about a package that may be fine.
    let failed = watch.error.lock().expect("not poisoned").take();
    if let Some(error) = failed {
        return Err(RegistryError::Io(std::io::Error::other(error)).into());
    }
    drained.map_err(RegistryError::Io)?;
    Ok(contents)
}

/// What a layer's stream did: bytes received, and its first error.
#[derive(Default)]
struct StreamWatch {
    bytes: std::sync::atomic::AtomicU64,
    error: std::sync::Mutex<Option<String>>,
}

fn count(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    watch: std::sync::Arc<StreamWatch>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
    Box::pin(stream.inspect(move |c| match c {
        Ok(b) => {
            watch
                .bytes
                .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => {
            watch
                .error
                .lock()
                .expect("not poisoned")
                .get_or_insert_with(|| e.to_string());
        }
    }))
}
