//! The slot balancer (pure): the next batch of moves that brings the slot table to an even spread over
//! the members that may own slots.
//!
//! The leader runs it on every membership or liveness change and on `rebalance`, proposes the batch as
//! `Command::MoveSlots`, and runs it again once that applied, until it returns nothing. Properties
//! (tested below):
//! - Every move targets a member that may take slots (serving, not draining, not down), and names the
//!   slot's current owner and epoch, so the batch applies as proposed.
//! - Fewest moves: a slot moves at most once on the way, only when it must (its owner may not keep
//!   slots, or holds more than its share). The shares go to the members that hold most already:
//!   `SLOT_COUNT / n` each, one more for the `SLOT_COUNT % n` largest holders (ties: the lower node id).
//! - Urgent first: slots of down members, then of draining ones, then of any other member that may not
//!   keep slots, then the excess of overloaded members, so a bounded batch serves the unserved first.
//! - Converges: every step of at most `max_moves` takes the remaining distance down by its length, so
//!   `ceil(distance / max_moves)` steps reach the even spread (max − min ≤ 1).
//! - Deterministic: the same table and members give the same batch on every node and every run.

use std::collections::{BTreeMap, BTreeSet};

use super::slots::{SlotMove, SlotMoveReason, SlotTable};

/// Who may hold slots. A node in `draining` or `down` takes none, even if it is also in `serving`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMembers {
    /// Live members that may own slots.
    pub serving: BTreeSet<u64>,
    /// Members leaving gracefully: their slots go first after those of down members.
    pub draining: BTreeSet<u64>,
    /// Members unreachable for `cluster.node_down_after`: their collectors are unserved.
    pub down: BTreeSet<u64>,
}

impl SlotMembers {
    /// The members that may take slots.
    pub fn targets(&self) -> BTreeSet<u64> {
        self.serving.difference(&self.draining).filter(|node| !self.down.contains(node)).copied().collect()
    }
}

/// A batch to propose and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPlan {
    pub moves: Vec<SlotMove>,
    pub reason: SlotMoveReason,
}

/// The next batch of at most `max_moves` moves; empty when the spread is even and every slot has an
/// owner that may keep it (or when no member may take slots: nothing better exists).
pub fn next_moves(table: &SlotTable, members: &SlotMembers, max_moves: usize) -> SlotPlan {
    let targets = members.targets();
    let mut plan = SlotPlan { moves: Vec::new(), reason: SlotMoveReason::Balance };
    if targets.is_empty() || !table.is_assigned() || max_moves == 0 {
        return plan;
    }
    let quotas = quotas(table, &targets);
    let givers = slots_to_give(table, members, &targets, &quotas);
    let counts = table.counts();
    let mut deficits: BTreeMap<u64, usize> = quotas
        .iter()
        .map(|(node, quota)| (*node, quota.saturating_sub(counts.get(node).copied().unwrap_or(0))))
        .filter(|(_, deficit)| *deficit > 0)
        .collect();
    for slot in givers.into_iter().take(max_moves) {
        let Some(entry) = table.entry(slot) else { continue };
        // The receiver with the largest remaining deficit (lower id on ties), so a bounded batch
        // spreads over every receiver instead of filling one.
        let Some((&to, _)) = deficits.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else { break };
        if let Some(deficit) = deficits.get_mut(&to) {
            *deficit -= 1;
            if *deficit == 0 {
                deficits.remove(&to);
            }
        }
        plan.moves.push(SlotMove { slot, from: entry.owner, to, epoch: entry.epoch });
    }
    plan.reason = if plan.moves.iter().any(|planned| members.down.contains(&planned.from)) {
        SlotMoveReason::NodeDown
    } else if plan.moves.iter().any(|planned| members.draining.contains(&planned.from)) {
        SlotMoveReason::Drain
    } else {
        SlotMoveReason::Balance
    };
    plan
}

/// Each target's share: `total / n`, one more for the `total % n` largest holders.
fn quotas(table: &SlotTable, targets: &BTreeSet<u64>) -> BTreeMap<u64, usize> {
    let counts = table.counts();
    let total = table.entries().count();
    let base = total / targets.len();
    let extra = total % targets.len();
    let mut by_holding: Vec<u64> = targets.iter().copied().collect();
    by_holding.sort_by_key(|node| (std::cmp::Reverse(counts.get(node).copied().unwrap_or(0)), *node));
    by_holding.iter().enumerate().map(|(rank, node)| (*node, base + usize::from(rank < extra))).collect()
}

/// The slots that must move, most urgent first.
fn slots_to_give(
    table: &SlotTable,
    members: &SlotMembers,
    targets: &BTreeSet<u64>,
    quotas: &BTreeMap<u64, usize>,
) -> Vec<usize> {
    let urgency = |owner: u64| {
        if members.down.contains(&owner) {
            0
        } else if members.draining.contains(&owner) {
            1
        } else {
            2
        }
    };
    let mut orphans: Vec<(u8, usize)> = table
        .entries()
        .filter(|(_, entry)| !targets.contains(&entry.owner))
        .map(|(slot, entry)| (urgency(entry.owner), slot))
        .collect();
    orphans.sort_unstable();
    let mut givers: Vec<usize> = orphans.into_iter().map(|(_, slot)| slot).collect();

    // Each overloaded target gives its highest slots, the most overloaded first, in turns.
    let mut excess: Vec<(u64, Vec<usize>)> = targets
        .iter()
        .filter_map(|node| {
            let owned: Vec<usize> = table.slots_of(*node).into_iter().collect();
            let quota = quotas.get(node).copied().unwrap_or(0);
            (owned.len() > quota).then(|| (*node, owned[quota..].to_vec()))
        })
        .collect();
    while let Some((_, slots)) = excess
        .iter_mut()
        .filter(|(_, slots)| !slots.is_empty())
        .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(&a.0)))
    {
        givers.extend(slots.pop());
    }
    givers
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::slots::{SlotEntry, SlotEpoch, SLOT_COUNT};

    fn members(serving: &[u64], draining: &[u64], down: &[u64]) -> SlotMembers {
        SlotMembers {
            serving: serving.iter().copied().collect(),
            draining: draining.iter().copied().collect(),
            down: down.iter().copied().collect(),
        }
    }

    /// Steps until the balancer has nothing left, applying each batch; returns the steps taken.
    fn run_to_even(table: &mut SlotTable, members: &SlotMembers, max_moves: usize, limit: usize) -> usize {
        let mut steps = 0;
        while steps <= limit {
            let plan = next_moves(table, members, max_moves);
            if plan.moves.is_empty() {
                return steps;
            }
            table.apply_moves(&plan.moves).expect("a plan applies to the table it was made from");
            steps += 1;
        }
        steps
    }

    fn spread(table: &SlotTable, targets: &BTreeSet<u64>) -> usize {
        let counts = table.counts();
        let held: Vec<usize> = targets.iter().map(|node| counts.get(node).copied().unwrap_or(0)).collect();
        held.iter().max().unwrap_or(&0) - held.iter().min().unwrap_or(&0)
    }

    #[test]
    fn a_joining_node_gets_an_even_share_taken_from_both_others() {
        let mut table = SlotTable::assigned_to(1);
        let two = members(&[1, 2], &[], &[]);
        let first = next_moves(&table, &two, usize::MAX);
        assert_eq!((first.moves.len(), first.reason), (SLOT_COUNT / 2, SlotMoveReason::Balance));
        table.apply_moves(&first.moves).expect("apply");
        let three = members(&[1, 2, 3], &[], &[]);
        let plan = next_moves(&table, &three, usize::MAX);
        assert_eq!(plan.moves.len(), 341, "1024 = 342 + 341 + 341: node 3 takes its 341, nothing else moves");
        assert!(plan.moves.iter().all(|planned| planned.to == 3));
        table.apply_moves(&plan.moves).expect("apply");
        assert_eq!(spread(&table, &three.targets()), 1);
        assert_eq!(
            next_moves(&table, &three, usize::MAX),
            SlotPlan { moves: vec![], reason: SlotMoveReason::Balance }
        );
    }

    #[test]
    fn a_bounded_batch_moves_the_down_members_slots_before_the_drained_and_the_overloaded() {
        let mut table = SlotTable::assigned_to(1);
        let spread_over = |table: &mut SlotTable, nodes: &[u64]| {
            let plan = next_moves(table, &members(nodes, &[], &[]), usize::MAX);
            table.apply_moves(&plan.moves).expect("apply");
        };
        spread_over(&mut table, &[1, 2, 3]);
        let view = members(&[1, 3, 4], &[3], &[2]);
        let plan = next_moves(&table, &view, 10);
        assert_eq!(plan.reason, SlotMoveReason::NodeDown);
        assert!(plan.moves.iter().all(|planned| planned.from == 2));
        assert_eq!(plan.moves, next_moves(&table, &view, 10).moves, "deterministic");
        let everything = next_moves(&table, &view, usize::MAX).moves;
        let down_moves = everything.iter().take_while(|planned| planned.from == 2).count();
        assert_eq!(down_moves, table.slots_of(2).len());
        assert!(everything[down_moves..].iter().take_while(|planned| planned.from == 3).count() > 0);
        run_to_even(&mut table, &view, 100, 20);
        assert_eq!(table.counts().keys().copied().collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn nothing_moves_when_no_member_may_take_slots() {
        let table = SlotTable::assigned_to(1);
        assert!(next_moves(&table, &members(&[1], &[1], &[]), 10).moves.is_empty());
        assert!(next_moves(&SlotTable::default(), &members(&[1], &[], &[]), 10).moves.is_empty());
    }

    /// Tables with long runs per owner (uneven spreads), owners 1..=7, epochs that differ per slot.
    fn table() -> impl Strategy<Value = SlotTable> {
        proptest::collection::vec((1u64..=7, 1usize..400), 1..10).prop_map(|runs| {
            let owners = runs.iter().flat_map(|(owner, run)| std::iter::repeat_n(*owner, *run)).cycle();
            let entries = owners
                .take(SLOT_COUNT)
                .enumerate()
                .map(|(slot, owner)| SlotEntry { owner, epoch: SlotEpoch(1 + (slot as u64 * 7) % 5) })
                .collect();
            SlotTable::from_entries(entries)
        })
    }

    fn node_set(mask: u8) -> BTreeSet<u64> {
        (1..=6).filter(|node| mask & (1 << (node - 1)) != 0).collect()
    }

    /// The fewest moves by brute force over which targets get the one extra slot.
    fn fewest_moves(table: &SlotTable, targets: &BTreeSet<u64>) -> usize {
        let counts = table.counts();
        let orphans = table.entries().filter(|(_, entry)| !targets.contains(&entry.owner)).count();
        let nodes: Vec<u64> = targets.iter().copied().collect();
        let (base, extra) = (SLOT_COUNT / nodes.len(), SLOT_COUNT % nodes.len());
        (0u32..(1 << nodes.len()))
            .filter(|mask| mask.count_ones() as usize == extra)
            .map(|mask| {
                let excess: usize = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| {
                        let quota = base + usize::from(mask & (1 << i) != 0);
                        counts.get(node).copied().unwrap_or(0).saturating_sub(quota)
                    })
                    .sum();
                orphans + excess
            })
            .min()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn repeated_bounded_steps_reach_an_even_spread_with_the_fewest_moves(
            mut table in table(),
            serving in 1u8..64,
            draining in 0u8..64,
            down in 0u8..64,
            max_moves in 1usize..400,
        ) {
            let members = SlotMembers { serving: node_set(serving), draining: node_set(draining), down: node_set(down) };
            let targets = members.targets();
            let distance = next_moves(&table, &members, usize::MAX).moves.len();
            if targets.is_empty() {
                prop_assert_eq!(distance, 0);
                return Ok(());
            }
            prop_assert_eq!(distance, fewest_moves(&table, &targets));
            let mut steps = 0;
            loop {
                let plan = next_moves(&table, &members, max_moves);
                if plan.moves.is_empty() {
                    break;
                }
                prop_assert!(plan.moves.len() <= max_moves);
                let mut slots = BTreeSet::new();
                for planned in &plan.moves {
                    prop_assert!(targets.contains(&planned.to), "{:?} targets a member that may not take slots", planned);
                    let entry = table.entry(planned.slot).expect("slot exists");
                    prop_assert_eq!((entry.owner, entry.epoch), (planned.from, planned.epoch));
                    prop_assert!(slots.insert(planned.slot));
                }
                table.apply_moves(&plan.moves).expect("applies");
                steps += 1;
                prop_assert!(steps <= distance.div_ceil(max_moves), "{} steps for {} moves of at most {}", steps, distance, max_moves);
            }
            prop_assert!(table.entries().all(|(_, entry)| targets.contains(&entry.owner)));
            prop_assert!(spread(&table, &targets) <= 1);
        }
    }
}
