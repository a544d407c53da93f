//! What each leg negotiates: the codecs with their fixed payload types, RTX, the header
//! extensions of publishers, and a new peer connection of webrtc-rs's sans-IO core with the
//! interceptors of its side (`crate::feedback`).

use super::{DriverError, OPUS_PT, VP8_PT, VP8_RTX_PT, rtc_err};
use crate::feedback::{self, SenderEstimate};
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use std::time::{Duration, Instant};

/// The codec of a kind, with its fixed payload type.
pub fn codec(kind: RtpCodecKind) -> RTCRtpCodecParameters {
    let (mime, clock_rate, channels, fmtp, payload_type) = match kind {
        RtpCodecKind::Audio => (
            MIME_TYPE_OPUS,
            48000,
            2,
            "minptime=10;useinbandfec=1;usedtx=1",
            OPUS_PT,
        ),
        _ => (MIME_TYPE_VP8, 90000, 0, "", VP8_PT),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type,
    }
}

/// Opus and VP8 with their fixed payload types: what a subscriber's leg negotiates.
pub fn media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = MediaEngine::default();
    m.register_codec(codec(RtpCodecKind::Audio), RtpCodecKind::Audio)
        .map_err(rtc_err)?;
    m.register_codec(codec(RtpCodecKind::Video), RtpCodecKind::Video)
        .map_err(rtc_err)?;
    Ok(m)
}

/// What a subscriber's leg negotiates: the codecs, and RTX for VP8, so what a subscriber
/// asks for again (NACK) is resent on a stream of its own, as browsers expect: their
/// receivers count repair apart from media, and a packet asked for again that had in fact
/// arrived (reordered, not lost) is not a replay of its SRTP index, which the receiver's
/// replay protection would drop. A subscriber that offers no RTX (or numbers VP8 otherwise,
/// over WHEP) gets plain retransmissions on the media stream.
pub fn subscribing_media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = media_engine()?;
    register_vp8_rtx(&mut m)?;
    Ok(m)
}

/// RTX (RFC 4588) for VP8, payload type [`VP8_RTX_PT`].
fn register_vp8_rtx(m: &mut MediaEngine) -> Result<(), DriverError> {
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8_PT}"),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_RTX_PT,
        },
        RtpCodecKind::Video,
    )
    .map_err(rtc_err)
}

/// What a publisher's leg negotiates: the codecs, the header extensions that tell the
/// layers of a simulcast publisher apart (mid, rid, repaired rid), and the microphone's
/// audio level (RFC 6464), and RTX for VP8: what the SFU asks a publisher for again
/// (NACK) comes back on the publisher's retransmission stream and is forwarded as the packet
/// it repairs. Subscriber legs carry no header extension but the transport-wide sequence
/// number: every forwarded packet would pay for them in the sender's checks.
pub fn publishing_media_engine() -> Result<MediaEngine, DriverError> {
    let mut m = media_engine()?;
    register_vp8_rtx(&mut m)?;
    configure_simulcast_extension_headers(&mut m).map_err(rtc_err)?;
    for uri in [
        rtc::sdp::extmap::SDES_MID_URI,
        rtc::sdp::extmap::AUDIO_LEVEL_URI,
    ] {
        m.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(rtc_err)?;
    }
    Ok(m)
}

/// Adds to `pc` its one local candidate: a UDP host candidate at `addr`.
pub(super) fn add_host_candidate(
    pc: &mut RTCPeerConnection,
    addr: std::net::SocketAddr,
) -> Result<(), DriverError> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(rtc_err)?;
    let init = RTCIceCandidate::from(&candidate)
        .to_json()
        .map_err(rtc_err)?;
    pc.add_local_candidate(init).map_err(rtc_err)
}

/// Time between two rounds of the ICE agent's connectivity checks while it connects, and
/// how many checks of a candidate pair before it is given up: together still the default
/// 1.4 s of trying (200 ms × 7), in shorter rounds.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);
const ICE_MAX_CHECKS: u16 = 28;

/// A peer connection for a publisher's leg (`publisher`) or a subscriber's, with that
/// side's interceptors (`feedback`).
pub(super) fn new_pc(
    publisher: bool,
    now: Instant,
) -> Result<(RTCPeerConnection, Option<SenderEstimate>), DriverError> {
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // The ICE agent notices its checks have succeeded on its next round, and DTLS starts
        // only then: at the default 200 ms a round, that was most of a leg's set-up.
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_CHECKS))
        .build();
    let mut media = if publisher {
        publishing_media_engine()?
    } else {
        subscribing_media_engine()?
    };
    let (registry, estimate) = if publisher {
        (
            feedback::publisher_chain(&mut media).map_err(rtc_err)?,
            None,
        )
    } else {
        let (registry, estimate) = feedback::subscriber_chain(&mut media).map_err(rtc_err)?;
        (registry, Some(estimate))
    };
    let pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build(now)
        .map_err(rtc_err)?;
    Ok((pc, estimate))
}
