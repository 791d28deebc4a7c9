//! Content-defined chunking of large files (FastCDC, 16 KiB / 64 KiB / 256 KiB).
//!
//! Chunk boundaries depend on content, not offsets, so a checkpoint whose second version changes
//! a few scattered regions shares all other chunks with the first. Files no larger than
//! [`MAX_CHUNK`] are stored as one blob.

/// Smallest chunk.
pub const MIN_CHUNK: u32 = 16 * 1024;
/// Target average chunk.
pub const AVG_CHUNK: u32 = 64 * 1024;
/// Largest chunk; also the largest file stored as a single blob.
pub const MAX_CHUNK: u32 = 256 * 1024;
/// How many bytes are read and cut at once. Three such buffers go round while a large file is
/// stored, the largest part of a commit's memory.
pub const BLOCK_BYTES: usize = 16 << 20;

/// Size of the pieces of a block that are cut in parallel (see [`cut_points`]).
pub const SEGMENT_BYTES: usize = 2 << 20;

/// The ends of the chunks FastCDC cuts from `start` on, the last one `data.len()`.
fn cuts_from(data: &[u8], start: usize) -> impl Iterator<Item = usize> + '_ {
    fastcdc::v2020::FastCDC::new(&data[start..], MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .map(move |c| start + c.offset + c.length)
}

/// The end of the chunk that starts at `from` in `data`.
fn next_end(data: &[u8], from: usize) -> usize {
    cuts_from(data, from).next().unwrap_or(data.len())
}

/// Ends of the chunks cut from `start` on, up to and including the first end at or past `stop`.
fn ends_from(data: &[u8], start: usize, stop: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    for end in cuts_from(data, start) {
        ends.push(end);
        if end >= stop {
            break;
        }
    }
    ends
}

/// FastCDC's gear tables and masks for the chunk sizes above (normalisation level 1, no seed:
/// the parameters `fastcdc::v2020::FastCDC::new` uses).
struct Gear {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    mask_s: u64,
    mask_l: u64,
}

fn gear() -> &'static Gear {
    use fastcdc::v2020::{get_gear_with_seed, logarithm2, Normalization, MASKS};
    static GEAR: std::sync::OnceLock<Gear> = std::sync::OnceLock::new();
    GEAR.get_or_init(|| {
        let (gear, gear_ls) = get_gear_with_seed(0);
        let bits = logarithm2(AVG_CHUNK);
        let level = Normalization::Level1.bits();
        Gear {
            gear,
            gear_ls,
            mask_s: MASKS[(bits + level) as usize],
            mask_l: MASKS[(bits - level) as usize],
        }
    })
}

/// One sequence of FastCDC cuts through `data`, from `start` up to and including the first
/// end at or past `stop`, advanced a window of bytes at a time by [`cut_two`].
struct Cutter<'a> {
    data: &'a [u8],
    /// Where the current chunk starts.
    start: usize,
    /// The next pair of bytes to hash.
    at: usize,
    /// Up to here the stricter mask applies (normalised chunking), then the looser one.
    center_end: usize,
    /// Where the search for a cut point ends.
    end: usize,
    /// The chunk's length when no cut point comes before `end`.
    remaining: usize,
    hash: u64,
    stop: usize,
    done: bool,
    ends: Vec<usize>,
}

impl<'a> Cutter<'a> {
    fn new(data: &'a [u8], start: usize, stop: usize) -> Self {
        let mut c = Cutter {
            data,
            start,
            at: start,
            center_end: start,
            end: start,
            remaining: 0,
            hash: 0,
            stop,
            done: false,
            ends: Vec::new(),
        };
        c.begin(start);
        c
    }

    /// Starts a chunk at `start`, as FastCDC's `cut_gear` does.
    fn begin(&mut self, start: usize) {
        self.start = start;
        if start >= self.data.len() {
            self.done = true;
            return;
        }
        let (min, avg, max) = (MIN_CHUNK as usize, AVG_CHUNK as usize, MAX_CHUNK as usize);
        let mut remaining = self.data.len() - start;
        if remaining <= min {
            return self.cut(remaining);
        }
        let mut center = avg;
        if remaining > max {
            remaining = max;
        } else if remaining < center {
            center = remaining;
        }
        self.remaining = remaining;
        self.hash = 0;
        self.at = start + min / 2 * 2;
        self.center_end = start + center / 2 * 2;
        self.end = start + remaining / 2 * 2;
        if self.at >= self.end {
            self.cut(remaining);
        }
    }

    /// Ends the current chunk `len` bytes after its start.
    fn cut(&mut self, len: usize) {
        let end = self.start + len;
        self.ends.push(end);
        if end >= self.stop || end >= self.data.len() {
            self.done = true;
        } else {
            self.begin(end);
        }
    }

    /// How many byte pairs can be hashed before the mask changes or the search ends, and the
    /// masks that apply to them (for the first and the second byte of a pair).
    fn window(&self, g: &Gear) -> (usize, u64, u64) {
        if self.at < self.center_end {
            ((self.center_end - self.at) / 2, g.mask_s << 1, g.mask_s)
        } else {
            ((self.end - self.at) / 2, g.mask_l << 1, g.mask_l)
        }
    }

    /// After a window: the search ends without a cut point at `end`.
    fn settle(&mut self) {
        if !self.done && self.at >= self.end {
            self.cut(self.remaining);
        }
    }
}

/// Cuts two stretches of `data` at once, the two hashes interleaved byte pair by byte pair:
/// each hash is a chain of dependent steps, so one core runs two chains in little more time
/// than one. Each result is exactly what FastCDC finds from that start.
fn cut_two(data: &[u8], a: (usize, usize), b: (usize, usize)) -> (Vec<usize>, Vec<usize>) {
    let g = gear();
    let (gear, gear_ls) = (&*g.gear, &*g.gear_ls);
    let mut x = Cutter::new(data, a.0, a.1);
    let mut y = Cutter::new(data, b.0, b.1);
    while !x.done && !y.done {
        let (nx, x_mask_ls, x_mask) = x.window(g);
        let (ny, y_mask_ls, y_mask) = y.window(g);
        let n = nx.min(ny);
        let (mut hx, mut hy) = (x.hash, y.hash);
        let wx = &data[x.at..x.at + 2 * n];
        let wy = &data[y.at..y.at + 2 * n];
        // (pairs both hashed, x's extra pair, where x cut, where y cut), offsets in the window.
        let mut outcome = (n, 0, None, None);
        for (i, (px, py)) in wx.chunks_exact(2).zip(wy.chunks_exact(2)).enumerate() {
            hx = (hx << 2).wrapping_add(gear_ls[px[0] as usize]);
            if hx & x_mask_ls == 0 {
                outcome = (i, 0, Some(2 * i), None);
                break;
            }
            hx = hx.wrapping_add(gear[px[1] as usize]);
            if hx & x_mask == 0 {
                outcome = (i, 0, Some(2 * i + 1), None);
                break;
            }
            hy = (hy << 2).wrapping_add(gear_ls[py[0] as usize]);
            if hy & y_mask_ls == 0 {
                outcome = (i, 1, None, Some(2 * i));
                break;
            }
            hy = hy.wrapping_add(gear[py[1] as usize]);
            if hy & y_mask == 0 {
                outcome = (i, 1, None, Some(2 * i + 1));
                break;
            }
        }
        let (pairs, x_extra, x_cut, y_cut) = outcome;
        x.hash = hx;
        y.hash = hy;
        let (x_at, y_at) = (x.at, y.at);
        x.at += 2 * (pairs + x_extra);
        y.at += 2 * pairs;
        if let Some(o) = x_cut {
            x.cut(x_at + o - x.start);
        }
        if let Some(o) = y_cut {
            y.cut(y_at + o - y.start);
        }
        x.settle();
        y.settle();
    }
    for c in [&mut x, &mut y] {
        if !c.done {
            let rest = ends_from(data, c.start, c.stop);
            c.ends.extend(rest);
            c.done = true;
        }
    }
    (x.ends, y.ends)
}

/// The ends of the chunks FastCDC cuts `data` into, in order, the last one `data.len()`:
/// exactly those of cutting it in one pass from the start, found on all cores.
///
/// Cutting is a serial hash over the bytes, so `data` is split into pieces of `segment` bytes
/// and each piece is cut on its own as if a chunk started there. Where a chunk really starts
/// depends only on where the previous one ended, so once the true sequence of ends (known for
/// the first piece) meets an end of the next piece's sequence, the rest of that piece's
/// sequence is true as well. The true sequence is carried forward one chunk at a time until it
/// meets one, usually within a chunk or two; where it never does (long runs of one byte value,
/// cut only at the largest size), the carrying forward is the whole cutting, as in one pass.
pub fn cut_points(data: &[u8], segment: usize) -> Vec<usize> {
    use rayon::prelude::*;
    if data.is_empty() {
        return Vec::new();
    }
    let segment = segment.max(MAX_CHUNK as usize);
    let starts: Vec<usize> = (0..data.len()).step_by(segment).collect();
    let stop = |k: usize| starts.get(k + 1).copied().unwrap_or(data.len());
    // Pieces two by two, each pair cut on one core (see `cut_two`).
    let pairs: Vec<usize> = (0..starts.len()).step_by(2).collect();
    let mut pieces: Vec<Vec<usize>> = pairs
        .into_par_iter()
        .flat_map_iter(|k| match starts.get(k + 1) {
            Some(&next) => {
                let (a, b) = cut_two(data, (starts[k], stop(k)), (next, stop(k + 1)));
                vec![a, b]
            }
            None => vec![ends_from(data, starts[k], stop(k))],
        })
        .collect();
    let mut out = std::mem::take(&mut pieces[0]);
    for piece in &pieces[1..] {
        // `out` holds the true ends so far; its last one is at or past this piece's start.
        let Some(&piece_last) = piece.last() else {
            continue;
        };
        loop {
            let last = out.last().copied().unwrap_or(0);
            if last >= data.len() {
                break;
            }
            if let Ok(i) = piece.binary_search(&last) {
                out.extend_from_slice(&piece[i + 1..]);
                break;
            }
            if last >= piece_last {
                // Never met: `out` has now been carried past the piece on its own.
                break;
            }
            out.push(next_end(data, last));
        }
    }
    while let Some(&last) = out.last() {
        if last >= data.len() {
            break;
        }
        out.push(next_end(data, last));
    }
    out
}

/// A block of a file and the chunks cut from it.
pub struct Block {
    /// The bytes (the buffer may go on past the last chunk).
    pub data: Vec<u8>,
    /// Chunk ranges within `data`, in order, covering the block's input exactly.
    pub chunks: Vec<std::ops::Range<usize>>,
}

impl Block {
    /// The chunks as slices.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(|r| &self.data[r.clone()])
    }
}

/// Where blocks are read from.
pub trait Source: Send {
    /// Fills `buf` from the current position, wholly unless the input ends first; returns how
    /// many bytes it read.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// A file read at several offsets at once (`pread` on all cores): reading from the page cache
/// is a copy, and one core copies at a fraction of what the memory allows.
pub struct Positioned<'a> {
    file: &'a std::fs::File,
    offset: u64,
}

impl<'a> Positioned<'a> {
    /// Reads `file` from its start.
    pub fn new(file: &'a std::fs::File) -> Self {
        Positioned { file, offset: 0 }
    }
}

/// Bytes one `pread` of [`Positioned`] asks for.
const PIECE_BYTES: usize = 4 << 20;

impl Source for Positioned<'_> {
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rayon::prelude::*;
        use std::os::unix::fs::FileExt;
        let base = self.offset;
        let file = self.file;
        let got: Vec<std::io::Result<usize>> = buf
            .par_chunks_mut(PIECE_BYTES)
            .enumerate()
            .map(|(i, piece)| {
                let at = base + (i * PIECE_BYTES) as u64;
                let mut done = 0;
                read_full(
                    |b| {
                        let n = file.read_at(b, at + done as u64)?;
                        done += n;
                        Ok(n)
                    },
                    piece,
                )
            })
            .collect();
        // What was read without a gap: pieces after one the file ended in are ignored (the
        // file grew meanwhile; they are read again next time).
        let mut total = 0;
        for (n, want) in got
            .into_iter()
            .zip(buf.chunks(PIECE_BYTES).map(<[u8]>::len))
        {
            let n = n?;
            total += n;
            if n < want {
                break;
            }
        }
        self.offset += total as u64;
        Ok(total)
    }
}

/// Calls `read` until `buf` is full or it returns 0; returns the bytes read.
fn read_full(
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Splits what `source` reads into chunks, handing them to `f` one [`Block`] of about
/// [`BLOCK_BYTES`] at a time, with `map` applied to each block first on the reading side. Cut
/// points are exactly those of chunking the whole input at once: a chunk that reaches the end
/// of a block is carried into the next one rather than cut there.
///
/// Reading, cutting and `map` (hashing the chunks, say) run on a thread of their own, one block
/// ahead of `f`, so they overlap with what `f` does with the previous block (writing it out,
/// say). At most three blocks are in memory at once, whatever the size of the input.
pub fn chunk_blocks_mapped<S: Source, E: From<std::io::Error> + Send, P: Send>(
    mut source: S,
    map: impl Fn(&Block) -> P + Sync,
    mut f: impl FnMut(&Block, P) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let map = &map;
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<(Block, P)>>(1);
        // Buffers come back from the consumer and are reused rather than allocated anew.
        let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        scope.spawn(move || {
            let mut carry: Vec<u8> = Vec::new();
            // Three buffers go round (one being filled, one queued, one being consumed): new
            // memory costs a page fault and a zeroed page per 4 KiB, as much as the read. A
            // buffer keeps its full length; `filled` says how much of it holds input.
            let mut allocated = 0;
            loop {
                let mut data = match returned.try_recv() {
                    Ok(buf) => buf,
                    Err(_) if allocated < 3 => {
                        allocated += 1;
                        vec![0u8; MAX_CHUNK as usize + BLOCK_BYTES]
                    }
                    Err(_) => match returned.recv() {
                        Ok(buf) => buf,
                        // The consumer stopped.
                        Err(_) => return,
                    },
                };
                // The carried tail of the previous block is shorter than a chunk.
                let start = carry.len();
                data[..start].copy_from_slice(&carry);
                let n = match source.fill(&mut data[start..start + BLOCK_BYTES]) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let eof = n < BLOCK_BYTES;
                let filled = start + n;
                if filled == 0 {
                    return;
                }
                let mut ends = cut_points(&data[..filled], SEGMENT_BYTES);
                if !eof {
                    // The last chunk is only cut because the block ends there: carried over.
                    ends.pop();
                }
                let mut chunks = Vec::with_capacity(ends.len());
                let mut end_ok = 0;
                for end in ends {
                    chunks.push(end_ok..end);
                    end_ok = end;
                }
                carry.clear();
                carry.extend_from_slice(&data[end_ok..filled]);
                if chunks.is_empty() {
                    // (Only at the end: the buffer is not needed again.)
                    allocated -= 1;
                } else {
                    let block = Block { data, chunks };
                    let mapped = map(&block);
                    if tx.send(Ok((block, mapped))).is_err() {
                        return;
                    }
                }
                if eof {
                    return;
                }
            }
        });
        // Dropping `rx` on an early error makes the reader thread stop at its next send.
        for item in rx {
            let (block, mapped) = item?;
            f(&block, mapped)?;
            let _ = give_back.send(block.data);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    /// Any reader, read in order.
    struct Sequential<R>(pub R);

    impl<R: Read + Send> Source for Sequential<R> {
        fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            read_full(|b| self.0.read(b), buf)
        }
    }

    /// Splits `reader` into chunks, handing them to `f` one [`Block`] of about [`BLOCK_BYTES`] at a
    /// time (see [`chunk_blocks_mapped`]).
    fn chunk_blocks<R: Read + Send, E: From<std::io::Error> + Send>(
        reader: R,
        mut f: impl FnMut(&Block) -> Result<(), E>,
    ) -> Result<(), E> {
        chunk_blocks_mapped(Sequential(reader), |_| (), |b, ()| f(b))
    }

    /// Splits `reader` into owned chunks in batches (see [`chunk_blocks`]).
    fn chunk_batches<R: Read + Send, E: From<std::io::Error> + Send>(
        reader: R,
        mut f: impl FnMut(Vec<Vec<u8>>) -> Result<(), E>,
    ) -> Result<(), E> {
        chunk_blocks(reader, |b| f(b.slices().map(<[u8]>::to_vec).collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn chunks_concatenate_to_input(seed in any::<u64>(), len in 0usize..(1 << 20)) {
            let data = noise(seed, len);
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

    /// `len` bytes of xorshift noise from `seed`.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn one_pass(data: &[u8]) -> Vec<usize> {
        fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .map(|c| c.offset + c.length)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Cutting in parallel pieces gives the cut points of one pass, for noise, for runs of
        /// one byte value (which never resynchronise) and for a mix of both.
        #[test]
        fn parallel_cut_points_are_those_of_one_pass(
            seed in any::<u64>(),
            len in 0usize..(3 << 20),
            runs in proptest::collection::vec((0usize..(3 << 20), 0usize..(600 << 10), any::<u8>()), 0..4),
            segment in prop_oneof![Just(0usize), 1usize..(1 << 20)],
        ) {
            let mut data = noise(seed, len);
            for (at, n, b) in runs {
                let at = at.min(data.len());
                let end = (at + n).min(data.len());
                data[at..end].fill(b);
            }
            prop_assert_eq!(cut_points(&data, segment), one_pass(&data));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Two interleaved cuts from any two starts (odd ones, ones near the end) give what
        /// FastCDC gives from each start, up to the first end past its stop.
        #[test]
        fn interleaved_cuts_are_fastcdc_cuts(
            seed in any::<u64>(),
            len in 1usize..(2 << 20),
            a in 0.0f64..1.0, b in 0.0f64..1.0, sa in 0.0f64..1.0, sb in 0.0f64..1.0,
            zeros in 0usize..(300 << 10),
        ) {
            let mut data = noise(seed, len);
            let z = zeros.min(len / 2);
            data[len / 3..len / 3 + z].fill(0);
            let at = |f: f64| ((len as f64 * f) as usize).min(len - 1);
            let (a, b) = (at(a), at(b));
            let (stop_a, stop_b) = (a + at(sa), b + at(sb));
            let want = |start: usize, stop: usize| ends_from(&data, start, stop);
            let (got_a, got_b) = cut_two(&data, (a, stop_a), (b, stop_b));
            prop_assert_eq!(got_a, want(a, stop_a));
            prop_assert_eq!(got_b, want(b, stop_b));
        }
    }

    /// A file read at several offsets at once gives the blocks of reading it in order: the
    /// same chunks, for sizes around the piece and block sizes.
    #[test]
    fn positioned_reads_give_the_chunks_of_sequential_ones() {
        let data = noise(5, 2 * BLOCK_BYTES + 3 * PIECE_BYTES + 777);
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1000,
            PIECE_BYTES,
            PIECE_BYTES + 1,
            BLOCK_BYTES,
            BLOCK_BYTES + 5,
            data.len(),
        ] {
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data[..len]).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let collect = |source: &mut dyn FnMut(&mut Vec<Vec<u8>>)| {
                let mut v = Vec::new();
                source(&mut v);
                v
            };
            let positioned = collect(&mut |v| {
                chunk_blocks_mapped::<_, std::io::Error, _>(
                    Positioned::new(&file),
                    |_| (),
                    |b, ()| {
                        v.extend(b.slices().map(<[u8]>::to_vec));
                        Ok(())
                    },
                )
                .unwrap()
            });
            let sequential = collect(&mut |v| {
                chunk_blocks::<_, std::io::Error>(&data[..len], |b| {
                    v.extend(b.slices().map(<[u8]>::to_vec));
                    Ok(())
                })
                .unwrap()
            });
            assert_eq!(positioned.concat(), &data[..len], "{len} bytes");
            assert!(positioned == sequential, "{len} bytes: other chunks");
        }
    }

    #[test]
    fn blocks_cut_like_the_whole_input() {
        let data = noise(11, BLOCK_BYTES * 2 + 12345);
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
        let data = noise(7, 4 << 20);
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
