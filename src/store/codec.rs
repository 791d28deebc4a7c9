//! Compression of stored content: zstd where it pays, raw bytes where it does not.
//!
//! Model weights barely compress (float32 ~7%), text compresses well. Every object is tried at
//! a fast zstd level and kept raw when the saving is below a threshold, so reads of raw records
//! cost nothing. Decompression is always capped at the declared size, so a hostile frame cannot
//! expand without bound.

use super::pack::MAX_OBJECT_LEN;

/// How a record's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is.
    Raw,
    /// One zstd frame.
    Zstd,
}

impl Codec {
    /// The one-byte code in pack records and index entries.
    pub fn code(self) -> u8 {
        match self {
            Codec::Raw => 0,
            Codec::Zstd => 1,
        }
    }

    /// The codec for a one-byte code.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// Compression settings.
#[derive(Debug, Clone, Copy)]
pub struct CompressionPolicy {
    /// zstd level; 0 disables compression.
    pub level: i32,
    /// Keep the compressed form only when it is at most this fraction of the raw size.
    pub max_ratio: f64,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        CompressionPolicy {
            level: 1,
            max_ratio: 0.97,
        }
    }
}

/// Compresses `raw` per `policy`; returns the codec and the bytes to store when compression
/// paid off, `None` when the raw bytes should be stored.
pub fn compress(raw: &[u8], policy: CompressionPolicy) -> (Codec, Option<Vec<u8>>) {
    if policy.level == 0 || raw.len() < 64 {
        return (Codec::Raw, None);
    }
    // One compression context per thread, reused: creating one per object is costly.
    thread_local! {
        static CCTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let compressed = CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(lvl, _)| *lvl != policy.level) {
            *slot = zstd::bulk::Compressor::new(policy.level)
                .ok()
                .map(|c| (policy.level, c));
        }
        match slot.as_mut() {
            Some((_, c)) => c.compress(raw).ok(),
            None => zstd::bulk::compress(raw, policy.level).ok(),
        }
    });
    match compressed {
        Some(c) if (c.len() as f64) <= raw.len() as f64 * policy.max_ratio => {
            (Codec::Zstd, Some(c))
        }
        _ => (Codec::Raw, None),
    }
}

/// Why stored bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The zstd frame is corrupt or expands beyond the declared size.
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
    /// The decoded length is not the declared length.
    #[error("decoded {got} bytes, expected {expected}")]
    Length {
        /// Declared length.
        expected: u64,
        /// Decoded length.
        got: u64,
    },
    /// The declared length is larger than any object may be.
    #[error("declared size {declared} exceeds the {MAX_OBJECT_LEN}-byte object limit")]
    TooLarge {
        /// Declared length.
        declared: u64,
    },
}

/// Decodes stored bytes to exactly `raw_len` bytes, never allocating more than that, and
/// refuses a `raw_len` above [`MAX_OBJECT_LEN`] before allocating anything.
pub fn decompress(codec: Codec, stored: Vec<u8>, raw_len: u64) -> Result<Vec<u8>, CodecError> {
    let out = match codec {
        Codec::Raw => stored,
        Codec::Zstd => {
            // The output buffer is allocated at the declared size up front.
            if raw_len > MAX_OBJECT_LEN {
                return Err(CodecError::TooLarge { declared: raw_len });
            }
            let cap =
                usize::try_from(raw_len).map_err(|_| CodecError::TooLarge { declared: raw_len })?;
            zstd::bulk::decompress(&stored, cap).map_err(|e| CodecError::Corrupt(e.to_string()))?
        }
    };
    if out.len() as u64 != raw_len {
        return Err(CodecError::Length {
            expected: raw_len,
            got: out.len() as u64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_caps() {
        let text = b"loss 0.1 loss 0.1 loss 0.1 ".repeat(100);
        let (codec, c) = compress(&text, CompressionPolicy::default());
        assert_eq!(codec, Codec::Zstd);
        let c = c.unwrap();
        assert_eq!(
            decompress(codec, c.clone(), text.len() as u64).unwrap(),
            text
        );
        // A declared size smaller than the frame's content is refused, not over-allocated.
        assert!(decompress(codec, c, 10).is_err());
        // Random bytes do not compress and stay raw.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (codec, c) = compress(&noise, CompressionPolicy::default());
        if codec == Codec::Raw {
            assert!(c.is_none());
        }
        assert!(decompress(Codec::Zstd, vec![1, 2, 3], 5).is_err());
    }

    #[test]
    fn huge_declared_size_is_refused_before_allocating() {
        // Found by fuzzing: the output buffer was allocated at the declared size, so a size
        // past isize::MAX panicked ("capacity overflow") and a merely huge one aborted.
        for declared in [MAX_OBJECT_LEN + 1, 1 << 40, u64::MAX] {
            let e = decompress(Codec::Zstd, vec![0x28, 0xb5, 0x2f, 0xfd], declared).unwrap_err();
            assert!(matches!(e, CodecError::TooLarge { .. }), "{e}");
        }
        let text = b"abc".repeat(100);
        let (codec, c) = compress(&text, CompressionPolicy::default());
        assert_eq!(codec, Codec::Zstd);
        assert!(decompress(codec, c.unwrap(), MAX_OBJECT_LEN).is_err());
    }
}
