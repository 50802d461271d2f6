//! How `apply` handles OpAMP enrollment (`model/enrollment_tokens.rs`, ADR 0010): creating and
//! revoking enrollment tokens, and binding an agent's instance uid to a collector. Pure like the rest
//! of `apply`: ids, names and times come in the commands.

use super::{already_exists, not_found, ApplyError, Effect, FleetState};
use crate::model::collector::{CollectorMode, CollectorRecord, Enrollment};
use crate::model::enrollment_tokens::{EnrollRefused, EnrollmentToken, EnrollmentTokenError};
use crate::model::event::{EventType, NewEvent};
use crate::model::labels::check_labels;
use crate::model::UnixMillis;

impl FleetState {
    pub(super) fn create_enrollment_token(
        &mut self,
        token: &EnrollmentToken,
    ) -> Result<Vec<Effect>, ApplyError> {
        check_labels(&token.labels)
            .map_err(|problem| ApplyError::InvalidReference { field: "labels".into(), problem })?;
        self.enrollment_tokens.create(token.clone(), token.created_at).map_err(enrollment_token_error)?;
        Ok(vec![])
    }

    /// Revokes the token; every collector its agents authenticate with is told, so that their open
    /// connections close (`Effect::CollectorTokenChanged`).
    pub(super) fn revoke_enrollment_token(
        &mut self,
        id: &str,
        at: UnixMillis,
    ) -> Result<Vec<Effect>, ApplyError> {
        self.enrollment_tokens.revoke(id, at).map_err(enrollment_token_error)?;
        Ok(self
            .collectors_enrolled_by(id)
            .into_iter()
            .map(|collector_id| Effect::CollectorTokenChanged { collector_id })
            .collect())
    }

    /// The collectors whose agents authenticate with enrollment token `token_id`, in id order.
    pub fn collectors_enrolled_by(&self, token_id: &str) -> Vec<String> {
        self.collectors
            .values()
            .filter(|record| record.enrollment.as_ref().is_some_and(|bound| bound.token_id == token_id))
            .map(|record| record.id.clone())
            .collect()
    }

    /// The collector enrolled for the agent with this instance uid.
    pub fn collector_by_instance_uid(&self, instance_uid: &str) -> Option<&CollectorRecord> {
        self.instance_uid_index.get(instance_uid).and_then(|id| self.collector(id))
    }

    pub(super) fn enroll_collector(
        &mut self,
        token_id: &str,
        instance_uid: &str,
        collector_id: &str,
        name: &str,
        at: UnixMillis,
    ) -> Result<Vec<Effect>, ApplyError> {
        let token =
            self.enrollment_tokens.get(token_id).ok_or_else(|| not_found("enrollment token", token_id))?;
        if let Err(refusal) = token.check_authenticates() {
            return Err(ApplyError::Precondition { problem: refusal.to_string() });
        }
        let labels = token.labels.clone();
        let token_prefix = token.prefix.clone();
        let bound = self.instance_uid_index.get(instance_uid).cloned();
        if let Some(bound) = &bound {
            let current = self.collector(bound).and_then(|record| record.enrollment.as_ref());
            if current.is_some_and(|enrollment| enrollment.token_id == token_id) {
                return Ok(vec![]);
            }
        } else {
            if self.collectors.contains_key(collector_id) {
                return Err(already_exists("collector", collector_id));
            }
            if name.is_empty() {
                return Err(ApplyError::InvalidReference {
                    field: "name".into(),
                    problem: "must not be empty".into(),
                });
            }
        }
        self.enrollment_tokens.enroll(token_id, at).map_err(|refused| match refused {
            EnrollRefused::Unknown(id) => not_found("enrollment token", &id),
            EnrollRefused::Refused(refusal) => ApplyError::Precondition { problem: refusal.to_string() },
        })?;
        let enrollment = Enrollment { instance_uid: instance_uid.to_owned(), token_id: token_id.to_owned() };
        let event = |message: String| {
            NewEvent::new(at, EventType::Enrolled, message)
                .with("instance_uid", instance_uid)
                .with("enrollment_token", token_prefix.as_str())
        };
        if let Some(bound) = bound {
            // Another token enrolled this agent before: its connections made with that one close.
            let sink =
                Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level);
            if let Some(record) = self.collectors.get_mut(&bound) {
                record.enrollment = Some(Box::new(enrollment));
                record.push_event(
                    event(format!("agent enrolled again with enrollment token {token_prefix}…")),
                    sink,
                );
            }
            return Ok(vec![Effect::CollectorTokenChanged { collector_id: bound }]);
        }
        let name = self.unique_enrolled_name(name, instance_uid);
        let mut record =
            CollectorRecord::new(collector_id.to_owned(), name, CollectorMode::Opamp, Default::default(), at);
        record.labels = labels;
        record.enrollment = Some(Box::new(enrollment));
        self.instance_uid_index.insert(instance_uid.to_owned(), collector_id.to_owned());
        self.insert_new_collector(record, at);
        let sink = Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level);
        if let Some(record) = self.collectors.get_mut(collector_id) {
            record.push_event(event(format!("agent enrolled with enrollment token {token_prefix}…")), sink);
        }
        Ok(vec![])
    }

    pub(super) fn request_restart(
        &mut self,
        collector_id: &str,
        at: UnixMillis,
    ) -> Result<Vec<Effect>, ApplyError> {
        let sink = Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level);
        let record =
            self.collectors.get_mut(collector_id).ok_or_else(|| not_found("collector", collector_id))?;
        if record.mode != CollectorMode::Opamp {
            return Err(ApplyError::Precondition {
                problem: format!(
                    "collector {:?} is an Alloy collector; restart commands go to OpAMP agents (mode \"opamp\")",
                    record.name
                ),
            });
        }
        record.restart_requests += 1;
        record.push_event(
            NewEvent::new(
                at,
                EventType::RestartRequested,
                "restart of the collector requested from its OpAMP agent",
            )
            .with("request", record.restart_requests),
            sink,
        );
        Ok(vec![Effect::CollectorRestartRequested { collector_id: collector_id.to_owned() }])
    }

    /// `name` if free, else `name` followed by the start of the instance uid, else by all of it (two
    /// agents never share an instance uid, and an enrolled uid is never enrolled again).
    fn unique_enrolled_name(&self, name: &str, instance_uid: &str) -> String {
        let short: String = instance_uid.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
        [name.to_owned(), format!("{name}-{short}"), format!("{name}-{instance_uid}")]
            .into_iter()
            .find(|candidate| !self.collector_name_index.contains_key(candidate))
            .unwrap_or_else(|| format!("{name}-{instance_uid}-{}", self.collectors.len()))
    }
}

fn enrollment_token_error(error: EnrollmentTokenError) -> ApplyError {
    match error {
        EnrollmentTokenError::Invalid { field, problem } => {
            ApplyError::InvalidReference { field: field.into(), problem }
        }
        EnrollmentTokenError::AlreadyExists(id) => already_exists("enrollment token", &id),
        EnrollmentTokenError::NotFound(id) => not_found("enrollment token", &id),
        EnrollmentTokenError::Full => ApplyError::Precondition { problem: error.to_string() },
    }
}
