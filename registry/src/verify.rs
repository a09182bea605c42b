//! Content checks on what a registry streams: a blob's bytes hashed as they pass, compared
//! with the digest asked for when the stream ends. Memory stays constant whatever the size.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use sha2::{Digest, Sha256};

use crate::RegistryError;

/// `body`, unchanged, except that after its last chunk it fails with `InvalidData` when the
/// bytes' sha256 is not `digest`. A digest of another algorithm cannot be checked here and is
/// refused before reading.
pub fn verified<S>(
    body: S,
    digest: &str,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + use<S>, RegistryError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
{
    let Some(expected) = digest.strip_prefix("sha256:").map(str::to_owned) else {
        return Err(RegistryError::Invalid {
            url: digest.to_owned(),
            message: "only sha256 digests are verified".into(),
        });
    };
    let state = (body, Some(Sha256::new()), expected);
    Ok(stream::unfold(
        state,
        |(mut body, hasher, expected)| async move {
            let mut hasher = hasher?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    hasher.update(&chunk);
                    Some((Ok(chunk), (body, Some(hasher), expected)))
                }
                Some(Err(e)) => Some((Err(e), (body, None, expected))),
                None => {
                    let actual = hex::encode(hasher.finalize());
                    if actual == expected {
                        None
                    } else {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("blob digest is sha256:{actual}, not sha256:{expected}"),
                        );
                        Some((Err(e), (body, None, expected)))
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt, stream};

    use super::*;

    async fn collect(chunks: &[&'static [u8]], digest: &str) -> Result<Vec<u8>, std::io::Error> {
        let body = stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))));
        let mut s = Box::pin(verified(body, digest).unwrap());
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_blob_passes_only_with_its_own_digest() {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(
            collect(&[b"hello ", b"world"], &digest).await.unwrap(),
            b"hello world"
        );
        let wrong = collect(&[b"hello ", b"there"], &digest).await.unwrap_err();
        assert_eq!(wrong.kind(), std::io::ErrorKind::InvalidData);
        let empty = format!("sha256:{}", hex::encode(Sha256::digest(b"")));
        assert!(collect(&[], &empty).await.unwrap().is_empty());
        assert!(
            verified(
                stream::empty::<Result<Bytes, std::io::Error>>(),
                "sha512:ab"
            )
            .is_err()
        );
    }
}
