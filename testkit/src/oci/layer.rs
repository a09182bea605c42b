//! Layer contents: deterministic tar.gz from files, and large pseudo-random gzip layers written in
//! constant memory while both digests are computed.

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// `len` bytes that gzip cannot shrink (xorshift32 from `seed`, which must not be 0): layers
/// and blobs that really are as large as they say on the wire.
pub fn incompressible(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A deterministic gzip tar holding `files` (path, content): mtime 0, mode 0644, uid/gid 0, so the
/// same files always give the same digest.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, content) in files {
        let mut header = file_header(content.len() as u64);
        builder
            .append_data(&mut header, path, *content)
            .unwrap_or_else(|e| panic!("tar entry {path}: {e}"));
    }
    builder
        .into_inner()
        .and_then(GzEncoder::finish)
        .expect("finish tar.gz in memory")
}

/// The diff ID (sha256 of the uncompressed tar) of a layer blob: gunzipped when it is gzip,
/// otherwise the blob's own digest.
pub fn diff_id(layer: &[u8]) -> String {
    if layer.starts_with(&[0x1f, 0x8b]) {
        let mut hasher = HashingWriter::new(io::sink());
        if io::copy(&mut GzDecoder::new(layer), &mut hasher).is_ok() {
            return hasher.digest();
        }
    }
    crate::skopeo::digest_of(layer)
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// A blob written straight to the layout's blob dir (under a temp name until its digest is known).
pub(crate) struct BlobFile {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

/// Writes a gzip tar with one file of `size` pseudo-random bytes (from `seed`) into `blobs_dir`,
/// streaming: nothing but small buffers is held in memory. Gzip uses stored (uncompressed)
/// blocks: random data would not compress anyway, and it is several times faster.
pub(crate) fn write_random_gzip(blobs_dir: &Path, size: u64, seed: u64) -> BlobFile {
    let temp = NamedTempFile::new_in(blobs_dir).expect("create temp blob");
    let file = io::BufWriter::with_capacity(1 << 20, temp.as_file().try_clone().expect("dup"));
    let compressed = HashingWriter::new(file);
    let gzip = GzEncoder::new(compressed, Compression::none());
    let mut tar = tar::Builder::new(HashingWriter::new(gzip));
    let mut header = file_header(size);
    let random = io::BufReader::with_capacity(1 << 16, RandomBytes::new(seed).take(size));
    tar.append_data(&mut header, format!("random-{seed}.bin"), random)
        .expect("write random layer");
    let uncompressed = tar.into_inner().expect("finish tar");
    let diff_id = uncompressed.digest();
    let mut compressed = uncompressed
        .into_inner()
        .finish()
        .expect("finish gzip stream");
    compressed.flush().expect("flush random layer");
    let (digest, size) = (compressed.digest(), compressed.written);
    let path = blobs_dir.join(digest.trim_start_matches("sha256:"));
    temp.persist(&path).expect("store random layer blob");
    BlobFile {
        digest,
        size,
        diff_id,
    }
}

/// Passes bytes through while computing their sha256 and count.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    pub written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// `sha256:<hex>` of everything written so far.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An endless xorshift64* stream: cheap, seedable, and incompressible enough for a test layer.
struct RandomBytes {
    state: u64,
}

impl RandomBytes {
    fn new(seed: u64) -> Self {
        // xorshift must not start at 0; mix the seed so nearby seeds differ from the first byte.
        RandomBytes {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }
}

impl RandomBytes {
    fn next_word(&mut self) -> [u8; 8] {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }
}

impl Read for RandomBytes {
    /// Fills all of `buf`, one word per 8 bytes; a short final chunk drops the rest of its word,
    /// so the stream depends only on the seed while every read but the last is a multiple of 8
    /// (the 64 KiB `BufReader` in front of it guarantees that).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_word();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_gz_is_deterministic_and_round_trips() {
        let a = tar_gz(&[("package.yaml", b"kind: Provider\n"), ("x/y", b"z")]);
        assert_eq!(
            a,
            tar_gz(&[("package.yaml", b"kind: Provider\n"), ("x/y", b"z")])
        );
        let mut archive = tar::Archive::new(GzDecoder::new(&a[..]));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            assert_eq!(entry.header().mtime().unwrap(), 0);
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            names.push((entry.path().unwrap().display().to_string(), content));
        }
        assert_eq!(
            names,
            [
                ("package.yaml".to_owned(), "kind: Provider\n".to_owned()),
                ("x/y".to_owned(), "z".to_owned())
            ]
        );
    }

    #[test]
    fn random_gzip_is_a_valid_tar_gz_with_correct_digests() {
        let dir = tempfile::tempdir().unwrap();
        let blob = write_random_gzip(dir.path(), 100_003, 7);
        let bytes = std::fs::read(dir.path().join(&blob.digest[7..])).unwrap();
        assert_eq!(bytes.len() as u64, blob.size);
        assert_eq!(crate::skopeo::digest_of(&bytes), blob.digest);
        assert_eq!(diff_id(&bytes), blob.diff_id);
        let mut archive = tar::Archive::new(GzDecoder::new(&bytes[..]));
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content.len(), 100_003);
        let mut expected = vec![0; 100_003];
        RandomBytes::new(7).read_exact(&mut expected).unwrap();
        assert_eq!(content, expected);
        let other = write_random_gzip(dir.path(), 100_003, 8);
        assert_ne!(other.digest, blob.digest);
    }
}
