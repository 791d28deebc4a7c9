//! Content-defined chunking of large files (FastCDC, 16 KiB / 64 KiB / 256 KiB).
//!
//! Chunk boundaries depend on content, not offsets, so a checkpoint whose second version changes
//! a few scattered regions shares all other chunks with the first. Files no larger than
//! [`MAX_CHUNK`] are stored as one blob.

use std::io::Read;

/// Smallest chunk.
pub const MIN_CHUNK: u32 = 16 * 1024;
/// Target average chunk.
pub const AVG_CHUNK: u32 = 64 * 1024;
/// Largest chunk; also the largest file stored as a single blob.
pub const MAX_CHUNK: u32 = 256 * 1024;
/// How many bytes of chunks are handed to the caller at once (bounds memory).
pub const BATCH_BYTES: usize = 32 << 20;

/// How many bytes are read and cut at once.
pub const BLOCK_BYTES: usize = 32 << 20;

/// A block of a file and the chunks cut from it.
pub struct Block {
    /// The bytes.
    pub data: Vec<u8>,
    /// Chunk ranges within `data`, in order, covering it exactly.
    pub chunks: Vec<std::ops::Range<usize>>,
}

impl Block {
    /// The chunks as slices.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(|r| &self.data[r.clone()])
    }
}

/// Splits `reader` into chunks, handing them to `f` one [`Block`] of about [`BLOCK_BYTES`] at a
/// time. Cut points are exactly those of chunking the whole input at once: a chunk that
/// reaches the end of a block is carried into the next one rather than cut there.
///
/// Reading and cutting run on a thread of their own, one block ahead of `f`, so chunking
/// overlaps with whatever `f` does (hashing and compressing on the other cores). At most two
/// blocks are in memory at once, whatever the size of the input.
pub fn chunk_blocks<R: Read + Send, E: From<std::io::Error> + Send>(
    mut reader: R,
    mut f: impl FnMut(&Block) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Block>>(1);
        // Buffers come back from the consumer and are reused rather than allocated anew.
        let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || {
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let mut data = returned.try_recv().unwrap_or_default();
                data.clear();
                data.extend_from_slice(&carry);
                let start = data.len();
                data.reserve(BLOCK_BYTES);
                // `read_to_end` reads into the spare capacity without zeroing it first (which
                // would cost as much as the read).
                let eof = match (&mut reader)
                    .take(BLOCK_BYTES as u64)
                    .read_to_end(&mut data)
                {
                    Ok(n) => n < BLOCK_BYTES,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let filled = data.len();
                debug_assert!(filled >= start);
                data.truncate(filled);
                if data.is_empty() {
                    return;
                }
                let mut chunks = Vec::new();
                let mut end_ok = 0;
                for c in fastcdc::v2020::FastCDC::new(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) {
                    let end = c.offset + c.length;
                    if end < data.len() || eof {
                        chunks.push(c.offset..end);
                        end_ok = end;
                    } else {
                        break;
                    }
                }
                carry.clear();
                carry.extend_from_slice(&data[end_ok..]);
                data.truncate(end_ok);
                if !chunks.is_empty() && tx.send(Ok(Block { data, chunks })).is_err() {
                    return;
                }
                if eof {
                    return;
                }
            }
        });
        // Dropping `rx` on an early error makes the reader thread stop at its next send.
        for block in rx {
            let block = block?;
            f(&block)?;
            let _ = give_back.send(block.data);
        }
        Ok(())
    })
}

/// Splits `reader` into owned chunks in batches (see [`chunk_blocks`]).
pub fn chunk_batches<R: Read + Send, E: From<std::io::Error> + Send>(
    reader: R,
    mut f: impl FnMut(Vec<Vec<u8>>) -> Result<(), E>,
) -> Result<(), E> {
    chunk_blocks(reader, |b| f(b.slices().map(<[u8]>::to_vec).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn chunks_concatenate_to_input(seed in any::<u64>(), len in 0usize..(1 << 20)) {
            let mut x = seed | 1;
            let data: Vec<u8> = (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
            let mut out = Vec::new();
            chunk_batches::<_, std::io::Error>(&data[..], |b| {
                for c in b {
                    assert!(c.len() <= MAX_CHUNK as usize);
                    out.extend_from_slice(&c);
                }
                Ok(())
            }).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(out, data);
        }
    }

    #[test]
    fn blocks_cut_like_the_whole_input() {
        let mut x = 11u64;
        let data: Vec<u8> = (0..(BLOCK_BYTES * 2 + 12345))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let whole: Vec<usize> =
            fastcdc::v2020::FastCDC::new(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                .map(|c| c.length)
                .collect();
        let mut got = Vec::new();
        chunk_blocks::<_, std::io::Error>(&data[..], |b| {
            got.extend(b.chunks.iter().map(|r| r.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, whole);
    }

    #[test]
    fn a_local_edit_keeps_most_chunks() {
        let mut x = 7u64;
        let data: Vec<u8> = (0..(4 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut edited = data.clone();
        for b in &mut edited[1 << 20..(1 << 20) + 1000] {
            *b ^= 0xff;
        }
        let chunks = |d: &[u8]| {
            let mut v = Vec::new();
            chunk_batches::<_, std::io::Error>(d, |b| {
                v.extend(b.into_iter().map(|c| blake3::hash(&c)));
                Ok(())
            })
            .unwrap();
            v
        };
        let a = chunks(&data);
        let b = chunks(&edited);
        let shared = b.iter().filter(|h| a.contains(h)).count();
        assert!(
            shared + 4 >= b.len(),
            "{shared} of {} chunks shared",
            b.len()
        );
    }
}
