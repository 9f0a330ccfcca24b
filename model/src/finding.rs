//! A finding's lifecycle as values: its state, the events that move it, and the one
//! pure function that says where each trigger takes it.
//!
//! Storage keeps these as text and converts at its boundary (as it does for roles);
//! every other crate compares values, never strings, so a typo is a compile error and
//! a new state is one match arm the compiler walks you through.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// The rule reports it and nobody has accepted it.
    Open,
    /// The rule no longer reports it (or its item was deleted).
    Fixed,
    /// Someone accepted it, with a reason and perhaps an expiry.
    Justified,
    /// A configured suppression pattern matches it.
    Suppressed,
}

/// Something that happened to a finding: one row of its timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FindingEvent {
    #[serde(rename = "opened")]
    Opened,
    #[serde(rename = "reopened")]
    Reopened,
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "justified")]
    Justified,
    #[serde(rename = "unjustified")]
    Unjustified,
    #[serde(rename = "justification expired")]
    JustificationExpired,
    #[serde(rename = "suppressed")]
    Suppressed,
    #[serde(rename = "unsuppressed")]
    Unsuppressed,
    #[serde(rename = "score changed")]
    ScoreChanged,
}

/// What can happen to an existing finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// An audit reported it again.
    Reported {
        /// A suppression pattern matches it now.
        suppressed: bool,
        /// Its justification (if it is justified) has not expired.
        justification_live: bool,
    },
    /// An audit of its item no longer reports it (state findings only).
    NoLongerReported,
    /// Its item was deleted.
    ItemDeleted,
    /// Its justification reached its expiry.
    JustificationLapsed { suppressed: bool },
    /// Someone justified it.
    Justify,
    /// Someone withdrew its justification.
    Unjustify { suppressed: bool },
}

/// A trigger that does not apply to the finding's state, with the sentence to show
/// after "finding N ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RefusedTransition(pub String);

/// Where `trigger` takes a finding in `state`, and the event to record (`None` when
/// nothing worth a timeline row happened). Pure: storage applies the result.
pub fn transition(
    state: FindingState,
    trigger: Trigger,
) -> Result<(FindingState, Option<FindingEvent>), RefusedTransition> {
    use FindingEvent as E;
    use FindingState as S;
    let quiet_or =
        |next: FindingState, event: FindingEvent| (next, (state != next).then_some(event));
    Ok(match trigger {
        Trigger::Reported {
            suppressed,
            justification_live,
        } => match state {
            // Back after a fix: a reopening, counted, even if suppressed now.
            S::Fixed if suppressed => (S::Suppressed, Some(E::Reopened)),
            S::Fixed => (S::Open, Some(E::Reopened)),
            // A live justification outlasts re-audits, score and suppression changes.
            S::Justified if justification_live => (S::Justified, None),
            S::Justified if suppressed => (S::Suppressed, Some(E::JustificationExpired)),
            S::Justified => (S::Open, Some(E::JustificationExpired)),
            _ if suppressed => quiet_or(S::Suppressed, E::Suppressed),
            _ => quiet_or(S::Open, E::Unsuppressed),
        },
        Trigger::NoLongerReported | Trigger::ItemDeleted => quiet_or(S::Fixed, E::Fixed),
        Trigger::JustificationLapsed { suppressed } => match state {
            S::Justified if suppressed => (S::Suppressed, Some(E::JustificationExpired)),
            S::Justified => (S::Open, Some(E::JustificationExpired)),
            _ => (state, None),
        },
        Trigger::Justify => match state {
            S::Fixed => {
                return Err(RefusedTransition(
                    "is fixed: there is nothing to justify".into(),
                ))
            }
            _ => (S::Justified, Some(E::Justified)),
        },
        Trigger::Unjustify { suppressed } => match state {
            S::Justified if suppressed => (S::Suppressed, Some(E::Unjustified)),
            S::Justified => (S::Open, Some(E::Unjustified)),
            other => return Err(RefusedTransition(format!("is {other}, not justified"))),
        },
    })
}

impl FindingState {
    pub const ALL: [FindingState; 4] = [
        FindingState::Open,
        FindingState::Fixed,
        FindingState::Justified,
        FindingState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::Open => "open",
            FindingState::Fixed => "fixed",
            FindingState::Justified => "justified",
            FindingState::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A state filter as users type it: state names, or `all` for every state (an
    /// empty result). The error names the word and the words that work.
    pub fn parse_filter<S: AsRef<str>>(words: &[S]) -> Result<Vec<FindingState>, String> {
        let mut states = Vec::new();
        for w in words {
            let w = w.as_ref().trim();
            if w == "all" {
                return Ok(Vec::new());
            }
            match FindingState::parse(w) {
                Some(s) if !states.contains(&s) => states.push(s),
                Some(_) => {}
                None => {
                    return Err(format!(
                        "state {w:?}: use open, fixed, justified, suppressed or all"
                    ))
                }
            }
        }
        Ok(states)
    }

    /// Still needs someone's attention (open, or accepted but not gone).
    pub fn is_active(self) -> bool {
        self != FindingState::Fixed
    }
}

impl FindingEvent {
    pub const ALL: [FindingEvent; 9] = [
        FindingEvent::Opened,
        FindingEvent::Reopened,
        FindingEvent::Fixed,
        FindingEvent::Justified,
        FindingEvent::Unjustified,
        FindingEvent::JustificationExpired,
        FindingEvent::Suppressed,
        FindingEvent::Unsuppressed,
        FindingEvent::ScoreChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingEvent::Opened => "opened",
            FindingEvent::Reopened => "reopened",
            FindingEvent::Fixed => "fixed",
            FindingEvent::Justified => "justified",
            FindingEvent::Unjustified => "unjustified",
            FindingEvent::JustificationExpired => "justification expired",
            FindingEvent::Suppressed => "suppressed",
            FindingEvent::Unsuppressed => "unsuppressed",
            FindingEvent::ScoreChanged => "score changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Text ⇄ value for the storage boundary and for comparisons in tests and templates.
macro_rules! text_value {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl TryFrom<String> for $t {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, UnknownValue> {
                <$t>::parse(&s).ok_or(UnknownValue {
                    what: $what,
                    text: s,
                })
            }
        }
        impl std::str::FromStr for $t {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                <$t>::parse(s).ok_or_else(|| UnknownValue {
                    what: $what,
                    text: s.to_owned(),
                })
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }
    };
}

text_value!(FindingState, "finding state");
text_value!(FindingEvent, "finding event");
text_value!(crate::ChangeKind, "change kind");

/// Text that names no known value: a database written by a newer guardrail, or a typo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use FindingEvent as E;
    use FindingState as S;

    fn reported(suppressed: bool, live: bool) -> Trigger {
        Trigger::Reported {
            suppressed,
            justification_live: live,
        }
    }

    #[test]
    fn text_round_trips_and_unknown_text_is_named() {
        for s in S::ALL {
            assert_eq!(S::try_from(s.to_string()), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for e in E::ALL {
            assert_eq!(E::try_from(e.to_string()), Ok(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        let err = S::try_from("closed".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "unknown finding state \"closed\"");
    }

    #[test]
    fn a_state_filter_reads_names_and_all() {
        assert_eq!(
            S::parse_filter(&["open", "fixed", "open"]),
            Ok(vec![S::Open, S::Fixed])
        );
        assert_eq!(S::parse_filter(&["open", "all"]), Ok(vec![]));
        assert_eq!(
            S::parse_filter(&["closed"]).unwrap_err(),
            "state \"closed\": use open, fixed, justified, suppressed or all"
        );
    }

    #[test]
    fn a_fixed_finding_seen_again_reopens_even_when_suppressed() {
        assert_eq!(
            transition(S::Fixed, reported(false, false)),
            Ok((S::Open, Some(E::Reopened)))
        );
        assert_eq!(
            transition(S::Fixed, reported(true, false)),
            Ok((S::Suppressed, Some(E::Reopened)))
        );
    }

    #[test]
    fn a_live_justification_outlasts_reaudits_and_a_lapsed_one_says_so() {
        assert_eq!(
            transition(S::Justified, reported(true, true)),
            Ok((S::Justified, None))
        );
        assert_eq!(
            transition(S::Justified, reported(false, false)),
            Ok((S::Open, Some(E::JustificationExpired)))
        );
        assert_eq!(
            transition(
                S::Justified,
                Trigger::JustificationLapsed { suppressed: true }
            ),
            Ok((S::Suppressed, Some(E::JustificationExpired)))
        );
        assert_eq!(
            transition(S::Open, Trigger::JustificationLapsed { suppressed: false }),
            Ok((S::Open, None))
        );
    }

    #[test]
    fn suppression_moves_are_recorded_once() {
        assert_eq!(
            transition(S::Open, reported(true, false)),
            Ok((S::Suppressed, Some(E::Suppressed)))
        );
        assert_eq!(
            transition(S::Suppressed, reported(true, false)),
            Ok((S::Suppressed, None))
        );
        assert_eq!(
            transition(S::Suppressed, reported(false, false)),
            Ok((S::Open, Some(E::Unsuppressed)))
        );
        assert_eq!(
            transition(S::Open, reported(false, false)),
            Ok((S::Open, None))
        );
    }

    #[test]
    fn fixing_is_idempotent_and_people_cannot_justify_what_is_gone() {
        assert_eq!(
            transition(S::Open, Trigger::NoLongerReported),
            Ok((S::Fixed, Some(E::Fixed)))
        );
        assert_eq!(
            transition(S::Fixed, Trigger::ItemDeleted),
            Ok((S::Fixed, None))
        );
        assert!(transition(S::Fixed, Trigger::Justify).is_err());
        assert_eq!(
            transition(S::Suppressed, Trigger::Justify),
            Ok((S::Justified, Some(E::Justified)))
        );
        assert_eq!(
            transition(S::Open, Trigger::Unjustify { suppressed: false })
                .unwrap_err()
                .to_string(),
            "is open, not justified"
        );
        assert_eq!(
            transition(S::Justified, Trigger::Unjustify { suppressed: true }),
            Ok((S::Suppressed, Some(E::Unjustified)))
        );
    }
}
