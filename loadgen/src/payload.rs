//! The synthetic media: Opus-typed audio payloads and VP8 RTP payloads (RFC 7741 payload
//! descriptor, then the VP8 payload header), each ending in a trailer that carries which
//! publisher sent it and when, so a receiver measures send→arrival latency and tells the
//! chamber's programme from the floor holder's. The trailer sits at the end of the
//! payload, well after the descriptor the SFU may rewrite.
//!
//! Times are CLOCK_MONOTONIC nanoseconds: the same clock in every process on the machine.

/// Marks the trailer.
pub const MAGIC: [u8; 3] = *b"DHL";
/// Trailer size: magic, the source, then the send time (big-endian nanoseconds).
pub const TRAILER: usize = 12;

/// Which publisher sent a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The chamber's programme.
    Chamber,
    /// The deputy holding the floor.
    Floor,
}

impl Source {
    /// The stream's name in the publisher's offer.
    pub fn name(self) -> &'static str {
        match self {
            Source::Chamber => "chamber",
            Source::Floor => "floor",
        }
    }

    /// A position for per-source counts: the chamber 0, the floor holder 1.
    pub fn index(self) -> usize {
        match self {
            Source::Chamber => 0,
            Source::Floor => 1,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Source::Chamber => b'G',
            Source::Floor => b'F',
        }
    }

    fn from_byte(b: u8) -> Option<Source> {
        match b {
            b'G' => Some(Source::Chamber),
            b'F' => Some(Source::Floor),
            _ => None,
        }
    }
}

/// What a payload's trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub source: Source,
    /// CLOCK_MONOTONIC nanoseconds when it was sent.
    pub sent_ns: u64,
}

/// CLOCK_MONOTONIC, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn finish(mut out: Vec<u8>, size: usize, t: Trailer) -> Vec<u8> {
    let body = size.max(out.len() + TRAILER) - TRAILER;
    // Filler that is not all zeroes, as an encoder's output would not be.
    let mut x = 0x5au8;
    while out.len() < body {
        x = x.wrapping_mul(31).wrapping_add(7);
        out.push(x);
    }
    out.extend_from_slice(&MAGIC);
    out.push(t.source.byte());
    out.extend_from_slice(&t.sent_ns.to_be_bytes());
    out
}

/// An Opus-typed payload of `size` bytes: a TOC byte (SILK wideband, 20 ms, one frame),
/// filler and the trailer.
pub fn opus(size: usize, t: Trailer) -> Vec<u8> {
    finish(vec![0x48], size, t)
}

/// One packet of a VP8 picture.
#[derive(Debug, Clone, Copy)]
pub struct Vp8Packet {
    /// The 15-bit PictureID of the picture.
    pub picture: u16,
    /// First packet of the picture (S=1, partition 0): it carries the payload header.
    pub first: bool,
    /// The picture is a keyframe.
    pub keyframe: bool,
}

/// A VP8 RTP payload of `size` bytes: descriptor with a 15-bit PictureID; on the first
/// packet of a picture the payload header (keyframes with the start code and 640×360);
/// filler; the trailer.
pub fn vp8(p: Vp8Packet, size: usize, t: Trailer) -> Vec<u8> {
    let picture = p.picture & 0x7fff;
    let mut out = Vec::with_capacity(size.max(32));
    out.push(0x80 | if p.first { 0x10 } else { 0x00 });
    out.push(0x80);
    out.push(0x80 | (picture >> 8) as u8);
    out.push(picture as u8);
    if p.first {
        // Frame tag: P (bit 0) 0 for a keyframe, version 0, show_frame (bit 4).
        let tag = 0x10 | u8::from(!p.keyframe);
        out.extend_from_slice(&[tag, 0x00, 0x00]);
        if p.keyframe {
            out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            out.extend_from_slice(&640u16.to_le_bytes());
            out.extend_from_slice(&360u16.to_le_bytes());
        }
    }
    finish(out, size, t)
}

/// The trailer a payload ends in, if it does.
pub fn trailer(payload: &[u8]) -> Option<Trailer> {
    let at = payload.len().checked_sub(TRAILER)?;
    let trailer = payload.get(at..)?;
    if trailer[..3] != MAGIC {
        return None;
    }
    let source = Source::from_byte(trailer[3])?;
    let mut ns = [0u8; 8];
    ns.copy_from_slice(&trailer[4..]);
    Some(Trailer {
        source,
        sent_ns: u64::from_be_bytes(ns),
    })
}

/// Whether a VP8 payload starts a keyframe (as the SFU reads it).
pub fn vp8_keyframe(payload: &[u8]) -> bool {
    let (Some(&b0), Some(&b1)) = (payload.first(), payload.get(1)) else {
        return false;
    };
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut i = if b0 & 0x80 != 0 { 2 } else { 1 };
    if b0 & 0x80 != 0 {
        if b1 & 0x80 != 0 {
            i += if payload.get(i).is_some_and(|p| p & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        i += usize::from(b1 & 0x40 != 0) + usize::from(b1 & 0x30 != 0);
    }
    payload.get(i).is_some_and(|h| h & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: Source, sent_ns: u64) -> Trailer {
        Trailer { source, sent_ns }
    }

    #[test]
    fn payloads_carry_their_source_send_time_and_size() {
        let a = opus(120, at(Source::Chamber, 42));
        assert_eq!(a.len(), 120);
        assert_eq!(trailer(&a), Some(at(Source::Chamber, 42)));
        let f = opus(120, at(Source::Floor, 43));
        assert_eq!(trailer(&f), Some(at(Source::Floor, 43)));
        let k = Vp8Packet {
            picture: 0x1234,
            first: true,
            keyframe: true,
        };
        let v = vp8(k, 1000, at(Source::Floor, 7));
        assert_eq!(v.len(), 1000);
        assert_eq!(trailer(&v), Some(at(Source::Floor, 7)));
        assert_eq!(&v[..4], &[0x90, 0x80, 0x92, 0x34]);
        assert!(vp8_keyframe(&v));
        let inter = vp8(
            Vp8Packet {
                keyframe: false,
                ..k
            },
            1000,
            at(Source::Chamber, 7),
        );
        assert!(!vp8_keyframe(&inter));
        let middle = vp8(
            Vp8Packet { first: false, ..k },
            1000,
            at(Source::Chamber, 7),
        );
        assert!(!vp8_keyframe(&middle));
        assert_eq!(trailer(&[1, 2, 3]), None);
        assert_eq!(trailer(&[0; 20]), None);
        let mut unknown_source = opus(120, at(Source::Chamber, 1));
        unknown_source[120 - TRAILER + 3] = b'X';
        assert_eq!(trailer(&unknown_source), None);
    }
}
