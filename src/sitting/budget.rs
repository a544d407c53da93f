//! Speaking-time budgets: when the rules set `delegation_budget_secs`, the total time the
//! deputies of one delegation speak on one agenda item is capped. Points of order do not
//! count. A grant gets the lesser of its kind's limit and what the delegation has left; a
//! delegation with nothing left gets no more grants on that item, and an extension may not
//! take the speaker past it.

use super::ActorId;
use super::ids::{DelegationCode, ItemId, Millis};
use super::rules::SpeechKind;
use super::state::SittingState;

/// Whether a kind of speech counts against its delegation's budget.
pub fn counts(kind: SpeechKind) -> bool {
    kind != SpeechKind::PointOfOrder
}

/// Milliseconds the deputies of `delegation` have spoken on `item`, the speech going on
/// counted up to `now`.
pub fn spoken_ms(
    state: &SittingState,
    delegation: &DelegationCode,
    item: ItemId,
    now: Millis,
) -> i64 {
    let of = |deputy: &ActorId| {
        state
            .roster
            .actor(deputy)
            .and_then(|a| a.delegation.as_ref())
            == Some(delegation)
    };
    let done: i64 = state
        .speeches
        .iter()
        .filter(|s| s.item == Some(item) && counts(s.kind) && of(&s.deputy))
        .map(|s| (s.to.0 - s.from.0).max(0))
        .sum();
    let going = state
        .floor
        .as_ref()
        .filter(|f| state.current_item == Some(item) && counts(f.kind) && of(&f.deputy))
        .map_or(0, |f| (now.0 - f.granted_at.0).max(0));
    done + going
}

/// What `deputy` may still speak, in milliseconds, as a speech of `kind` on the current
/// item at `now`: `None` when no budget applies (none set, no current item, a point of
/// order, or a deputy of no delegation).
pub fn left_ms(
    state: &SittingState,
    deputy: &ActorId,
    kind: SpeechKind,
    now: Millis,
) -> Option<i64> {
    let budget = state.rules.delegation_budget_secs?;
    let item = state.current_item?;
    if !counts(kind) {
        return None;
    }
    let delegation = state.roster.actor(deputy)?.delegation.as_ref()?;
    Some(i64::from(budget) * 1000 - spoken_ms(state, delegation, item, now))
}
