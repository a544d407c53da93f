//! Voting vocabulary and the pure arithmetic of a result: choices, methods, pass rules, tallies.

use serde::{Deserialize, Serialize};

/// A ballot choice.
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
pub enum Choice {
    /// Tán thành.
    Yes,
    /// Không tán thành.
    No,
    /// Không biểu quyết.
    Abstain,
}

impl Choice {
    /// Every choice.
    pub const ALL: [Choice; 3] = [Choice::Yes, Choice::No, Choice::Abstain];
}

/// How ballots are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Roll-call: each deputy's ballot is recorded and shown.
    Named,
    /// Secret: who took part is recorded; what they chose is recorded without them.
    Secret,
}

/// What a motion needs to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassRule {
    /// More than half of the total membership vote yes.
    MajorityOfMembers,
    /// At least two thirds of the total membership vote yes.
    TwoThirdsOfMembers,
    /// More than half of the deputies present vote yes.
    MajorityOfPresent,
}

/// Counts of ballots by choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Tán thành.
    pub yes: u32,
    /// Không tán thành.
    pub no: u32,
    /// Không biểu quyết.
    pub abstain: u32,
}

impl Tally {
    /// Adds one ballot.
    pub fn add(&mut self, c: Choice) {
        match c {
            Choice::Yes => self.yes += 1,
            Choice::No => self.no += 1,
            Choice::Abstain => self.abstain += 1,
        }
    }
    /// Removes one ballot (for a changed named ballot).
    pub fn remove(&mut self, c: Choice) {
        match c {
            Choice::Yes => self.yes = self.yes.saturating_sub(1),
            Choice::No => self.no = self.no.saturating_sub(1),
            Choice::Abstain => self.abstain = self.abstain.saturating_sub(1),
        }
    }
    /// Ballots cast.
    pub fn total(&self) -> u32 {
        self.yes + self.no + self.abstain
    }
}

/// The outcome of a closed vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResult {
    /// Counts by choice.
    pub tally: Tally,
    /// Deputies who cast a ballot.
    pub participants: u32,
    /// Deputies present at the close.
    pub present: u32,
    /// Total membership.
    pub members: u32,
    /// Yes, as basis points (1/100 of a percent) of the total membership.
    pub yes_bp_of_members: u32,
    /// No, as basis points of the total membership.
    pub no_bp_of_members: u32,
    /// Abstain, as basis points of the total membership.
    pub abstain_bp_of_members: u32,
    /// Participants, as basis points of the total membership.
    pub participants_bp_of_members: u32,
    /// The rule applied.
    pub rule: PassRule,
    /// Whether the motion passed.
    pub passed: bool,
}

/// Basis points of `part` in `whole`, rounded half up; 0 when `whole` is 0.
pub fn basis_points(part: u32, whole: u32) -> u32 {
    if whole == 0 {
        return 0;
    }
    let bp = (u64::from(part) * 20_000 + u64::from(whole)) / (u64::from(whole) * 2);
    u32::try_from(bp).unwrap_or(u32::MAX)
}

/// Whether `tally` passes under `rule` with this membership and attendance.
pub fn passes(rule: PassRule, tally: &Tally, members: u32, present: u32) -> bool {
    let yes = u64::from(tally.yes);
    match rule {
        PassRule::MajorityOfMembers => yes * 2 > u64::from(members),
        PassRule::TwoThirdsOfMembers => yes * 3 >= u64::from(members) * 2,
        PassRule::MajorityOfPresent => yes * 2 > u64::from(present),
    }
}

/// Computes the result of a vote.
pub fn result(rule: PassRule, tally: Tally, members: u32, present: u32) -> VoteResult {
    VoteResult {
        tally,
        participants: tally.total(),
        present,
        members,
        yes_bp_of_members: basis_points(tally.yes, members),
        no_bp_of_members: basis_points(tally.no, members),
        abstain_bp_of_members: basis_points(tally.abstain, members),
        participants_bp_of_members: basis_points(tally.total(), members),
        rule,
        passed: passes(rule, &tally, members, present),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(yes: u32, no: u32, abstain: u32) -> Tally {
        Tally { yes, no, abstain }
    }

    #[test]
    fn majority_of_members_needs_more_than_half_of_the_total_not_of_votes_cast() {
        // 250 of 500 is exactly half: fails, even though every ballot cast was yes.
        assert!(!passes(
            PassRule::MajorityOfMembers,
            &t(250, 0, 0),
            500,
            500
        ));
        assert!(passes(PassRule::MajorityOfMembers, &t(251, 0, 0), 500, 300));
    }

    #[test]
    fn two_thirds_of_members_is_at_least_two_thirds() {
        assert!(passes(
            PassRule::TwoThirdsOfMembers,
            &t(334, 0, 0),
            500,
            500
        ));
        assert!(!passes(
            PassRule::TwoThirdsOfMembers,
            &t(333, 0, 0),
            500,
            500
        ));
        assert!(passes(PassRule::TwoThirdsOfMembers, &t(2, 0, 0), 3, 3));
    }

    #[test]
    fn majority_of_present_uses_attendance() {
        assert!(passes(
            PassRule::MajorityOfPresent,
            &t(151, 100, 49),
            500,
            300
        ));
        assert!(!passes(
            PassRule::MajorityOfPresent,
            &t(150, 100, 50),
            500,
            300
        ));
    }

    #[test]
    fn percentages_are_of_total_membership_rounded_half_up() {
        assert_eq!(basis_points(1, 3), 3333);
        assert_eq!(basis_points(2, 3), 6667);
        assert_eq!(basis_points(480, 500), 9600);
        assert_eq!(basis_points(5, 0), 0);
        let r = result(PassRule::MajorityOfMembers, t(400, 50, 30), 500, 490);
        assert_eq!(r.participants, 480);
        assert_eq!(r.participants_bp_of_members, 9600);
        assert_eq!(r.yes_bp_of_members, 8000);
        assert!(r.passed);
    }

    #[test]
    fn changing_a_ballot_moves_one_count() {
        let mut tally = t(0, 0, 0);
        tally.add(Choice::Yes);
        tally.remove(Choice::Yes);
        tally.add(Choice::No);
        assert_eq!(tally, t(0, 1, 0));
    }
}
