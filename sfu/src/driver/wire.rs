//! What the driver reads from outside text and bytes without the WebRTC core: the media
//! of an SDP (payload types and their kinds, codecs, ICE user fragment), the leg a STUN
//! check is for, and whether a datagram is a picture packet. Pure functions, tested here.

use crate::routing::{Layer, Media};
use std::collections::HashMap;

/// Whether a datagram is a picture packet (RTP whose payload type `payload_types` calls
/// video): what may wait behind sound and control when several are read at once. RTP and
/// RTCP are told apart by the second byte (RFC 5761), SRTP keeps the header in the clear.
pub fn is_picture(datagram: &[u8], payload_types: &HashMap<u8, Media>) -> bool {
    match datagram {
        [b0, b1, ..] if b0 >> 6 == 2 && !(192..=223).contains(b1) => {
            payload_types.get(&(b1 & 0x7f)) == Some(&Media::Video)
        }
        _ => false,
    }
}

/// The first half of a STUN USERNAME ("receiver:sender"): the ufrag of the leg it is for.
pub(super) fn stun_target_ufrag(b: &[u8]) -> Option<String> {
    if b.len() < 20 || b[0] & 0xc0 != 0 || b[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut i = 20;
    while i + 4 <= b.len() {
        let t = u16::from_be_bytes([b[i], b[i + 1]]);
        let l = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if i + 4 + l > b.len() {
            return None;
        }
        if t == 0x0006 {
            let user = std::str::from_utf8(&b[i + 4..i + 4 + l]).ok()?;
            return user.split(':').next().map(str::to_owned);
        }
        i += 4 + l.div_ceil(4) * 4;
    }
    None
}

/// A participant id as an SDP stream id (`msid`): a token, anything else replaced.
pub(super) fn stream_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(super) fn sdp_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:").map(str::to_owned))
}

/// What a layer is expected to carry, bits/s, until measured.
pub(super) fn nominal_bitrate(layer: Layer) -> u64 {
    match layer {
        Layer::Low => 150_000,
        Layer::Mid => 500_000,
        Layer::High => 1_500_000,
    }
}

/// Which payload types of an offer are audio and which video, from its m-lines.
///
/// Repair formats (RTX, RED, FEC) are left out: the core restores a retransmission to the
/// packet it repairs, and anything else of theirs must not be forwarded as media.
pub(super) fn sdp_payload_types(sdp: &str) -> HashMap<u8, Media> {
    let mut out = HashMap::new();
    let repair: Vec<u8> = sdp
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("a=rtpmap:")?;
            let (pt, codec) = rest.split_once(' ')?;
            let name = codec.split('/').next()?.to_ascii_lowercase();
            matches!(
                name.as_str(),
                "rtx" | "red" | "ulpfec" | "flexfec" | "flexfec-03"
            )
            .then(|| pt.parse().ok())?
        })
        .collect();
    for line in sdp.lines() {
        let media = if line.starts_with("m=audio") {
            Media::Audio
        } else if line.starts_with("m=video") {
            Media::Video
        } else {
            continue;
        };
        for pt in line.split_whitespace().skip(3) {
            if let Ok(pt) = pt.parse::<u8>()
                && !repair.contains(&pt)
            {
                out.insert(pt, media);
            }
        }
    }
    out
}

/// The payload types an SDP gives Opus and VP8 (the first of each).
pub(super) fn sdp_codec_payload_types(sdp: &str) -> (Option<u8>, Option<u8>) {
    let mut opus = None;
    let mut vp8 = None;
    for line in sdp.lines() {
        let Some(rest) = line.trim().strip_prefix("a=rtpmap:") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(pt), Some(codec)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pt) = pt.parse::<u8>() else { continue };
        let name = codec.split('/').next().unwrap_or_default();
        if name.eq_ignore_ascii_case("opus") {
            opus = opus.or(Some(pt));
        } else if name.eq_ignore_ascii_case("VP8") {
            vp8 = vp8.or(Some(pt));
        }
    }
    (opus, vp8)
}

pub(super) fn sdp_media(sdp: &str) -> (bool, bool) {
    let audio = sdp.lines().any(|l| l.starts_with("m=audio"));
    let video = sdp.lines().any(|l| l.starts_with("m=video"));
    (audio, video)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=ice-ufrag:abcd\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 97 98 99\r\n\
a=rtpmap:97 VP8/90000\r\n\
a=rtpmap:98 rtx/90000\r\n\
a=rtpmap:99 H264/90000\r\n";

    #[test]
    fn picture_packets_are_told_from_sound_and_control() {
        let pts = sdp_payload_types(OFFER);
        // RTP (version 2), payload type 97 (VP8 here), with and without the marker bit.
        assert!(is_picture(&[0x80, 97, 0, 1], &pts));
        assert!(is_picture(&[0x80, 0x80 | 97, 0, 1], &pts));
        // Opus, RTCP (sender report 200, feedback 205), STUN, DTLS, nothing.
        assert!(!is_picture(&[0x80, 96, 0, 1], &pts));
        assert!(!is_picture(&[0x80, 200, 0, 6], &pts));
        assert!(!is_picture(&[0x81, 205, 0, 4], &pts));
        assert!(!is_picture(&[0x00, 0x01, 0x00, 0x10], &pts));
        assert!(!is_picture(&[0x16, 0xfe, 0xfd], &pts));
        assert!(!is_picture(&[], &pts));
    }

    #[test]
    fn payload_types_are_read_from_the_peers_own_numbering() {
        let pts = sdp_payload_types(OFFER);
        assert_eq!(pts.get(&96), Some(&Media::Audio));
        assert_eq!(pts.get(&8), Some(&Media::Audio));
        assert_eq!(pts.get(&97), Some(&Media::Video));
        assert_eq!(pts.get(&98), None, "RTX is repair, not media");
        assert_eq!(pts.get(&99), Some(&Media::Video));
        assert_eq!(pts.get(&111), None);
        assert_eq!(sdp_codec_payload_types(OFFER), (Some(96), Some(97)));
        assert_eq!(sdp_media(OFFER), (true, true));
        assert_eq!(sdp_ufrag(OFFER).as_deref(), Some("abcd"));
    }

    #[test]
    fn a_stun_username_names_the_leg_and_garbage_names_none() {
        // Binding request, USERNAME "leg1:peer" (9 bytes, padded to 12).
        let mut b = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xa4, 0x42];
        b.extend_from_slice(&[0; 12]);
        b.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        b.extend_from_slice(b"leg1:peer\0\0\0");
        assert_eq!(stun_target_ufrag(&b).as_deref(), Some("leg1"));
        assert_eq!(stun_target_ufrag(&b[..22]), None, "truncated attribute");
        assert_eq!(stun_target_ufrag(&[0x80; 40]), None, "an RTP packet");
        assert_eq!(stun_target_ufrag(&[]), None);
    }
}
