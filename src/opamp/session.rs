//! What the server keeps of one agent's message stream between messages: enough to notice that it
//! missed one. Agents leave out whatever did not change since their previous message (description,
//! health, effective config, …), so a server that missed a message — or never saw the stream: a node
//! restarted, a collector's slot moved to another node — cannot know the agent's state and asks for
//! all of it (`ServerToAgentFlags_ReportFullState`, spec "Agent Status Compression").

/// The last message seen from one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSession {
    instance_uid: String,
    last_sequence: u64,
    /// The config hash the agent last reported (`remote_config_status.last_remote_config_hash`),
    /// which its later messages leave out while it does not change.
    config_hash: Option<String>,
    /// Connection settings (the heartbeat interval, the own-metrics destination) were offered since
    /// the stream began or the agent last reported its full state (a restarted agent is back at its
    /// defaults).
    settings_offered: bool,
}

impl AgentSession {
    /// Records message `sequence_num` of agent `instance_uid` in `session` and says whether to ask
    /// the agent for its full state: no earlier message of this agent is known here, or one is
    /// missing (a sequence number other than the last plus one), and this message is not a full
    /// report already (`complete`: it carries the agent description, which every full report does).
    pub fn observe(
        session: &mut Option<Box<AgentSession>>,
        instance_uid: &str,
        sequence_num: u64,
        complete: bool,
    ) -> bool {
        let continues = session.as_ref().is_some_and(|known| {
            known.instance_uid == instance_uid && sequence_num == known.last_sequence.wrapping_add(1)
        });
        match session {
            Some(known) if known.instance_uid == instance_uid => {
                known.last_sequence = sequence_num;
                known.settings_offered &= continues && !complete;
            }
            _ => {
                *session = Some(Box::new(AgentSession {
                    instance_uid: instance_uid.to_owned(),
                    last_sequence: sequence_num,
                    config_hash: None,
                    settings_offered: false,
                }))
            }
        }
        !continues && !complete
    }

    /// True once per stream (and again after a gap or a full report): connection settings are to be
    /// offered in this reply. Offering them in every reply would loop with agents that answer every
    /// connection settings offer with a status message (and the supervisor writes each own-metrics
    /// offer to its disk).
    pub fn offer_settings(&mut self) -> bool {
        !std::mem::replace(&mut self.settings_offered, true)
    }

    /// Whether connection settings are still to be offered on this stream (without offering them).
    pub fn settings_pending(&self) -> bool {
        !self.settings_offered
    }

    /// Whether this is the stream of agent `instance_uid`.
    pub fn is_of(&self, instance_uid: &str) -> bool {
        self.instance_uid == instance_uid
    }

    /// The config hash the agent runs: `reported` when this message says it, else the one it last
    /// said (empty when unknown: the agent is then offered the config, and one that has it already
    /// keeps running it).
    pub fn config_hash(&mut self, reported: Option<String>) -> String {
        if let Some(reported) = reported {
            self.config_hash = Some(reported);
        }
        self.config_hash.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn a_stream_never_seen_is_asked_for_full_state_unless_the_message_is_one() {
        let mut session = None;
        assert!(
            AgentSession::observe(&mut session, AGENT, 7, false),
            "a restarted node missed what came before"
        );
        let mut session = None;
        assert!(
            !AgentSession::observe(&mut session, AGENT, 0, true),
            "the agent's first message is complete"
        );
    }

    #[test]
    fn consecutive_messages_need_nothing_and_a_gap_asks_again() {
        let mut session = None;
        AgentSession::observe(&mut session, AGENT, 0, true);
        assert!(!AgentSession::observe(&mut session, AGENT, 1, false));
        assert!(!AgentSession::observe(&mut session, AGENT, 2, false));
        assert!(AgentSession::observe(&mut session, AGENT, 4, false), "message 3 was missed");
        assert!(!AgentSession::observe(&mut session, AGENT, 5, true), "the full report that followed");
        assert!(!AgentSession::observe(&mut session, AGENT, 6, false));
    }

    #[test]
    fn the_config_hash_an_agent_stops_repeating_is_remembered() {
        let mut session = None;
        AgentSession::observe(&mut session, AGENT, 0, true);
        let known = session.as_mut().expect("observed");
        assert_eq!(known.config_hash(None), "", "never said");
        assert_eq!(known.config_hash(Some("abc".into())), "abc");
        assert_eq!(known.config_hash(None), "abc", "left out while unchanged");
        AgentSession::observe(&mut session, "0193a1b2-c3d4-7e5f-8a9b-000000000000", 0, true);
        assert_eq!(session.as_mut().expect("observed").config_hash(None), "", "another instance");
    }

    #[test]
    fn another_instance_on_the_same_collector_is_a_new_stream() {
        let mut session = None;
        AgentSession::observe(&mut session, AGENT, 0, true);
        assert!(AgentSession::observe(&mut session, "0193a1b2-c3d4-7e5f-8a9b-000000000000", 1, false));
        assert!(!AgentSession::observe(&mut session, "0193a1b2-c3d4-7e5f-8a9b-000000000000", 2, false));
    }

    #[test]
    fn settings_are_offered_once_per_stream_and_again_after_a_gap_or_a_full_report() {
        let mut session = None;
        let mut offers = |sequence_num, complete| {
            AgentSession::observe(&mut session, AGENT, sequence_num, complete);
            session.as_mut().expect("observed").offer_settings()
        };
        assert!(offers(0, true), "the first message");
        assert!(!offers(1, false), "its answer (a connection settings status) is not offered it again");
        assert!(!offers(2, false));
        assert!(offers(5, false), "a gap: maybe a restarted agent");
        assert!(!offers(6, false));
        assert!(offers(7, true), "a full report");
        assert!(!offers(8, false));
    }
}
