//! Procedure rules that a deployment configures: speaking limits, quorum, voting defaults.

use super::vote::PassRule;
use serde::{Deserialize, Serialize};

/// The kind of a request to speak.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SpeechKind {
    /// A discussion turn (thảo luận).
    Discussion,
    /// Debate or rebuttal (tranh luận).
    Debate,
    /// Point of order: goes to the head of the queue.
    PointOfOrder,
    /// A question (chất vấn).
    Question,
}

impl SpeechKind {
    /// Every kind, for exhaustive checks.
    pub const ALL: [SpeechKind; 4] = [
        SpeechKind::Discussion,
        SpeechKind::Debate,
        SpeechKind::PointOfOrder,
        SpeechKind::Question,
    ];
}

/// Speaking time per kind of request, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeakingLimits {
    /// Discussion turn; 7 minutes by default.
    pub discussion_secs: u32,
    /// Debate or rebuttal; 3 minutes by default.
    pub debate_secs: u32,
    /// Point of order; 1 minute by default.
    pub point_of_order_secs: u32,
    /// Question; 1 minute by default.
    pub question_secs: u32,
}

impl Default for SpeakingLimits {
    fn default() -> Self {
        SpeakingLimits {
            discussion_secs: 7 * 60,
            debate_secs: 3 * 60,
            point_of_order_secs: 60,
            question_secs: 60,
        }
    }
}

impl SpeakingLimits {
    /// The limit for one kind.
    pub fn for_kind(&self, kind: SpeechKind) -> u32 {
        match kind {
            SpeechKind::Discussion => self.discussion_secs,
            SpeechKind::Debate => self.debate_secs,
            SpeechKind::PointOfOrder => self.point_of_order_secs,
            SpeechKind::Question => self.question_secs,
        }
    }
}

/// Quorum: at least (or more than) numerator/denominator of the total membership present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// Numerator of the fraction.
    pub numerator: u32,
    /// Denominator of the fraction (non-zero).
    pub denominator: u32,
    /// If true, strictly more than the fraction is needed; otherwise at least.
    #[serde(default)]
    pub strict: bool,
}

impl Default for Quorum {
    /// At least two thirds of the total membership.
    fn default() -> Self {
        Quorum {
            numerator: 2,
            denominator: 3,
            strict: false,
        }
    }
}

impl Quorum {
    /// Whether `present` out of `members` meets the quorum.
    pub fn met(&self, present: u32, members: u32) -> bool {
        let lhs = u64::from(present) * u64::from(self.denominator);
        let rhs = u64::from(members) * u64::from(self.numerator);
        if self.strict { lhs > rhs } else { lhs >= rhs }
    }
}

/// All configurable procedure rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Speaking time limits.
    pub speaking: SpeakingLimits,
    /// Quorum rule.
    pub quorum: Quorum,
    /// Whether deputies may change their ballot on a named vote until it closes.
    pub allow_ballot_change: bool,
    /// Voting window when the chair gives none, in seconds.
    pub default_vote_window_secs: u32,
    /// Pass rule when the chair gives none.
    pub default_pass_rule: PassRule,
    /// Longest extension of the floor the chair may give at once, in seconds.
    pub max_extension_secs: u32,
    /// Whether a vote asks each ballot for a passkey confirmation (step-up) when the chair
    /// does not say. Off unless set: deputies need a registered passkey first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub step_up_ballots: bool,
    /// Whether a vote may open only with the quorum present (the Assembly decides only with
    /// a quorum). On unless set off; written out only when off, so sittings created before
    /// the rule existed read and write the same bytes.
    #[serde(skip_serializing_if = "is_true")]
    pub vote_needs_quorum: bool,
    /// The total speaking time of one delegation on one agenda item, in seconds (points of
    /// order aside); none: no cap. Written out only when set, so sittings created before
    /// the rule existed read and write the same bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation_budget_secs: Option<u32>,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            speaking: SpeakingLimits::default(),
            quorum: Quorum::default(),
            allow_ballot_change: true,
            default_vote_window_secs: 60,
            default_pass_rule: PassRule::MajorityOfMembers,
            max_extension_secs: 30 * 60,
            step_up_ballots: false,
            vote_needs_quorum: true,
            delegation_budget_secs: None,
        }
    }
}

impl Rules {
    /// Checks the rules make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.quorum.denominator == 0 || self.quorum.numerator > self.quorum.denominator {
            return Err(
                "quorum fraction must be between 0 and 1 with a non-zero denominator".into(),
            );
        }
        for kind in SpeechKind::ALL {
            if self.speaking.for_kind(kind) == 0 {
                return Err(format!("speaking limit for {kind:?} must be positive"));
            }
        }
        if self.delegation_budget_secs == Some(0) {
            return Err("delegation_budget_secs must be positive when set".into());
        }
        if self.default_vote_window_secs == 0 {
            return Err("default_vote_window_secs must be positive".into());
        }
        Ok(())
    }
}
