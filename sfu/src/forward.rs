//! What happens to one packet on its way to one subscriber, as pure code: which simulcast
//! layer a subscriber's slot carries, when it may switch (only at a keyframe of the new
//! layer), and how sequence numbers, timestamps and VP8 picture numbers (PictureID,
//! TL0PICIDX) are rewritten so the subscriber sees one continuous stream whatever the layer.
//! Also the few bits of SDP and VP8 the driver reads.
//!
//! Time comes in as milliseconds on the caller's clock.

use crate::routing::{Layer, Millis};

/// The forwarding state of one track on one subscriber leg.
#[derive(Debug, Clone, Default)]
pub struct SlotState {
    /// The layer the router wants sent (video), if any.
    pub target: Option<Layer>,
    /// The layer being sent now.
    pub current: Option<Layer>,
    /// The layer of the last packet sent, with its outgoing sequence number, timestamp and
    /// when it was sent.
    last: Option<(Layer, u16, u32, Millis)>,
    /// The incoming sequence number the current layer started from: anything older of it
    /// arrived late and would reuse an outgoing number.
    since: Option<u16>,
    /// The slot's source changed (another track now feeds it): continue the numbering at
    /// the next packet, and for a picture wait for a keyframe.
    new_source: bool,
    wait_keyframe: bool,
    seq_offset: u16,
    ts_offset: u32,
    /// VP8 picture numbering: what was last sent, what to add to the incoming numbers, and
    /// whether the next picture starts another stream (numbers to continue from the last).
    vp8: Vp8Numbering,
}

/// The VP8 PictureID (15 bits) and TL0PICIDX (8 bits) a slot sends.
#[derive(Debug, Clone, Default)]
struct Vp8Numbering {
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
    picture_offset: u16,
    tl0_offset: u8,
    rebase: bool,
}

/// Where a VP8 payload descriptor (RFC 7741 §4.2) carries its picture numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Ids {
    /// PictureID, its offset in the payload, and whether it is 15 bits wide (else 7).
    pub picture: Option<(u16, usize, bool)>,
    /// TL0PICIDX and its offset.
    pub tl0: Option<(u8, usize)>,
}

/// Reads the picture numbers of a VP8 payload descriptor; none when it has no extension.
pub fn vp8_ids(payload: &[u8]) -> Option<Vp8Ids> {
    let b0 = *payload.first()?;
    if b0 & 0x80 == 0 {
        return None;
    }
    let b1 = *payload.get(1)?;
    let mut i = 2;
    let mut ids = Vp8Ids {
        picture: None,
        tl0: None,
    };
    if b1 & 0x80 != 0 {
        let p0 = *payload.get(i)?;
        if p0 & 0x80 != 0 {
            let p1 = *payload.get(i + 1)?;
            ids.picture = Some(((u16::from(p0 & 0x7f) << 8) | u16::from(p1), i, true));
            i += 2;
        } else {
            ids.picture = Some((u16::from(p0), i, false));
            i += 1;
        }
    }
    if b1 & 0x40 != 0 {
        ids.tl0 = Some((*payload.get(i)?, i));
    }
    Some(ids)
}

impl Vp8Numbering {
    /// The payload to send instead, when its numbers change.
    fn rewrite(&mut self, payload: &[u8], ids: Option<Vp8Ids>) -> Option<Vec<u8>> {
        let ids = ids?;
        if self.rebase {
            self.rebase = false;
            if let (Some((incoming, _, _)), Some(last)) = (ids.picture, self.last_picture) {
                self.picture_offset = last.wrapping_add(1).wrapping_sub(incoming) & 0x7fff;
            }
            if let (Some((incoming, _)), Some(last)) = (ids.tl0, self.last_tl0) {
                self.tl0_offset = last.wrapping_add(1).wrapping_sub(incoming);
            }
        }
        let mut out: Option<Vec<u8>> = None;
        if let Some((incoming, at, wide)) = ids.picture {
            let mask = if wide { 0x7fff } else { 0x7f };
            let picture = incoming.wrapping_add(self.picture_offset) & mask;
            self.last_picture = Some(picture);
            if picture != incoming {
                let buf = out.get_or_insert_with(|| payload.to_vec());
                if wide {
                    let [hi, lo] = picture.to_be_bytes();
                    buf[at] = 0x80 | hi;
                    buf[at + 1] = lo;
                } else {
                    buf[at] = picture as u8 & 0x7f;
                }
            }
        }
        if let Some((incoming, at)) = ids.tl0 {
            let tl0 = incoming.wrapping_add(self.tl0_offset);
            self.last_tl0 = Some(tl0);
            if tl0 != incoming {
                out.get_or_insert_with(|| payload.to_vec())[at] = tl0;
            }
        }
        out
    }
}

/// The clock rate of video RTP timestamps.
const VIDEO_HZ_PER_MS: u32 = 90;

impl SlotState {
    /// Decides whether a video packet of `layer` goes to this subscriber and with which
    /// sequence number and timestamp. A slot starts, or switches to its target layer, only
    /// at a keyframe of that layer when `gated` (simulcast: the layers are different
    /// streams); a single-layer track starts at once.
    pub fn admit(
        &mut self,
        layer: Layer,
        seq: u16,
        ts: u32,
        keyframe: bool,
        gated: bool,
        now: Millis,
    ) -> Option<(u16, u32)> {
        let target = self.target?;
        if self.current != Some(layer) {
            let may_start = layer == target && (keyframe || !(gated || self.wait_keyframe));
            if !may_start {
                return None;
            }
            self.current = Some(layer);
            self.since = Some(seq);
            self.wait_keyframe = false;
        } else if self
            .since
            .is_some_and(|since| (seq.wrapping_sub(since) as i16) < 0)
        {
            return None;
        }
        if let Some((last_layer, last_seq, last_ts, at)) = self.last
            && (last_layer != layer || self.new_source)
        {
            // Another stream from here on: continue the numbering where the last one
            // stopped, and the clock by the time that passed.
            let elapsed = u32::try_from(now.saturating_sub(at)).unwrap_or(u32::MAX);
            let step = elapsed.saturating_mul(VIDEO_HZ_PER_MS).max(1);
            self.seq_offset = last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_offset = last_ts.wrapping_add(step).wrapping_sub(ts);
            self.vp8.rebase = true;
        }
        self.new_source = false;
        let out = (
            seq.wrapping_add(self.seq_offset),
            ts.wrapping_add(self.ts_offset),
        );
        self.last = Some((layer, out.0, out.1, now));
        Some(out)
    }

    /// The VP8 payload to send instead of `payload` (a packet [`SlotState::admit`] just let
    /// through), when its picture numbers must change: after a layer switch or a change of
    /// source they continue from the last picture sent, as the receiver's decoder expects
    /// of one stream. `None`: send it as it is.
    ///
    /// `ids` are the payload's picture numbers ([`vp8_ids`]), read once per packet for all
    /// its subscribers.
    pub fn vp8_payload(&mut self, payload: &[u8], ids: Option<Vp8Ids>) -> Option<Vec<u8>> {
        self.vp8.rewrite(payload, ids)
    }

    /// Another track feeds this slot from now on (a programme slot following the speaker):
    /// the receiver still sees one stream. A picture starts at the new source's keyframe.
    pub fn change_source(&mut self, picture: bool) {
        self.current = None;
        self.since = None;
        self.new_source = true;
        self.wait_keyframe = picture;
    }

    /// The router stopped this slot: the next start waits for a keyframe again.
    pub fn stop(&mut self) {
        self.target = None;
        self.current = None;
        self.since = None;
    }
}

/// Removes a received packet's header extensions: they were negotiated with its publisher,
/// and each subscriber's connection numbers its own. The padding they needed goes too, or
/// an extension the subscriber's connection adds later (the transport-wide sequence number)
/// is sized wrong and the packet cannot be sealed.
pub fn strip_extensions(header: &mut rtc::rtp::header::Header) {
    header.extensions.clear();
    header.extension = false;
    header.extensions_padding = 0;
}

/// Whether a VP8 RTP payload (RFC 7741) starts a keyframe.
pub fn vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let extended = b0 & 0x80 != 0;
    let start = b0 & 0x10 != 0;
    let partition = b0 & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut i = 1;
    if extended {
        let Some(&b1) = payload.get(1) else {
            return false;
        };
        i = 2;
        if b1 & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pid) = payload.get(i) else {
                return false;
            };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if b1 & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if b1 & 0x30 != 0 {
            i += 1; // TID / KEYIDX
        }
    }
    // The VP8 payload header: P (inverse keyframe flag) is its lowest bit.
    payload.get(i).is_some_and(|h| h & 0x01 == 0)
}

/// An RFC 6464 audio level: (level in −dBov, 0 loudest to 127 silence; voice activity).
pub fn audio_level(extension: &[u8]) -> Option<(u8, bool)> {
    let b = *extension.first()?;
    Some((b & 0x7f, b & 0x80 != 0))
}

/// The id an SDP gives header extension `uri` in its first `kind` m-section (`audio` or
/// `video`).
pub fn extmap_id(sdp: &str, kind: &str, uri: &str) -> Option<u8> {
    let mut in_kind = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            in_kind = m.starts_with(kind);
            continue;
        }
        if !in_kind {
            continue;
        }
        let Some(rest) = line.strip_prefix("a=extmap:") else {
            continue;
        };
        let Some((id, u)) = rest.split_once(' ') else {
            continue;
        };
        if u.split_whitespace().next() == Some(uri) {
            return id.split('/').next()?.parse().ok();
        }
    }
    None
}

/// The simulcast layers a publisher's offer announces for its video (`a=rid:… send`, in the
/// order of `a=simulcast:send`), each with the layer it carries: by the usual names
/// (q/h/f, l/m/h, low/mid/high, 0/1/2), otherwise lowest first in the announced order.
pub fn simulcast_rids(sdp: &str) -> Vec<(String, Layer)> {
    let mut in_video = false;
    let mut rids: Vec<String> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            continue;
        }
        if !in_video {
            continue;
        }
        if let Some(rest) = line.strip_prefix("a=rid:") {
            let mut parts = rest.split_whitespace();
            if let (Some(id), Some("send")) = (parts.next(), parts.next()) {
                rids.push(id.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("a=simulcast:") {
            let mut parts = rest.split_whitespace();
            while let Some(dir) = parts.next() {
                let list = parts.next().unwrap_or_default();
                if dir == "send" {
                    order = list
                        .split(';')
                        .flat_map(|alt| alt.split(','))
                        .map(|r| r.trim_start_matches('~').to_owned())
                        .collect();
                }
            }
        }
    }
    if rids.len() < 2 {
        return Vec::new();
    }
    if !order.is_empty() {
        rids.sort_by_key(|r| order.iter().position(|o| o == r).unwrap_or(usize::MAX));
    }
    let named = |r: &str| match r.to_ascii_lowercase().as_str() {
        "q" | "l" | "low" | "0" => Some(Layer::Low),
        "h" | "m" | "mid" | "1" => Some(Layer::Mid),
        "f" | "high" | "2" => Some(Layer::High),
        _ => None,
    };
    let by_name: Vec<Option<Layer>> = rids.iter().map(|r| named(r)).collect();
    let distinct: std::collections::BTreeSet<Layer> = by_name.iter().flatten().copied().collect();
    if distinct.len() == rids.len() {
        return rids
            .into_iter()
            .zip(by_name.into_iter().flatten())
            .collect();
    }
    let by_order: &[Layer] = if rids.len() == 2 {
        &[Layer::Low, Layer::High]
    } else {
        &[Layer::Low, Layer::Mid, Layer::High]
    };
    rids.into_iter().zip(by_order.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload descriptor with a 15-bit PictureID and a TL0PICIDX (and TID), then a
    /// keyframe's payload header.
    fn vp8_wide(picture: u16, tl0: u8) -> Vec<u8> {
        let [hi, lo] = picture.to_be_bytes();
        vec![0x90, 0xe0, 0x80 | hi, lo, tl0, 0x20, 0x00, 0x01, 0x02]
    }

    fn rewrite(s: &mut SlotState, payload: &[u8]) -> Option<Vec<u8>> {
        s.vp8_payload(payload, vp8_ids(payload))
    }

    fn ids_of(payload: &[u8]) -> (u16, u8) {
        let ids = vp8_ids(payload).expect("ids");
        (ids.picture.expect("picture").0, ids.tl0.expect("tl0").0)
    }

    #[test]
    fn vp8_picture_numbers_are_read_in_both_widths() {
        assert_eq!(
            vp8_ids(&vp8_wide(0x1234, 7)),
            Some(Vp8Ids {
                picture: Some((0x1234, 2, true)),
                tl0: Some((7, 4)),
            })
        );
        // A 7-bit PictureID, no TL0PICIDX.
        assert_eq!(
            vp8_ids(&[0x90, 0x80, 0x05, 0x00]),
            Some(Vp8Ids {
                picture: Some((5, 2, false)),
                tl0: None,
            })
        );
        assert_eq!(vp8_ids(&[0x10, 0x00]), None, "no extension");
        assert_eq!(vp8_ids(&[0x90, 0x80, 0x85]), None, "truncated");
        assert_eq!(vp8_ids(&[]), None);
    }

    #[test]
    fn picture_numbers_continue_across_a_layer_switch() {
        let mut s = SlotState {
            target: Some(Layer::Low),
            ..SlotState::default()
        };
        // The low layer's own numbering goes out untouched.
        for (i, pic) in [1000u16, 1001].iter().enumerate() {
            let seq = 10 + i as u16;
            assert!(s.admit(Layer::Low, seq, 0, true, true, 0).is_some());
            assert_eq!(rewrite(&mut s, &vp8_wide(*pic, 40 + i as u8)), None);
        }
        // Switch to the high layer, which numbers its pictures from 7 and TL0 from 200.
        s.target = Some(Layer::High);
        assert!(s.admit(Layer::High, 500, 0, true, true, 10).is_some());
        let first = rewrite(&mut s, &vp8_wide(7, 200)).expect("rewritten");
        assert_eq!(ids_of(&first), (1002, 42));
        assert_eq!(&first[5..], &vp8_wide(7, 200)[5..], "the rest is untouched");
        // Two packets of the next picture keep one number.
        assert!(s.admit(Layer::High, 501, 0, false, true, 20).is_some());
        let a = rewrite(&mut s, &vp8_wide(8, 200)).expect("rewritten");
        assert!(s.admit(Layer::High, 502, 0, false, true, 20).is_some());
        let b = rewrite(&mut s, &vp8_wide(8, 201)).expect("rewritten");
        assert_eq!(ids_of(&a), (1003, 42));
        assert_eq!(ids_of(&b), (1003, 43));
    }

    #[test]
    fn picture_numbers_wrap_at_fifteen_bits() {
        let mut s = SlotState {
            target: Some(Layer::Low),
            ..SlotState::default()
        };
        assert!(s.admit(Layer::Low, 1, 0, true, true, 0).is_some());
        assert_eq!(rewrite(&mut s, &vp8_wide(0x7fff, 255)), None);
        s.target = Some(Layer::Mid);
        assert!(s.admit(Layer::Mid, 90, 0, true, true, 5).is_some());
        let out = rewrite(&mut s, &vp8_wide(300, 9)).expect("rewritten");
        assert_eq!(ids_of(&out), (0, 0));
    }

    #[test]
    fn a_stripped_header_takes_a_new_extension_at_its_true_size() {
        use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
        // A browser's packet: one-byte extensions of 3 + 2 bytes (elements of 4 and 3 bytes,
        // one byte of padding).
        let mut h = rtc::rtp::header::Header {
            version: 2,
            payload_type: 96,
            sequence_number: 7,
            ssrc: 9,
            ..Default::default()
        };
        h.set_extension(1, bytes::Bytes::from_static(&[1, 2, 3]))
            .expect("ext");
        h.set_extension(2, bytes::Bytes::from_static(&[4, 5]))
            .expect("ext");
        let wire = h.marshal().expect("marshal");
        let mut received =
            rtc::rtp::header::Header::unmarshal(&mut wire.clone()).expect("unmarshal");
        assert!(received.extensions_padding > 0, "the case needs padding");

        strip_extensions(&mut received);
        assert_eq!(received.marshal_size(), 12, "no extension left");
        // What the subscriber's chain adds: a two-byte sequence number.
        received
            .set_extension(3, bytes::Bytes::from_static(&[0, 1]))
            .expect("ext");
        let out = received.marshal().expect("marshal");
        assert_eq!(out.len(), received.marshal_size());
        assert_eq!(out.len(), 12 + 4 + 4);
    }

    #[test]
    fn a_slot_starts_at_a_keyframe_and_switches_layers_without_a_seam() {
        let mut s = SlotState {
            target: Some(Layer::Low),
            ..SlotState::default()
        };
        // Simulcast: nothing until a keyframe of the target layer.
        assert_eq!(s.admit(Layer::Low, 100, 9000, false, true, 0), None);
        assert_eq!(s.admit(Layer::High, 500, 9000, true, true, 0), None);
        assert_eq!(
            s.admit(Layer::Low, 101, 12000, true, true, 33),
            Some((101, 12000))
        );
        assert_eq!(
            s.admit(Layer::Low, 102, 15000, false, true, 66),
            Some((102, 15000))
        );
        // The router wants High: Low goes on until High's keyframe.
        s.target = Some(Layer::High);
        assert_eq!(s.admit(Layer::High, 700, 50000, false, true, 80), None);
        assert_eq!(
            s.admit(Layer::Low, 103, 18000, false, true, 99),
            Some((103, 18000))
        );
        let (seq, ts) = s
            .admit(Layer::High, 701, 51000, true, true, 109)
            .expect("switch at the keyframe");
        assert_eq!(seq, 104, "numbering continues");
        assert_eq!(
            ts,
            18000 + 10 * 90,
            "the clock advances by the time that passed"
        );
        assert_eq!(s.current, Some(Layer::High));
        assert_eq!(
            s.admit(Layer::Low, 104, 21000, true, true, 120),
            None,
            "old layer dropped"
        );
        assert_eq!(
            s.admit(Layer::High, 702, 54000, false, true, 133),
            Some((105, ts + 3000))
        );
        // Sequence numbers wrap.
        s.target = Some(Layer::Low);
        let (seq, _) = s
            .admit(Layer::Low, 65535, 0, true, true, 140)
            .expect("switch");
        assert_eq!(seq, 106);
        assert_eq!(
            s.admit(Layer::Low, 0, 3000, false, true, 170).map(|x| x.0),
            Some(107)
        );
    }

    #[test]
    fn a_single_layer_track_starts_at_once_and_a_stopped_slot_sends_nothing() {
        let mut s = SlotState::default();
        assert_eq!(
            s.admit(Layer::High, 1, 1, false, false, 0),
            None,
            "no target: not forwarded"
        );
        s.target = Some(Layer::High);
        assert_eq!(s.admit(Layer::High, 2, 2, false, false, 0), Some((2, 2)));
        s.stop();
        assert_eq!(s.admit(Layer::High, 3, 3, true, false, 0), None);
    }

    #[test]
    fn a_programme_slot_changes_source_at_a_keyframe_without_a_seam() {
        let mut s = SlotState {
            target: Some(Layer::High),
            ..SlotState::default()
        };
        assert_eq!(
            s.admit(Layer::High, 10, 1000, false, false, 0),
            Some((10, 1000))
        );
        assert_eq!(
            s.admit(Layer::High, 11, 4000, false, false, 33),
            Some((11, 4000))
        );
        // The speaker's camera takes over: same layer, another stream.
        s.change_source(true);
        assert_eq!(
            s.admit(Layer::High, 900, 77, false, false, 50),
            None,
            "waits for a keyframe"
        );
        let (seq, ts) = s
            .admit(Layer::High, 901, 3077, true, false, 66)
            .expect("keyframe");
        assert_eq!(seq, 12);
        assert_eq!(ts, 4000 + 33 * 90);
        assert_eq!(
            s.admit(Layer::High, 902, 6077, false, false, 99),
            Some((13, ts + 3000))
        );
        // Back to the hall's microphone: audio starts at once, numbering continues.
        s.change_source(false);
        assert_eq!(
            s.admit(Layer::High, 5, 500, false, false, 120).map(|x| x.0),
            Some(14)
        );
    }

    #[test]
    fn vp8_keyframes_are_recognised_through_the_payload_descriptor() {
        assert!(vp8_keyframe(&[0x10, 0x00]), "S=1, PID=0, P=0");
        assert!(!vp8_keyframe(&[0x10, 0x01]), "an interframe");
        assert!(!vp8_keyframe(&[0x00, 0x00]), "not the start of a partition");
        assert!(!vp8_keyframe(&[0x11, 0x00]), "partition 1");
        // X, I with a 15-bit picture id, L, T: header after 5 bytes.
        assert!(vp8_keyframe(&[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x00]));
        assert!(!vp8_keyframe(&[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x01]));
        // X, I with a 7-bit picture id.
        assert!(vp8_keyframe(&[0x90, 0x80, 0x05, 0x9c]));
        assert!(!vp8_keyframe(&[]));
        assert!(!vp8_keyframe(&[0x90]));
        assert!(!vp8_keyframe(&[0x90, 0x80]));
    }

    #[test]
    fn audio_levels_and_extension_ids_are_read() {
        assert_eq!(audio_level(&[0x80 | 23]), Some((23, true)));
        assert_eq!(audio_level(&[127]), Some((127, false)));
        assert_eq!(audio_level(&[]), None);
        let sdp = "m=audio 9 X 111\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\nm=video 9 X 96\r\na=extmap:4/sendonly urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:1 urn:x\r\n";
        let level = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
        assert_eq!(extmap_id(sdp, "audio", level), Some(1));
        assert_eq!(extmap_id(sdp, "video", level), None);
        assert_eq!(
            extmap_id(sdp, "video", "urn:ietf:params:rtp-hdrext:sdes:mid"),
            Some(4)
        );
    }

    #[test]
    fn simulcast_layers_come_from_the_rids_by_name_or_by_order() {
        let chrome = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rid:x send\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n";
        assert_eq!(
            simulcast_rids(chrome),
            vec![
                ("q".to_owned(), Layer::Low),
                ("h".to_owned(), Layer::Mid),
                ("f".to_owned(), Layer::High)
            ]
        );
        let custom = "m=video 9 X 96\r\na=rid:big send\r\na=rid:small send\r\na=simulcast:send small;big\r\n";
        assert_eq!(
            simulcast_rids(custom),
            vec![
                ("small".to_owned(), Layer::Low),
                ("big".to_owned(), Layer::High)
            ]
        );
        assert!(simulcast_rids("m=video 9 X 96\r\na=rid:one send\r\n").is_empty());
        assert!(simulcast_rids("m=video 9 X 96\r\n").is_empty());
        let recv = "m=video 9 X 96\r\na=rid:q recv\r\na=rid:f recv\r\n";
        assert!(
            simulcast_rids(recv).is_empty(),
            "receive rids are not published layers"
        );
    }
}
