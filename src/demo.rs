//! The demo sitting: a synthetic roster (clearly labelled, fixed seed) over the real list of
//! delegations, staff accounts, and a short agenda. Used by `dienhong demo` and benchmarks.

use crate::sitting::{
    Actor, ActorId, Command, Delegation, DelegationKind, Role, Roster, RosterError, Rules,
    SittingId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

const FAMILY: [&str; 14] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô",
];
const MIDDLE: [&str; 8] = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quốc"];
const GIVEN: [&str; 20] = [
    "An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Khánh", "Lan", "Long",
    "Mai", "Nam", "Phương", "Quân", "Sơn", "Thảo", "Trung", "Vy",
];

/// The marker every synthetic name carries, so nobody mistakes demo data for real people.
pub const SYNTHETIC: &str = "(giả lập)";

/// Staff and special accounts of the demo roster.
pub const CHAIR: &str = "CHAIR";
/// The vice-chair.
pub const VICE_CHAIR: &str = "VICE1";
/// First clerk.
pub const CLERK1: &str = "CLERK1";
/// Second clerk.
pub const CLERK2: &str = "CLERK2";
/// An observer.
pub const OBSERVER: &str = "OBSERVER";
/// The chamber's programme account: the hall's room app or broadcast encoder publishes the
/// programme under it (over the WebSocket or WHIP).
pub const CHAMBER: &str = "CHAMBER";

/// The id of the n-th synthetic deputy (from 1).
pub fn deputy_id(n: u32) -> ActorId {
    ActorId(format!("DB{n:03}"))
}

/// The id of a delegation site's operator account.
pub fn site_operator_id(code: &str) -> ActorId {
    ActorId(format!("SITE{code}"))
}

/// Builds the demo roster: `deputies` deputies in total (the chair and the vice-chair count
/// among them), at least three per delegation, the rest spread by a seeded generator;
/// two clerks, an observer, one operator per delegation site, and the chamber's programme
/// account.
pub fn roster(delegations: &[Delegation], deputies: u32, seed: u64) -> Result<Roster, RosterError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let provinces: Vec<&Delegation> = delegations
        .iter()
        .filter(|d| d.kind != DelegationKind::Chamber)
        .collect();
    let first = provinces.first().map(|d| d.code.clone());
    let mut seats: Vec<u32> = vec![0; provinces.len()];
    let ordinary = deputies.saturating_sub(2);
    for n in 0..ordinary {
        let i = if (n as usize) < provinces.len() * 3 {
            n as usize % provinces.len()
        } else {
            rng.random_range(0..provinces.len())
        };
        seats[i] += 1;
    }
    let mut actors = Vec::new();
    let name = |rng: &mut ChaCha8Rng| {
        format!(
            "{} {} {} {SYNTHETIC}",
            FAMILY[rng.random_range(0..FAMILY.len())],
            MIDDLE[rng.random_range(0..MIDDLE.len())],
            GIVEN[rng.random_range(0..GIVEN.len())]
        )
    };
    let staff = |id: &str, name: String, delegation, roles: &[Role]| Actor {
        id: ActorId::new(id),
        name,
        delegation,
        roles: roles.iter().copied().collect::<BTreeSet<Role>>(),
    };
    actors.push(staff(
        CHAIR,
        format!("Chủ tọa {}", name(&mut rng)),
        first.clone(),
        &[Role::Chair, Role::Deputy],
    ));
    actors.push(staff(
        VICE_CHAIR,
        format!("Phó Chủ tọa {}", name(&mut rng)),
        first,
        &[Role::ViceChair, Role::Deputy],
    ));
    let mut n = 0;
    for (d, count) in provinces.iter().zip(&seats) {
        for _ in 0..*count {
            n += 1;
            actors.push(Actor {
                id: deputy_id(n),
                name: name(&mut rng),
                delegation: Some(d.code.clone()),
                roles: BTreeSet::from([Role::Deputy]),
            });
        }
        actors.push(Actor {
            id: site_operator_id(d.code.as_str()),
            name: format!("Điểm cầu {}", d.name),
            delegation: Some(d.code.clone()),
            roles: BTreeSet::from([Role::SiteOperator]),
        });
    }
    actors.push(staff(
        CLERK1,
        format!("Thư ký {}", name(&mut rng)),
        None,
        &[Role::Clerk],
    ));
    actors.push(staff(
        CLERK2,
        format!("Thư ký {}", name(&mut rng)),
        None,
        &[Role::Clerk],
    ));
    if let Some(hall) = delegations
        .iter()
        .find(|d| d.kind == DelegationKind::Chamber)
    {
        actors.push(staff(
            CHAMBER,
            format!("Chương trình {}", hall.name),
            Some(hall.code.clone()),
            &[Role::SiteOperator],
        ));
    }
    actors.push(staff(
        OBSERVER,
        format!("Quan sát viên {SYNTHETIC}"),
        None,
        &[Role::Observer],
    ));
    Roster::new(delegations.to_vec(), actors)
}

/// The command that creates the demo sitting.
pub fn create_command(
    sitting: &SittingId,
    delegations: &[Delegation],
    deputies: u32,
    seed: u64,
    rules: Rules,
) -> Result<Command, RosterError> {
    Ok(Command::CreateSitting {
        sitting: sitting.clone(),
        title: format!("Phiên họp mẫu của Quốc hội {SYNTHETIC}"),
        roster: roster(delegations, deputies, seed)?,
        rules,
        agenda: vec![
            "Khai mạc phiên họp".to_owned(),
            format!("Thảo luận dự án Luật Chuyển đổi số {SYNTHETIC}"),
            format!("Biểu quyết thông qua Nghị quyết về kế hoạch ngân sách {SYNTHETIC}"),
            "Bế mạc phiên họp".to_owned(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn delegations() -> Vec<Delegation> {
        Config::load_with_env(None, Vec::new())
            .and_then(|c| c.delegations())
            .expect("embedded delegations")
    }

    #[test]
    fn the_demo_roster_has_500_deputies_in_every_delegation_and_is_reproducible() {
        let d = delegations();
        let a = roster(&d, 500, 7).expect("valid roster");
        assert_eq!(a.members(), 500);
        for del in d.iter().filter(|d| d.kind != DelegationKind::Chamber) {
            let n = a
                .actors
                .values()
                .filter(|x| x.has(Role::Deputy) && x.delegation.as_ref() == Some(&del.code))
                .count();
            assert!(n >= 3, "{} has {n} deputies", del.name);
        }
        assert_eq!(a, roster(&d, 500, 7).expect("valid roster"));
        assert_ne!(a, roster(&d, 500, 8).expect("valid roster"));
        assert!(
            a.actors
                .values()
                .filter(|x| x.has(Role::Deputy))
                .all(|x| x.name.contains(SYNTHETIC))
        );
        let operators = a
            .actors
            .values()
            .filter(|x| x.has(Role::SiteOperator))
            .count();
        assert_eq!(operators, 63 + 1, "one per delegation site and the chamber");
        assert_eq!(
            a.actor(&ActorId::new(CHAMBER))
                .and_then(|x| x.delegation.as_ref())
                .and_then(|c| a.delegations.get(c))
                .map(|d| d.kind),
            Some(DelegationKind::Chamber)
        );
    }
}
