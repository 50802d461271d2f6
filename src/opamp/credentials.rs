//! What authenticates an OpAMP agent as its collector (docs/adr/0010): the collector's own token
//! (`lmct_…`), its derived credential (`lmoc_…`, [`DataKey::opamp_credential`]), or — for an agent
//! enrolled with one — the enrollment token it enrolled with, while that token is not revoked. The
//! edge and the owner of the collector's slot ask the same question of their replica
//! ([`authenticates`]); every comparison is of SHA-256 hashes, in constant time.

use std::collections::BTreeMap;

use crate::model::collector::{CollectorMode, CollectorRecord};
use crate::model::{FleetState, TokenHash};
use crate::secrets::{self, DataKey};

/// Whether `presented` (SHA-256 of what the caller sent) authenticates collector `record` now.
pub fn authenticates(
    fleet: &FleetState,
    data_key: &DataKey,
    record: &CollectorRecord,
    presented: &TokenHash,
) -> bool {
    if record.token.as_ref().is_some_and(|token| secrets::token_hashes_equal(&token.hash, presented)) {
        return true;
    }
    if record.mode != CollectorMode::Opamp {
        return false;
    }
    let enrolled_with = record
        .enrollment
        .as_ref()
        .and_then(|enrollment| fleet.enrollment_tokens.get(&enrollment.token_id))
        .filter(|token| token.check_authenticates().is_ok());
    if enrolled_with.is_some_and(|token| secrets::token_hashes_equal(&token.token_hash, presented)) {
        return true;
    }
    secrets::token_hashes_equal(&derived_hash(data_key, record), presented)
}

/// The collector's current derived credential.
pub fn derived(data_key: &DataKey, record: &CollectorRecord) -> String {
    data_key.opamp_credential(&record.id, record.credential_generation)
}

fn derived_hash(data_key: &DataKey, record: &CollectorRecord) -> TokenHash {
    secrets::hash_token(&derived(data_key, record))
}

/// The name of a collector created for an enrolling agent, from what its description says:
/// `service.name@host.name` (the collector build on that host), else whichever of them it has, else
/// `otelcol-` and the start of its instance uid.
pub fn enrolled_name(description: Option<&BTreeMap<String, String>>, instance_uid: &str) -> String {
    let attribute = |key: &str| {
        description
            .and_then(|attributes| attributes.get(key))
            .map(|value| value.trim())
            .filter(|value| !value.is_empty() && !value.chars().any(char::is_control))
    };
    let name = match (attribute("service.name"), attribute("host.name")) {
        (Some(service), Some(host)) => format!("{service}@{host}"),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => format!("otelcol-{}", instance_uid.chars().take(8).collect::<String>()),
    };
    // Collector names are at most 128 characters, and the uid may be appended to make it unique.
    name.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collector::Enrollment;
    use crate::model::enrollment_tokens::EnrollmentToken;
    use crate::model::{Command, UnixMillis};

    fn key() -> DataKey {
        DataKey::from_bytes(&[3; 32]).expect("key")
    }

    fn enrolled_fleet() -> FleetState {
        let mut fleet = FleetState::default();
        fleet
            .apply(&Command::RaiseFeatureLevel {
                level: crate::model::feature_level::FeatureLevel::OPAMP_ENROLLMENT,
                at: UnixMillis(1),
            })
            .expect("raise");
        let token = EnrollmentToken {
            id: "et_1".into(),
            token_hash: secrets::hash_token("lmet_one"),
            prefix: "lmet_one".into(),
            uses: None,
            used: 0,
            labels: Default::default(),
            created_at: UnixMillis(2),
            expires_at: UnixMillis(100_000),
            revoked_at: None,
        };
        fleet.apply(&Command::CreateEnrollmentToken { token }).expect("token");
        let enroll = Command::EnrollCollector {
            token_id: "et_1".into(),
            instance_uid: "uid-1".into(),
            collector_id: "col_1".into(),
            name: "otelcol@host".into(),
            at: UnixMillis(3),
        };
        fleet.apply(&enroll).expect("enroll");
        fleet
    }

    #[test]
    fn the_enrollment_token_authenticates_until_revoked_and_the_derived_credential_until_rotated() {
        let mut fleet = enrolled_fleet();
        let record = fleet.collector_by_instance_uid("uid-1").expect("bound").clone();
        assert_eq!(
            record.enrollment.as_deref(),
            Some(&Enrollment { instance_uid: "uid-1".into(), token_id: "et_1".into() })
        );
        let enrollment = secrets::hash_token("lmet_one");
        let credential = secrets::hash_token(&derived(&key(), &record));
        assert!(authenticates(&fleet, &key(), &record, &enrollment));
        assert!(authenticates(&fleet, &key(), &record, &credential));
        assert!(!authenticates(&fleet, &key(), &record, &secrets::hash_token("lmet_other")));
        let other_key = DataKey::from_bytes(&[4; 32]).expect("key");
        assert!(
            !authenticates(&fleet, &other_key, &record, &credential),
            "derived from this cluster's key only"
        );

        fleet
            .apply(&Command::RevokeEnrollmentToken { id: "et_1".into(), at: UnixMillis(4) })
            .expect("revoke");
        assert!(!authenticates(&fleet, &key(), &record, &enrollment), "revoked");
        assert!(
            authenticates(&fleet, &key(), &record, &credential),
            "the derived credential is the collector's"
        );

        let rotate = Command::SetCollectorToken {
            collector_id: "col_1".into(),
            token_hash: secrets::hash_token("lmct_new"),
            prefix: "lmct_new".into(),
            at: UnixMillis(5),
        };
        fleet.apply(&rotate).expect("rotate");
        let rotated = fleet.collector("col_1").expect("record").clone();
        assert!(!authenticates(&fleet, &key(), &rotated, &credential), "a rotation ends the old credential");
        assert!(authenticates(&fleet, &key(), &rotated, &secrets::hash_token(&derived(&key(), &rotated))));
        assert!(authenticates(&fleet, &key(), &rotated, &secrets::hash_token("lmct_new")));
    }

    #[test]
    fn names_come_from_the_agent_description() {
        let described: BTreeMap<String, String> =
            [("service.name", "otelcol-contrib"), ("host.name", "web-1")]
                .map(|(k, v)| (k.into(), v.into()))
                .into();
        assert_eq!(enrolled_name(Some(&described), "0192"), "otelcol-contrib@web-1");
        let host_only: BTreeMap<String, String> = [("host.name".to_owned(), "web-2".to_owned())].into();
        assert_eq!(enrolled_name(Some(&host_only), "0192"), "web-2");
        assert_eq!(enrolled_name(None, "0192abcdef99"), "otelcol-0192abcd");
        let long: BTreeMap<String, String> = [("host.name".to_owned(), "h".repeat(500))].into();
        assert_eq!(enrolled_name(Some(&long), "x").len(), 80);
    }
}
