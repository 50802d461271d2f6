//! The collectors in natural name order, kept beside the replica so that the collector list
//! (`http/api/collectors_list.rs`) pages in its default order by walking from the cursor, in O(page),
//! instead of ordering every name on every request; with each collector's replicated status and the
//! count per status, so that an unfiltered page needs no scan for its `total` and `status_counts`.
//!
//! Keys: [`NameKey`] holds a name's [`natural_key`], bytes whose plain order is [`natural_cmp`]'s
//! order (digit runs by value, letters without case, then the names' bytes), then the id; so the
//! index's order is the list's order, and comparing two keys never parses a name again.
//!
//! Derived state, never written to a snapshot or the log: a `#[serde(skip)]` field of
//! [`FleetState`](super::FleetState), kept by `apply` where a collector is created, deleted or changes
//! its replicated status, and rebuilt whole ([`NameOrder::rebuilt`]) when a snapshot or a restored
//! fleet is installed. Invariants (property tests): after any sequence of commands it equals the
//! rebuild from the collectors (`fleet_state.rs`, `name_order_kept`), and key order is `natural_cmp`
//! order, then id (below).
//!
//! [`natural_cmp`]: super::labels::natural_cmp

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::collector::{CollectorMap, CollectorRecord, CollectorStatus};

/// The statuses in lifecycle order, the order of [`NameOrder::status_counts`] (and of the list's
/// `status` sort).
pub const STATUS_ORDER: [CollectorStatus; 5] = [
    CollectorStatus::AwaitingConnection,
    CollectorStatus::Connected,
    CollectorStatus::Degraded,
    CollectorStatus::Stale,
    CollectorStatus::Offline,
];

/// A status's place in [`STATUS_ORDER`].
pub fn status_rank(status: CollectorStatus) -> usize {
    match status {
        CollectorStatus::AwaitingConnection => 0,
        CollectorStatus::Connected => 1,
        CollectorStatus::Degraded => 2,
        CollectorStatus::Stale => 3,
        CollectorStatus::Offline => 4,
    }
}

/// Ends the tokens of a natural key; below every token's first byte.
const END_OF_TOKENS: u8 = 0;
/// Starts a digit run's token: between the shifted `/` (0x30) and the shifted `:` (0x3b), where
/// natural order puts a digit against any other byte; no shifted non-digit byte is 0x31..=0x3a.
const DIGIT_RUN: u8 = b'0' + 1;
/// A significant-digit count of this or more is written as this byte and 8 big-endian bytes.
const LONG_RUN: u8 = 0xff;

/// Bytes whose plain order is [`natural_cmp`](super::labels::natural_cmp)'s order of the names:
/// a name's tokens (a byte other than a digit, lowercased and shifted up by one; or a digit run, as
/// [`DIGIT_RUN`], the count of its significant digits and those digits), [`END_OF_TOKENS`], then the
/// name's own bytes (natural order's last tie-break).
pub fn natural_key(name: &str) -> Box<[u8]> {
    let bytes = name.as_bytes();
    let mut key = Vec::with_capacity(bytes.len() * 2 + 2);
    let mut rest = bytes;
    while let Some(&first) = rest.first() {
        if first.is_ascii_digit() {
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let zeros = rest[..digits].iter().take_while(|c| **c == b'0').count();
            let significant = &rest[zeros..digits];
            key.push(DIGIT_RUN);
            match u8::try_from(significant.len()) {
                Ok(count) if count < LONG_RUN => key.push(count),
                _ => {
                    key.push(LONG_RUN);
                    key.extend_from_slice(&(significant.len() as u64).to_be_bytes());
                }
            }
            key.extend_from_slice(significant);
            rest = &rest[digits..];
        } else {
            // UTF-8 never holds 0xf5..=0xff, so the shift cannot overflow; it frees 0 for the end.
            key.push(first.to_ascii_lowercase() + 1);
            rest = &rest[1..];
        }
    }
    key.push(END_OF_TOKENS);
    key.extend_from_slice(bytes);
    key.into_boxed_slice()
}

/// A collector's place in the list's default order: natural name, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameKey {
    natural: Box<[u8]>,
    id: Box<str>,
}

impl NameKey {
    pub fn new(name: &str, id: &str) -> NameKey {
        NameKey { natural: natural_key(name), id: id.into() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The first key of `name` (below every id).
    fn first_of_name(&self) -> NameKey {
        NameKey { natural: self.natural.clone(), id: Box::from("") }
    }
}

/// The collectors by [`NameKey`], with their replicated status, and the count per status. Changes
/// for a collector it does not hold are ignored (a preview's scoped state starts without an index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameOrder {
    order: BTreeMap<Arc<NameKey>, CollectorStatus>,
    /// Collector id → its key in `order`.
    keys: HashMap<String, Arc<NameKey>>,
    /// Per status, in [`STATUS_ORDER`].
    status_counts: [usize; 5],
}

impl NameOrder {
    pub fn rebuilt(collectors: &CollectorMap) -> NameOrder {
        let mut order = NameOrder::default();
        for record in collectors.values() {
            order.insert(record);
        }
        order
    }

    /// Adds a collector, or moves it to its current name and status.
    pub fn insert(&mut self, record: &CollectorRecord) {
        self.remove(&record.id);
        let key = Arc::new(NameKey::new(&record.name, &record.id));
        self.order.insert(key.clone(), record.status);
        self.keys.insert(record.id.clone(), key);
        self.status_counts[status_rank(record.status)] += 1;
    }

    pub fn remove(&mut self, id: &str) {
        let Some(key) = self.keys.remove(id) else { return };
        if let Some(status) = self.order.remove(&key) {
            self.status_counts[status_rank(status)] -= 1;
        }
    }

    /// Records a collector's new replicated status.
    pub fn set_status(&mut self, id: &str, status: CollectorStatus) {
        let Some(slot) = self.keys.get(id).and_then(|key| self.order.get_mut(key)) else { return };
        let previous = std::mem::replace(slot, status);
        self.status_counts[status_rank(previous)] -= 1;
        self.status_counts[status_rank(status)] += 1;
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many collectors have each status, in [`STATUS_ORDER`].
    pub fn status_counts(&self) -> [usize; 5] {
        self.status_counts
    }

    /// A collector's key.
    pub fn key_of(&self, id: &str) -> Option<&NameKey> {
        self.keys.get(id).map(|key| &**key)
    }

    /// The collectors strictly after `cursor` in ascending order (natural name, then id), from the
    /// first without one.
    pub fn ascending_after<'a>(
        &'a self,
        cursor: Option<&NameKey>,
    ) -> impl Iterator<Item = (&'a NameKey, CollectorStatus)> + 'a {
        let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        self.order.range::<NameKey, _>((lower, Bound::Unbounded)).map(|(key, status)| (&**key, *status))
    }

    /// The collectors strictly after `cursor` in descending order, which is natural name descending
    /// then id *ascending* (ties keep the ascending tie-break): first the cursor's own name with a
    /// greater id, then the names before it, from the last; from the last name without a cursor.
    /// Names are unique among collectors (`apply` refuses a second), so one name is one entry and
    /// walking the map backwards is that order.
    pub fn descending_after<'a>(
        &'a self,
        cursor: Option<&NameKey>,
    ) -> Box<dyn Iterator<Item = (&'a NameKey, CollectorStatus)> + 'a> {
        let entry = |(key, status): (&'a Arc<NameKey>, &'a CollectorStatus)| (&**key, *status);
        let Some(cursor) = cursor else { return Box::new(self.order.iter().rev().map(entry)) };
        let name = cursor.natural.clone();
        let same_name = self
            .order
            .range::<NameKey, _>((Bound::Excluded(cursor), Bound::Unbounded))
            .take_while(move |(key, _)| key.natural == name)
            .map(entry);
        let earlier_names = self
            .order
            .range::<NameKey, _>((Bound::Unbounded, Bound::Excluded(&cursor.first_of_name())))
            .rev()
            .map(entry);
        Box::new(same_name.chain(earlier_names))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;
    use crate::model::labels::natural_cmp;
    use crate::model::{CollectorMode, UnixMillis};

    #[test]
    fn keys_order_names_by_value_then_case_then_bytes() {
        let mut names =
            vec!["sim-10", "sim-2", "Sim-1", "sim-100", "sim-02", "alpha", "sim-1", "sim-", "sim"];
        names.sort_by_key(|name| natural_key(name));
        assert_eq!(names, ["alpha", "sim", "sim-", "Sim-1", "sim-1", "sim-02", "sim-2", "sim-10", "sim-100"]);
    }

    #[test]
    fn a_digit_run_longer_than_a_byte_count_still_orders_by_value() {
        let long = format!("n{}", "9".repeat(300));
        let longer = format!("n1{}", "0".repeat(300));
        let short = format!("n{}", "9".repeat(254));
        assert_eq!(natural_key(&short).cmp(&natural_key(&long)), Ordering::Less);
        assert_eq!(natural_key(&long).cmp(&natural_key(&longer)), Ordering::Less);
        assert_eq!(natural_cmp(&long, &longer), Ordering::Less);
    }

    pub(crate) fn name() -> impl Strategy<Value = String> {
        // Digits (with leading zeros), case, the bytes around the digits (`/`, `:`), a multi-byte letter.
        proptest::string::string_regex("[aAbZ0-9/:_é-]{0,8}").expect("regex")
    }

    proptest! {
        #[test]
        fn key_order_is_natural_order(left in name(), right in name()) {
            prop_assert_eq!(natural_key(&left).cmp(&natural_key(&right)), natural_cmp(&left, &right));
        }

        #[test]
        fn key_order_is_natural_order_for_long_digit_runs(left in "[a0-9]{0,300}", right in "[a0-9]{0,300}") {
            prop_assert_eq!(natural_key(&left).cmp(&natural_key(&right)), natural_cmp(&left, &right));
        }
    }

    fn id(number: u8) -> String {
        format!("col_{number:02}")
    }

    proptest! {
        /// Walking from any cursor, present or not, in either direction, gives what follows it in the
        /// list's order.
        #[test]
        fn walks_start_strictly_after_the_cursor(
            entries in proptest::collection::btree_map(name(), 0u8..4, 0..12),
            cursor_name in name(),
            cursor_id in 0u8..4,
        ) {
            let mut collectors = BTreeMap::new();
            for (number, (name, _)) in entries.iter().enumerate() {
                let record = CollectorRecord::new(
                    id(u8::try_from(number).expect("few")), name.clone(), CollectorMode::Opamp, BTreeMap::new(), UnixMillis(0));
                collectors.insert(record.id.clone(), Box::new(record));
            }
            let order = NameOrder::rebuilt(&collectors);
            let cursor = NameKey::new(&cursor_name, &id(cursor_id));
            let position = |record: &CollectorRecord| (natural_cmp(&record.name, &cursor_name), record.id.cmp(&id(cursor_id)));
            let mut ascending: Vec<&CollectorRecord> = collectors.values().map(|record| &**record)
                .filter(|record| position(record).0.then(position(record).1) == Ordering::Greater)
                .collect();
            ascending.sort_by(|a, b| natural_cmp(&a.name, &b.name).then_with(|| a.id.cmp(&b.id)));
            let walked: Vec<&str> = order.ascending_after(Some(&cursor)).map(|(key, _)| key.id()).collect();
            prop_assert_eq!(walked, ascending.iter().map(|record| record.id.as_str()).collect::<Vec<_>>());
            let mut descending: Vec<&CollectorRecord> = collectors.values().map(|record| &**record)
                .filter(|record| position(record).0.reverse().then(position(record).1) == Ordering::Greater)
                .collect();
            descending.sort_by(|a, b| natural_cmp(&b.name, &a.name).then_with(|| a.id.cmp(&b.id)));
            let walked: Vec<&str> = order.descending_after(Some(&cursor)).map(|(key, _)| key.id()).collect();
            prop_assert_eq!(walked, descending.iter().map(|record| record.id.as_str()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_status_change_moves_one_count() {
        let mut collectors = BTreeMap::new();
        for (id, name) in [("a", "x-1"), ("b", "x-2")] {
            let record = CollectorRecord::new(
                id.into(),
                name.into(),
                CollectorMode::Opamp,
                BTreeMap::new(),
                UnixMillis(0),
            );
            collectors.insert(id.to_owned(), Box::new(record));
        }
        let mut order = NameOrder::rebuilt(&collectors);
        assert_eq!(order.status_counts(), [2, 0, 0, 0, 0]);
        order.set_status("b", CollectorStatus::Degraded);
        order.set_status("missing", CollectorStatus::Connected);
        assert_eq!(order.status_counts(), [1, 0, 1, 0, 0]);
        order.remove("b");
        order.remove("b");
        assert_eq!((order.len(), order.status_counts()), (1, [1, 0, 0, 0, 0]));
    }
}
