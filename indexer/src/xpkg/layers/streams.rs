//! The readers a layer blob passes through on its way to the tar walker: counting compressed
//! bytes, decompressing zstd frame after frame, capping decompressed bytes, and refusing an
//! oversized tar extended header before the tar reader holds it.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// Fills `buf` as far as the reader allows (short reads are normal for network streams).
pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Counts the bytes read through it.
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Watches a tar stream go by and fails before an extended header (PAX `x`/`g`, GNU `L`/`K`)
/// larger than `max` is read: the tar reader holds such a record whole in memory (a 150 MiB PAX
/// path cost 941 MB of RSS). Bytes pass through unchanged; only header blocks are looked at.
pub(super) struct HeaderGuard<R> {
    pub(super) inner: R,
    /// The header block being gathered.
    pub(super) block: Vec<u8>,
    /// Bytes of entry data (with padding) before the next header block.
    pub(super) skip: u64,
    pub(super) max: u64,
    /// The size of the header that was refused.
    pub(super) oversized: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = &buf[..n];
        while !seen.is_empty() {
            if self.skip > 0 {
                let step = self.skip.min(seen.len() as u64) as usize;
                self.skip -= step as u64;
                seen = &seen[step..];
                continue;
            }
            let step = (512 - self.block.len()).min(seen.len());
            self.block.extend_from_slice(&seen[..step]);
            seen = &seen[step..];
            if self.block.len() == 512 {
                let header = tar::Header::from_byte_slice(&self.block);
                let size = header.entry_size().unwrap_or(0);
                let extended = matches!(header.entry_type().as_byte(), b'x' | b'g' | b'L' | b'K');
                if extended && size > self.max {
                    self.oversized.set(Some(size));
                    return Err(io::Error::other("tar extended header too large"));
                }
                self.skip = size.div_ceil(512) * 512;
                self.block.clear();
            }
        }
        Ok(n)
    }
}

/// Counts bytes and fails once more than `max` have been produced.
pub(super) struct Capped<R> {
    pub(super) inner: R,
    pub(super) count: Rc<Cell<u64>>,
    pub(super) max: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.count.get() > self.max {
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        // Never ask for more than one byte past the cap, so the cap is exact and cheap.
        let room = (self.max + 1 - self.count.get()).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.count.set(self.count.get() + n as u64);
        if self.count.get() > self.max {
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

/// A zstd stream of one or more frames (ruzstd's decoder reads a single frame).
pub(super) struct ZstdFrames<R: BufRead> {
    pub(super) decoder: ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>,
}

impl<R: BufRead> ZstdFrames<R> {
    pub(super) fn new(source: R) -> Result<Self, ruzstd::decoding::errors::FrameDecoderError> {
        Ok(Self {
            decoder: ruzstd::decoding::StreamingDecoder::new(source)?,
        })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The frame ended; more input means another frame follows.
            if self.decoder.get_mut().fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.next_frame()?;
        }
    }
}

impl<R: BufRead> ZstdFrames<R> {
    fn next_frame(&mut self) -> io::Result<()> {
        let mut frame = ruzstd::decoding::FrameDecoder::new();
        frame
            .init(self.decoder.get_mut())
            .map_err(io::Error::other)?;
        self.decoder.decoder = frame;
        Ok(())
    }
}
