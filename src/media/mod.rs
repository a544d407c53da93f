//! The media glue: the server's SFU (`dienhong_sfu::driver`), what each account is to it,
//! the floor of the sitting followed into its forwarding, and the signalling operations the
//! WebSocket (`media_*` messages) and the WHIP/WHEP routes call.
//!
//! Who is what (`participant_of`, pure): the operator of the chamber's delegation publishes
//! the programme; a site operator is a delegation site's room; the chair and vice-chair are
//! presiding (their microphones always heard) and receive like a chair console; a deputy
//! is a remote deputy (forwarded only with the floor); clerks and observers only receive.
//!
//! Who is heard (`speaker_of`, pure): the deputy holding the floor, through their own
//! microphone when they publish one, through their delegation site's room otherwise; a
//! deputy who checked in from the hall is heard through the chamber's sound, and one who
//! checked in remote only through their own device, so neither opens their room.

use crate::config::{IceServerConfig, MediaConfig};
use crate::sitting::{ActorId, DelegationKind, Location, Millis, Phase, Role, Roster, SittingId};
use crate::writer::{Committed, SittingHandle};
use dienhong_sfu::driver::{
    Driver, DriverError, LegEvent, LegId, Level, Options, RTCSessionDescription,
};
use dienhong_sfu::load::{LoadReport, LoadTuning};
use dienhong_sfu::routing::Tuning;
use dienhong_sfu::routing::{Kind, ParticipantId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// Why a media operation was refused; each has a stable code for clients.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The server runs without the SFU, or follows no sitting.
    #[error("the media plane is not running")]
    Disabled,
    /// The account may not do this (not in the sitting, or receive-only).
    #[error("{0}")]
    NotPermitted(String),
    /// No such media connection of this account.
    #[error("no such media connection")]
    NoSuchLeg,
    /// The SDP is missing, too large, or refused by the WebRTC stack.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// Too many media connections for one account.
    #[error("too many media connections for this account")]
    TooManyLegs,
    /// The SFU has stopped.
    #[error("the media plane is unavailable")]
    Unavailable,
    /// No room for another receiver now; try again after this many seconds.
    #[error("the media server is at capacity; try again in {0} s")]
    Overloaded(u64),
}

impl MediaError {
    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Disabled => "media_disabled",
            MediaError::NotPermitted(_) => "not_permitted",
            MediaError::NoSuchLeg => "no_such_media",
            MediaError::InvalidSdp(_) => "invalid_sdp",
            MediaError::TooManyLegs => "too_many_media",
            MediaError::Unavailable => "media_unavailable",
            MediaError::Overloaded(_) => "media_overloaded",
        }
    }
}

impl From<DriverError> for MediaError {
    fn from(e: DriverError) -> MediaError {
        match e {
            DriverError::Rtc(m) => MediaError::InvalidSdp(m),
            DriverError::NoSuchPeer => MediaError::NoSuchLeg,
            DriverError::Io(_) | DriverError::Stopped => MediaError::Unavailable,
            DriverError::Overloaded { retry_after_s } => MediaError::Overloaded(retry_after_s),
        }
    }
}

/// What an account is to the SFU: its kind, and whether it presides.
pub fn participant_of(roster: &Roster, actor: &ActorId) -> Option<(Kind, bool)> {
    let a = roster.actor(actor)?;
    let presiding = a.presides();
    let kind = if a.has(Role::SiteOperator) {
        let chamber = a
            .delegation
            .as_ref()
            .and_then(|d| roster.delegations.get(d))
            .is_some_and(|d| d.kind == DelegationKind::Chamber);
        if chamber { Kind::Chamber } else { Kind::Site }
    } else if presiding {
        Kind::ChairConsole
    } else if a.has(Role::Deputy) {
        Kind::RemoteDeputy
    } else {
        Kind::Display
    };
    Some((kind, presiding))
}

/// Whether an account of this kind may publish media.
pub fn may_publish(kind: Kind) -> bool {
    kind != Kind::Display
}

/// The floor holder and the delegation site whose room carries them when they publish no
/// microphone of their own: none when they said at check-in that they sit in the hall (the
/// chamber's sound carries them) or alone on their own device. A deputy who did not say is
/// taken to be where their delegation's room can carry them.
pub fn speaker_of(
    roster: &Roster,
    deputy: Option<&ActorId>,
    location: Option<Location>,
) -> (Option<ParticipantId>, Option<ParticipantId>) {
    let Some(deputy) = deputy else {
        return (None, None);
    };
    if matches!(location, Some(Location::Hall | Location::Remote)) {
        return (Some(ParticipantId(deputy.0.clone())), None);
    }
    let delegation = roster.actor(deputy).and_then(|a| a.delegation.as_ref());
    let site = delegation.and_then(|d| {
        roster
            .actors
            .values()
            .find(|a| a.has(Role::SiteOperator) && a.delegation.as_ref() == Some(d))
            .map(|a| ParticipantId(a.id.0.clone()))
    });
    (Some(ParticipantId(deputy.0.clone())), site)
}

/// The sittings as the media plane reads them (sittings are added while the server runs).
pub type SittingList = Arc<dyn Fn() -> Vec<SittingHandle> + Send + Sync>;

/// The sitting the SFU should follow: the configured one if it exists; else a sitting in
/// session (open or suspended); else the first scheduled one; else, when every sitting is
/// closed, the one it follows now (its participants keep their media), or the last.
pub fn choose_sitting(
    sittings: &[(SittingId, Phase)],
    configured: Option<&SittingId>,
    current: Option<&SittingId>,
) -> Option<SittingId> {
    if let Some(c) = configured {
        return sittings
            .iter()
            .find(|(id, _)| id == c)
            .map(|(id, _)| id.clone());
    }
    let in_session = |p: &Phase| matches!(p, Phase::Open | Phase::Suspended);
    // A sitting in session keeps the SFU while another is also in session.
    if let Some(c) = current
        && sittings.iter().any(|(id, p)| id == c && in_session(p))
    {
        return Some(c.clone());
    }
    sittings
        .iter()
        .find(|(_, p)| in_session(p))
        .or_else(|| sittings.iter().find(|(_, p)| *p == Phase::Scheduled))
        .map(|(id, _)| id.clone())
        .or_else(|| current.cloned())
        .or_else(|| sittings.last().map(|(id, _)| id.clone()))
}

/// The sitting the SFU follows now and its roster.
#[derive(Debug, Clone, Default)]
struct Following {
    sitting: Option<SittingId>,
    roster: Arc<Roster>,
}

/// The server's media plane.
pub struct Media {
    driver: Driver,
    following: std::sync::RwLock<Following>,
    ice_servers: Vec<IceServerConfig>,
    max_sdp_bytes: usize,
    max_legs: usize,
    /// Each open media connection and its account.
    legs: Mutex<HashMap<LegId, ActorId>>,
    /// Media connections being set up, per account.
    pending: Mutex<HashMap<ActorId, usize>>,
    /// The microphones heard in the last interval, for chair consoles.
    levels: watch::Sender<Arc<Vec<Level>>>,
    /// Open WHIP/WHEP sessions: resource id → their account, connection, and the ICE user
    /// fragment of the client's offer.
    resources: Mutex<HashMap<String, Resource>>,
}

/// A WHIP or WHEP session.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its account.
    pub actor: ActorId,
    /// Its media connection.
    pub leg: LegId,
    /// The client's ICE user fragment (a PATCH with another is an ICE restart).
    pub ufrag: Option<String>,
    /// When the token that opened it expires: the session ends then.
    pub expires: Millis,
}

/// The sessions whose token has expired at `now`: (resource id, account, connection).
pub fn expired(
    resources: &HashMap<String, Resource>,
    now: Millis,
) -> Vec<(String, ActorId, LegId)> {
    let mut out: Vec<(String, ActorId, LegId)> = resources
        .iter()
        .filter(|(_, r)| r.expires <= now)
        .map(|(id, r)| (id.clone(), r.actor.clone(), r.leg))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How often microphone levels are sampled for the chair consoles.
const LEVELS_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

impl Media {
    /// Starts the SFU on the first free port of the configured range, following the floor
    /// of the sitting [`choose_sitting`] picks, and moving to another as sittings open,
    /// close and are added (`changes`). `None` when disabled.
    pub fn start(
        config: &MediaConfig,
        sittings: SittingList,
        changes: watch::Receiver<u64>,
        stop: watch::Receiver<bool>,
    ) -> Result<Option<Arc<Media>>, MediaStartError> {
        if !config.enabled {
            return Ok(None);
        }
        let configured = (!config.sitting.is_empty()).then(|| SittingId::new(&config.sitting));
        let advertise = config.public_ip().map_err(MediaStartError::Config)?;
        let load = LoadTuning {
            high: config.shed_above,
            low: config.restore_below,
            admit_ceiling: config.admit_ceiling,
            unmeasured_receiver_pps: dienhong_sfu::load::UNMEASURED_RECEIVER_PPS,
            ..LoadTuning::default()
        };
        let options = Options {
            advertise,
            tuning: Tuning::default(),
            load,
            threads: config.io_threads,
        };
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        if config.io_threads > cores {
            tracing::warn!(
                threads = config.io_threads,
                cores,
                "media.io_threads is above the cores this process may use: threads sharing a \
                 core each judge their load as if they had it, and admit more receivers than \
                 it can carry"
            );
        }
        let driver = bind_in_range(
            config.bind_ip,
            config.udp_port_min,
            config.udp_port_max,
            options,
        )?;
        tracing::info!(
            udp = %driver.local_addr(),
            publishers_udp = %driver.priority_addr(),
            threads = driver.threads(),
            "media plane listening"
        );
        if advertise.is_none() && config.bind_ip.is_unspecified() {
            tracing::warn!(
                "media.bind_ip is unspecified and media.public_ip is empty: clients will not know where to send media"
            );
        }
        let media = Arc::new(Media {
            driver,
            following: std::sync::RwLock::new(Following::default()),
            ice_servers: config.ice_servers.clone(),
            max_sdp_bytes: config.max_sdp_bytes,
            max_legs: config.max_legs_per_actor,
            legs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            levels: watch::channel(Arc::new(Vec::new())).0,
            resources: Mutex::new(HashMap::new()),
        });
        tokio::spawn(watch_legs(media.clone(), stop.clone()));
        tokio::spawn(follow(
            media.clone(),
            sittings,
            configured,
            changes,
            stop.clone(),
        ));
        tokio::spawn(sample_levels(media.clone(), stop));
        Ok(Some(media))
    }

    /// Media connections open now.
    pub fn open_legs(&self) -> usize {
        self.legs.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// The SFU's load as last measured: utilisation, estimated capacity, what is shed.
    pub fn load(&self) -> LoadReport {
        self.driver.load()
    }

    /// The sitting whose floor the SFU follows, if any.
    pub fn sitting(&self) -> Option<SittingId> {
        self.following().sitting
    }

    fn following(&self) -> Following {
        self.following.read().map(|f| f.clone()).unwrap_or_default()
    }

    fn roster(&self) -> Arc<Roster> {
        self.following().roster
    }

    /// Follows `handle`'s sitting from now: its roster decides who is what, and every media
    /// connection of the sitting followed before is closed (its clients connect again).
    async fn switch_to(&self, handle: &SittingHandle) {
        if let Ok(mut f) = self.following.write() {
            *f = Following {
                sitting: Some(handle.id().clone()),
                roster: Arc::new(handle.roster().clone()),
            };
        }
        let open: Vec<(ActorId, LegId)> = self
            .legs
            .lock()
            .map(|l| l.iter().map(|(leg, a)| (a.clone(), *leg)).collect())
            .unwrap_or_default();
        for (actor, leg) in &open {
            let _ = self.close(actor, *leg).await;
        }
        if let Ok(mut r) = self.resources.lock() {
            r.clear();
        }
        tracing::info!(sitting = %handle.id(), closed = open.len(), "the media plane follows another sitting");
    }

    /// The SFU's UDP address for receivers (publishers get the next port).
    pub fn udp_addr(&self) -> SocketAddr {
        self.driver.local_addr()
    }

    /// STUN/TURN servers for clients.
    pub fn ice_servers(&self) -> &[IceServerConfig] {
        &self.ice_servers
    }

    fn participant(&self, actor: &ActorId) -> Result<(ParticipantId, Kind, bool), MediaError> {
        let f = self.following();
        let Some(sitting) = f.sitting else {
            return Err(MediaError::Disabled);
        };
        let (kind, presiding) = participant_of(&f.roster, actor).ok_or_else(|| {
            MediaError::NotPermitted(format!(
                "{actor} is not in the roster of the sitting {sitting}"
            ))
        })?;
        Ok((ParticipantId(actor.0.clone()), kind, presiding))
    }

    fn check_sdp(&self, sdp: &str) -> Result<(), MediaError> {
        if sdp.len() > self.max_sdp_bytes {
            return Err(MediaError::InvalidSdp(format!(
                "larger than {} bytes",
                self.max_sdp_bytes
            )));
        }
        if !sdp.trim_start().starts_with("v=0") {
            return Err(MediaError::InvalidSdp(
                "not an SDP (must start with v=0)".into(),
            ));
        }
        Ok(())
    }

    /// Holds one of `actor`'s media connections while it is being set up, so parallel
    /// requests cannot together pass the limit.
    fn reserve(&self, actor: &ActorId) -> Result<Reservation<'_>, MediaError> {
        let legs = self.legs.lock().map_err(|_| MediaError::Unavailable)?;
        let mut pending = self.pending.lock().map_err(|_| MediaError::Unavailable)?;
        let open = legs.values().filter(|a| *a == actor).count();
        let waiting = pending.get(actor).copied().unwrap_or(0);
        if open + waiting >= self.max_legs {
            return Err(MediaError::TooManyLegs);
        }
        *pending.entry(actor.clone()).or_default() += 1;
        Ok(Reservation {
            media: self,
            actor: actor.clone(),
        })
    }

    fn record(&self, leg: LegId, actor: &ActorId) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(leg, actor.clone());
        }
    }

    fn owned(&self, actor: &ActorId, leg: LegId) -> Result<(), MediaError> {
        let legs = self.legs.lock().map_err(|_| MediaError::Unavailable)?;
        match legs.get(&leg) {
            Some(a) if a == actor => Ok(()),
            _ => Err(MediaError::NoSuchLeg),
        }
    }

    /// `actor` publishes: its offer in, the SFU's answer out.
    pub async fn publish(
        &self,
        actor: &ActorId,
        offer: String,
    ) -> Result<(LegId, String), MediaError> {
        let (who, kind, presiding) = self.participant(actor)?;
        if !may_publish(kind) {
            return Err(MediaError::NotPermitted(
                "this account receives media only".into(),
            ));
        }
        self.check_sdp(&offer)?;
        let _reservation = self.reserve(actor)?;
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let (leg, answer) = self.driver.publish(who, kind, presiding, offer).await?;
        self.record(leg, actor);
        tracing::info!(actor = %actor, leg = leg.0, "media published");
        Ok((leg, answer.sdp))
    }

    /// `actor` receives: the SFU's offer out (its answer comes with [`Media::answer`]).
    pub async fn subscribe(&self, actor: &ActorId) -> Result<(LegId, String), MediaError> {
        let (who, kind, presiding) = self.participant(actor)?;
        let _reservation = self.reserve(actor)?;
        let (leg, offer) = self.driver.subscribe(who, kind, presiding).await?;
        self.record(leg, actor);
        tracing::info!(actor = %actor, leg = leg.0, "media subscribed");
        Ok((leg, offer.sdp))
    }

    /// `actor` receives with an offer of its own (WHEP): the SFU's answer out.
    pub async fn subscribe_with_offer(
        &self,
        actor: &ActorId,
        offer: String,
    ) -> Result<(LegId, String), MediaError> {
        let (who, kind, presiding) = self.participant(actor)?;
        self.check_sdp(&offer)?;
        let _reservation = self.reserve(actor)?;
        let offer = RTCSessionDescription::offer(offer)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let (leg, answer) = self
            .driver
            .subscribe_with_offer(who, kind, presiding, offer)
            .await?;
        self.record(leg, actor);
        tracing::info!(actor = %actor, leg = leg.0, "media pulled");
        Ok((leg, answer.sdp))
    }

    /// The answer of `actor` to the SFU's offer for `leg`.
    pub async fn answer(
        &self,
        actor: &ActorId,
        leg: LegId,
        answer: String,
    ) -> Result<(), MediaError> {
        self.owned(actor, leg)?;
        self.check_sdp(&answer)?;
        let answer = RTCSessionDescription::answer(answer)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        Ok(self.driver.answer(leg, answer).await?)
    }

    /// A trickled ICE candidate of `actor` for `leg`.
    pub async fn candidate(
        &self,
        actor: &ActorId,
        leg: LegId,
        candidate: String,
    ) -> Result<(), MediaError> {
        self.owned(actor, leg)?;
        if candidate.len() > 1024 {
            return Err(MediaError::InvalidSdp(
                "candidate longer than 1024 bytes".into(),
            ));
        }
        Ok(self.driver.add_candidate(leg, candidate).await?)
    }

    /// `actor` (presiding) mutes or unmutes `participant`'s microphone on the consoles.
    pub async fn mute(
        &self,
        actor: &ActorId,
        participant: &ActorId,
        muted: bool,
    ) -> Result<(), MediaError> {
        let roster = self.roster();
        let presiding = roster.actor(actor).is_some_and(|a| a.presides());
        if !presiding {
            return Err(MediaError::NotPermitted(
                "only the chair or a vice-chair mutes microphones".into(),
            ));
        }
        if roster.actor(participant).is_none() {
            return Err(MediaError::NotPermitted(format!(
                "{participant} is not in the roster of the sitting followed"
            )));
        }
        tracing::info!(actor = %actor, participant = %participant, muted, "console mute");
        self.driver
            .set_muted(ParticipantId(participant.0.clone()), muted)
            .await?;
        Ok(())
    }

    /// Closes one media connection of `actor`.
    pub async fn close(&self, actor: &ActorId, leg: LegId) -> Result<(), MediaError> {
        self.owned(actor, leg)?;
        if let Ok(mut legs) = self.legs.lock() {
            legs.remove(&leg);
        }
        tracing::info!(actor = %actor, leg = leg.0, "media closed");
        match self.driver.close_leg(leg).await {
            // Already released by the SFU (its connection failed): nothing left to do.
            Ok(()) | Err(DriverError::NoSuchPeer) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Closes every media connection in `legs` that `actor` still holds (a WebSocket that
    /// ends takes its media with it).
    pub async fn close_all(&self, actor: &ActorId, legs: &[LegId]) {
        for leg in legs {
            let _ = self.close(actor, *leg).await;
        }
    }

    /// Keeps a WHIP/WHEP session under a new resource id.
    pub fn add_resource(&self, id: String, resource: Resource) {
        if let Ok(mut r) = self.resources.lock() {
            r.insert(id, resource);
        }
    }

    /// The WHIP/WHEP session `id` of `actor`.
    pub fn resource(&self, actor: &ActorId, id: &str) -> Option<Resource> {
        let r = self.resources.lock().ok()?;
        r.get(id).filter(|x| &x.actor == actor).cloned()
    }

    /// Forgets a WHIP/WHEP session.
    pub fn remove_resource(&self, id: &str) {
        if let Ok(mut r) = self.resources.lock() {
            r.remove(id);
        }
    }

    /// Ends the WHIP/WHEP sessions whose token has expired.
    async fn end_expired(&self, now: Millis) {
        let gone = match self.resources.lock() {
            Ok(mut r) => {
                let gone = expired(&r, now);
                for (id, _, _) in &gone {
                    r.remove(id);
                }
                gone
            }
            Err(_) => Vec::new(),
        };
        for (_, actor, leg) in gone {
            tracing::info!(actor = %actor, leg = leg.0, "media session ended: its token expired");
            let _ = self.close(&actor, leg).await;
        }
    }

    /// Ends every WHIP/WHEP session of `actor` (logged out: its token no longer holds).
    pub async fn end_sessions_of(&self, actor: &ActorId) {
        let legs: Vec<LegId> = match self.resources.lock() {
            Ok(mut r) => {
                let mine: Vec<String> = r
                    .iter()
                    .filter(|(_, x)| &x.actor == actor)
                    .map(|(id, _)| id.clone())
                    .collect();
                mine.iter()
                    .filter_map(|id| r.remove(id))
                    .map(|x| x.leg)
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        self.close_all(actor, &legs).await;
    }

    /// The microphones heard in each interval (who is talking, for chair consoles).
    pub fn levels(&self) -> watch::Receiver<Arc<Vec<Level>>> {
        self.levels.subscribe()
    }

    /// Whether `actor` presides (and so sees who is talking).
    pub fn presides(&self, actor: &ActorId) -> bool {
        self.roster().actor(actor).is_some_and(|a| a.presides())
    }

    /// The SFU itself (tests and metrics read its counters).
    pub fn driver(&self) -> &Driver {
        &self.driver
    }
}

/// A media connection being set up (see [`Media::reserve`]); released when dropped.
struct Reservation<'a> {
    media: &'a Media,
    actor: ActorId,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.media.pending.lock()
            && let Some(n) = pending.get_mut(&self.actor)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.remove(&self.actor);
            }
        }
    }
}

/// Why the media plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaStartError {
    /// A setting is unusable.
    #[error(transparent)]
    Config(crate::config::ConfigError),
    /// No port of the range could be bound.
    #[error("media: no free UDP port on {ip} from {min} to {max}: {source}")]
    NoPort {
        /// Address.
        ip: IpAddr,
        /// First port.
        min: u16,
        /// Last port.
        max: u16,
        /// The last error.
        source: DriverError,
    },
}

fn bind_in_range(
    ip: IpAddr,
    min: u16,
    max: u16,
    options: Options,
) -> Result<Driver, MediaStartError> {
    let mut last = None;
    // Consecutive ports: the receivers', the publishers' next, then one per further thread
    // (all any free one when the range is 0–0).
    let span = u16::try_from(options.thread_count()).unwrap_or(u16::MAX);
    let ports = if max == 0 {
        0..=0
    } else {
        min..=max.saturating_sub(span)
    };
    for port in ports {
        let bind = SocketAddr::new(ip, port);
        match Driver::open(bind, options.clone()) {
            Ok(d) => return Ok(d),
            Err(e) => last = Some(e),
        }
    }
    Err(MediaStartError::NoPort {
        ip,
        min,
        max,
        source: last.unwrap_or_else(|| {
            DriverError::Io(std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                format!(
                    "{} ports are needed, one more than the I/O threads",
                    span + 1
                ),
            ))
        }),
    })
}

/// Forgets the connections the SFU closed by itself (their peer vanished), so they neither
/// count against the account's limit nor stay addressable by their WHIP/WHEP URL.
async fn watch_legs(media: Arc<Media>, mut stop: watch::Receiver<bool>) {
    let mut events = media.driver.events();
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = stop.changed() => return,
        };
        match event {
            Ok(LegEvent::Closed { leg, owner }) => {
                tracing::info!(leg = leg.0, owner = %owner.0, "media connection lost");
                if let Ok(mut legs) = media.legs.lock() {
                    legs.remove(&leg);
                }
                if let Ok(mut r) = media.resources.lock() {
                    r.retain(|_, x| x.leg != leg);
                }
            }
            Ok(LegEvent::Offer(_)) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "media events missed");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Samples the microphones' levels every [`LEVELS_EVERY`]; consoles are told when the set
/// changes (an empty set once, when everyone fell silent). Also ends WHIP/WHEP sessions
/// whose token expired.
async fn sample_levels(media: Arc<Media>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(LEVELS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Ok(levels) = media.driver.levels().await else {
            return;
        };
        if !(levels.is_empty() && media.levels.borrow().is_empty()) {
            media.levels.send_replace(Arc::new(levels));
        }
        media.end_expired(crate::clock::now_millis()).await;
    }
}

/// Follows the floor of the sitting into the SFU: on every commit, if the floor holder
/// changed, the SFU forwards the new speaker from its next packet.
/// Follows the sitting [`choose_sitting`] picks, and its floor into the SFU's forwarding:
/// woken by the followed sitting's commits, by sittings being added, and every second (a
/// sitting opening or closing elsewhere changes the pick).
async fn follow(
    media: Arc<Media>,
    sittings: SittingList,
    configured: Option<SittingId>,
    mut changes: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut current: Option<SittingHandle> = None;
    let mut commits: Option<broadcast::Receiver<Arc<Committed>>> = None;
    let mut shown: Option<Option<(ActorId, Option<Location>)>> = None;
    loop {
        let list = sittings();
        let phases: Vec<(SittingId, Phase)> = list
            .iter()
            .map(|h| (h.id().clone(), h.summary().phase))
            .collect();
        let pick = choose_sitting(
            &phases,
            configured.as_ref(),
            current.as_ref().map(|h| h.id()),
        );
        if pick.as_ref() != current.as_ref().map(|h| h.id())
            && let Some(h) = pick
                .as_ref()
                .and_then(|id| list.iter().find(|h| h.id() == id))
        {
            media.switch_to(h).await;
            commits = Some(h.subscribe());
            current = Some(h.clone());
            shown = None;
        }
        if let Some(handle) = &current {
            let floor = handle
                .summary()
                .floor
                .as_ref()
                .map(|f| (ActorId::new(&f.deputy), f.location));
            if shown.as_ref() != Some(&floor) {
                let (deputy, site) = speaker_of(
                    &media.roster(),
                    floor.as_ref().map(|(d, _)| d),
                    floor.as_ref().and_then(|(_, l)| *l),
                );
                tracing::info!(speaker = ?deputy.as_ref().map(|p| &p.0), site = ?site.as_ref().map(|p| &p.0), "floor → media");
                if media.driver.set_speaker(deputy, site).await.is_err() {
                    tracing::error!("the media driver stopped; the floor is no longer followed");
                    return;
                }
                shown = Some(floor);
            }
        }
        tokio::select! {
            r = next_commit(&mut commits) => if let Err(broadcast::error::RecvError::Closed) = r {
                commits = None;
            },
            _ = changes.changed() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn next_commit(
    rx: &mut Option<broadcast::Receiver<Arc<Committed>>>,
) -> Result<(), broadcast::error::RecvError> {
    match rx {
        Some(r) => r.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sitting::{Actor, Delegation, DelegationCode};
    use std::collections::BTreeSet;

    fn roster() -> Roster {
        let d = |code: &str, kind| Delegation {
            code: DelegationCode::new(code),
            name: code.to_owned(),
            kind,
            region: String::new(),
        };
        let a = |id: &str, del: Option<&str>, roles: &[Role]| Actor {
            id: ActorId::new(id),
            name: id.to_owned(),
            delegation: del.map(DelegationCode::new),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        };
        Roster::new(
            vec![
                d("00", DelegationKind::Chamber),
                d("01", DelegationKind::Municipality),
                d("79", DelegationKind::Municipality),
            ],
            vec![
                a("HALL", Some("00"), &[Role::SiteOperator]),
                a("SITE01", Some("01"), &[Role::SiteOperator]),
                a("CHAIR", Some("01"), &[Role::Chair, Role::Deputy]),
                a("VICE", Some("01"), &[Role::ViceChair, Role::Deputy]),
                a("D1", Some("01"), &[Role::Deputy]),
                a("D2", Some("79"), &[Role::Deputy]),
                a("CLERK", None, &[Role::Clerk]),
                a("OBS", None, &[Role::Observer]),
            ],
        )
        .expect("roster")
    }

    #[test]
    fn the_sfu_follows_the_configured_sitting_else_the_one_in_session_else_the_next() {
        let id = SittingId::new;
        let (a, b, c) = (id("a"), id("b"), id("c"));
        use Phase::{Closed, Open, Scheduled, Suspended};
        type Row<'a> = (
            Vec<(SittingId, Phase)>,
            Option<&'a SittingId>,
            Option<&'a SittingId>,
            Option<&'a SittingId>,
        );
        let table: Vec<Row> = vec![
            // (sittings, configured, current) → followed
            (
                vec![
                    (a.clone(), Closed),
                    (b.clone(), Open),
                    (c.clone(), Scheduled),
                ],
                None,
                None,
                Some(&b),
            ),
            (
                vec![
                    (a.clone(), Closed),
                    (b.clone(), Scheduled),
                    (c.clone(), Scheduled),
                ],
                None,
                None,
                Some(&b),
            ),
            (
                vec![(a.clone(), Suspended), (b.clone(), Scheduled)],
                None,
                Some(&b),
                Some(&a),
            ),
            // Two in session: the one followed keeps the SFU.
            (
                vec![(a.clone(), Open), (b.clone(), Open)],
                None,
                Some(&b),
                Some(&b),
            ),
            // The followed one closed, the next opened: move.
            (
                vec![(a.clone(), Closed), (b.clone(), Open)],
                None,
                Some(&a),
                Some(&b),
            ),
            // Every sitting closed: stay where it is.
            (
                vec![(a.clone(), Closed), (b.clone(), Closed)],
                None,
                Some(&a),
                Some(&a),
            ),
            (
                vec![(a.clone(), Closed), (b.clone(), Closed)],
                None,
                None,
                Some(&b),
            ),
            (vec![], None, None, None),
            // The configuration decides, whatever the phases.
            (
                vec![(a.clone(), Closed), (b.clone(), Open)],
                Some(&a),
                Some(&b),
                Some(&a),
            ),
            (vec![(a.clone(), Open)], Some(&c), None, None),
        ];
        for (sittings, configured, current, expected) in table {
            assert_eq!(
                choose_sitting(&sittings, configured, current).as_ref(),
                expected,
                "{sittings:?}, configured {configured:?}, current {current:?}"
            );
        }
    }

    #[test]
    fn each_role_is_the_participant_the_hall_expects() {
        let r = roster();
        let of = |id: &str| participant_of(&r, &ActorId::new(id));
        assert_eq!(of("HALL"), Some((Kind::Chamber, false)));
        assert_eq!(of("SITE01"), Some((Kind::Site, false)));
        assert_eq!(of("CHAIR"), Some((Kind::ChairConsole, true)));
        assert_eq!(of("VICE"), Some((Kind::ChairConsole, true)));
        assert_eq!(of("D1"), Some((Kind::RemoteDeputy, false)));
        assert_eq!(of("CLERK"), Some((Kind::Display, false)));
        assert_eq!(of("OBS"), Some((Kind::Display, false)));
        assert_eq!(of("NOBODY"), None);
        assert!(!may_publish(Kind::Display));
        assert!(may_publish(Kind::RemoteDeputy));
    }

    #[test]
    fn a_session_ends_when_the_token_that_opened_it_expires() {
        let session = |actor: &str, leg: u64, expires: i64| Resource {
            actor: ActorId::new(actor),
            leg: LegId(leg),
            ufrag: None,
            expires: Millis(expires),
        };
        let r = HashMap::from([
            ("a".to_owned(), session("CHAMBER", 1, 1_000)),
            ("b".to_owned(), session("OBS", 2, 2_000)),
        ]);
        assert!(expired(&r, Millis(999)).is_empty());
        assert_eq!(
            expired(&r, Millis(1_000)),
            vec![("a".to_owned(), ActorId::new("CHAMBER"), LegId(1))]
        );
        assert_eq!(expired(&r, Millis(5_000)).len(), 2);
    }

    #[test]
    fn the_speaker_is_carried_by_their_delegation_site_when_it_has_one() {
        let r = roster();
        let p = |s: &str| Some(ParticipantId(s.to_owned()));
        let d1 = Some(ActorId::new("D1"));
        assert_eq!(speaker_of(&r, d1.as_ref(), None), (p("D1"), p("SITE01")));
        assert_eq!(
            speaker_of(&r, d1.as_ref(), Some(Location::Site)),
            (p("D1"), p("SITE01"))
        );
        // In the hall, the chamber carries them; remote, only their own device: the room
        // stays closed either way.
        assert_eq!(
            speaker_of(&r, d1.as_ref(), Some(Location::Hall)),
            (p("D1"), None)
        );
        assert_eq!(
            speaker_of(&r, d1.as_ref(), Some(Location::Remote)),
            (p("D1"), None)
        );
        // Delegation 79 has no site operator in this roster: the deputy's own device only.
        assert_eq!(
            speaker_of(&r, Some(&ActorId::new("D2")), None),
            (p("D2"), None)
        );
        assert_eq!(speaker_of(&r, None, None), (None, None));
    }
}
