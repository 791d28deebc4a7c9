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

/// Splits `reader` into chunks and hands them to `f` in batches of about [`BATCH_BYTES`].
///
/// Reading and cutting run on a thread of their own, one batch ahead of `f`, so chunking
/// overlaps with whatever `f` does (hashing and compressing on the other cores). At most two
/// batches are in memory at once, whatever the size of the input.
pub fn chunk_batches<R: Read + Send, E: From<std::io::Error> + Send>(
    reader: R,
    mut f: impl FnMut(Vec<Vec<u8>>) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<Vec<u8>>>>(1);
        scope.spawn(move || {
            let cdc = fastcdc::v2020::StreamCDC::new(reader, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            for chunk in cdc {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(fastcdc::v2020::Error::IoError(io)) => {
                        let _ = tx.send(Err(io));
                        return;
                    }
                    Err(other) => {
                        let _ = tx.send(Err(std::io::Error::other(other.to_string())));
                        return;
                    }
                };
                bytes += chunk.data.len();
                batch.push(chunk.data);
                if bytes >= BATCH_BYTES {
                    if tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                        return;
                    }
                    bytes = 0;
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(Ok(batch));
            }
        });
        // Dropping `rx` on an early error makes the reader thread stop at its next send.
        for batch in rx {
            f(batch?)?;
        }
        Ok(())
    })
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
