//! Reading a scenario from a file or text and checking it before it runs,
//! with one-line errors; apart from the format's types so that those stay a
//! plain description of the file.

use std::path::Path;

use super::format::{Action, Scenario, MAX_PEERS, MAX_TOTAL_PEERS};

/// Why a scenario could not be read or run; each is one line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a scenario.
    #[error("{0}")]
    Parse(String),
    /// The scenario is well formed but makes no sense.
    #[error("invalid scenario: {0}")]
    Invalid(String),
    /// An event could not happen (a peer that is not running, …).
    #[error("event {index} ({action}): {message}")]
    Event {
        /// The event's position, from 1.
        index: usize,
        /// Its action.
        action: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads a scenario file: TOML if its name ends in `.toml`, JSON if in
    /// `.json`.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Self::from_toml(&text),
            Some(e) if e.eq_ignore_ascii_case("json") => Self::from_json(&text),
            _ => {
                return Err(ScenarioError::Parse(format!(
                    "{shown}: a scenario file's name ends in .toml or .json"
                )))
            }
        };
        parsed.map_err(|e| match e {
            ScenarioError::Parse(m) => ScenarioError::Parse(format!("{shown}: {m}")),
            ScenarioError::Invalid(m) => ScenarioError::Invalid(format!("{shown}: {m}")),
            other => other,
        })
    }

    /// Parses and checks a scenario written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            ScenarioError::Parse(format!("{place}{}", one_line(e.message())))
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Parses and checks a scenario written in JSON.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = serde_json::from_str(text)
            .map_err(|e| ScenarioError::Parse(one_line(&e.to_string())))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what can be checked before running: sizes, probabilities,
    /// latencies, times in order, each action's arguments.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.peers > MAX_PEERS {
            return bad(format!(
                "peers is {}, at most {MAX_PEERS} are allowed",
                self.peers
            ));
        }
        if !(1..=64).contains(&self.topology.degree) {
            return bad(format!(
                "topology degree is {}, it must be between 1 and 64",
                self.topology.degree
            ));
        }
        for (name, p) in [
            ("duplicate", self.faults.duplicate),
            ("drop", self.faults.drop),
        ] {
            if !(p.is_finite() && (0.0..=0.5).contains(&p)) {
                return bad(format!(
                    "faults {name} is {p}, it must be between 0 and 0.5"
                ));
            }
        }
        self.faults.latency.check("faults latency").or_else(bad)?;
        if let Some(link) = &self.faults.link_latency {
            link.check("faults link_latency").or_else(bad)?;
        }
        let s = &self.sampling;
        if !(s.interval_ms.is_finite() && (0.1..=60_000.0).contains(&s.interval_ms)) {
            return bad(format!(
                "sampling interval_ms is {}, it must be between 0.1 and 60000",
                s.interval_ms
            ));
        }
        if s.peers == 0 || s.max_samples == 0 || s.give_up_ms == 0 {
            return bad("sampling peers, max_samples and give_up_ms must be above 0".into());
        }
        if self.events.is_empty() {
            return bad("no events".into());
        }
        let mut last_at = 0;
        let mut total = self.peers;
        for (i, step) in self.events.iter().enumerate() {
            let at_fault = |m: String| {
                Err(ScenarioError::Invalid(format!(
                    "event {} ({}): {m}",
                    i + 1,
                    step.action.name()
                )))
            };
            if let Some(at) = step.at_ms {
                if at < last_at {
                    return at_fault(format!(
                        "at_ms {at} is before the previous event's {last_at}"
                    ));
                }
                if at > 1_000_000_000 {
                    return at_fault(format!("at_ms {at} is over 11 days"));
                }
                last_at = at;
            }
            match &step.action {
                Action::Join { count, links } => {
                    if *count == 0 {
                        return at_fault("count must be at least 1".into());
                    }
                    total = total.saturating_add(*count);
                    if total > MAX_TOTAL_PEERS {
                        return at_fault(format!("more than {MAX_TOTAL_PEERS} peers in all"));
                    }
                    if links.is_some_and(|l| !(1..=64).contains(&l)) {
                        return at_fault("links must be between 1 and 64".into());
                    }
                }
                Action::Leave { peer, count }
                | Action::Crash { peer, count }
                | Action::Restart { peer, count, .. }
                | Action::SetData { peer, count } => {
                    if *count == 0 {
                        return at_fault("count must be at least 1".into());
                    }
                    if peer.is_some() && *count != 1 {
                        return at_fault("give either peer or count, not both".into());
                    }
                    if peer.is_some_and(|p| p >= total) {
                        return at_fault(format!(
                            "peer {} does not exist (peers are numbered 0 to {})",
                            peer.unwrap_or_default(),
                            total.saturating_sub(1)
                        ));
                    }
                }
                Action::Partition { fraction, groups } => match (fraction, groups) {
                    (Some(f), None) if f.is_finite() && *f > 0.0 && *f < 1.0 => {}
                    (Some(f), None) => {
                        return at_fault(format!("fraction is {f}, it must be between 0 and 1"))
                    }
                    (None, Some(g)) if (2..=1_000).contains(g) => {}
                    (None, Some(g)) => {
                        return at_fault(format!("groups is {g}, it must be between 2 and 1000"))
                    }
                    _ => return at_fault("give either fraction or groups".into()),
                },
                Action::JoinAll | Action::Heal => {}
            }
        }
        Ok(())
    }
}

/// Error messages of the parsers can span lines; ours are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
