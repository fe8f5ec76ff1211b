//! Whose view is wrong after a mixed run, and whether a JavaScript peer
//! fared worse beside our engines than beside its own kind.
//!
//! A view's wrong entries are counted one by one: a peer of its component
//! it does not see online (missing), a peer it sees online that is not in
//! its component (a ghost), and a peer it sees online with other data than
//! that peer set last. A Rust view must have none; a JavaScript view may
//! have as many as the same peer's view in the all-JavaScript control run
//! of the same scenario, and no more.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::{MixedRun, MixedScenario, Side};
use crate::proto::PeerId;
use crate::sim::interop::{Truth, View};
use crate::sim::sim_id;

/// Wrong entries of one view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrongCount {
    /// Peers of its component it does not see online.
    pub missing: usize,
    /// Peers it sees online that are not in its component.
    pub ghosts: usize,
    /// Peers it sees online, rightly, with other data than they set last.
    pub wrong_data: usize,
}

impl WrongCount {
    /// All wrong entries.
    pub fn total(&self) -> usize {
        self.missing + self.ghosts + self.wrong_data
    }

    /// Counts the wrong entries of peer `id`'s view (no view at all misses
    /// its whole component), and says what each one is.
    pub fn of(id: &str, view: Option<&View>, truth: &Truth) -> (WrongCount, Vec<String>) {
        let empty = BTreeSet::new();
        let component = truth.components.get(id).unwrap_or(&empty);
        let Some(view) = view else {
            let count = WrongCount {
                missing: component.len(),
                ..WrongCount::default()
            };
            return (count, vec!["no view".into()]);
        };
        let online: BTreeSet<&String> = view.online.iter().collect();
        let mut count = WrongCount::default();
        let mut lines = Vec::new();
        for p in component.iter().filter(|p| !online.contains(p)) {
            count.missing += 1;
            lines.push(format!("missing {}", short(p)));
        }
        for p in online.iter().filter(|p| !component.contains(**p)) {
            count.ghosts += 1;
            lines.push(format!("ghost {}", short(p)));
        }
        for p in online.iter().filter(|p| component.contains(**p)) {
            let seen = view.data.get(*p);
            let latest = truth.latest.get(*p);
            if seen != latest {
                count.wrong_data += 1;
                let text = |v: Option<&Value>| v.map_or("none".into(), Value::to_string);
                lines.push(format!(
                    "data of {} = {} (latest {})",
                    short(p),
                    text(seen),
                    text(latest)
                ));
            }
        }
        (count, lines)
    }
}

impl fmt::Display for WrongCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} missing, {} ghosts, {} wrong data)",
            self.total(),
            self.missing,
            self.ghosts,
            self.wrong_data
        )
    }
}

/// Peer `i` printed as its index and the start of its id.
fn short(hex: &str) -> String {
    match PeerId::from_hex_bytes(hex.as_bytes()) {
        Some(id) => super::trace::name(&id),
        None => format!("#{hex}"),
    }
}

/// One running peer's wrong entries in the mixed run and in the control.
#[derive(Debug, Clone)]
pub struct PeerReport {
    /// Its index in the scenario.
    pub index: usize,
    /// What it runs in the mixed run.
    pub side: Side,
    /// Its view's wrong entries in the mixed run.
    pub mixed: WrongCount,
    /// What they are.
    pub mixed_wrong: Vec<String>,
    /// Its view's wrong entries in the all-JavaScript control run.
    pub control: WrongCount,
    /// What they are.
    pub control_wrong: Vec<String>,
}

/// A scenario run mixed and as the all-JavaScript control.
#[derive(Debug, Clone)]
pub struct MixedReport {
    /// Every peer running at the end, by index.
    pub peers: Vec<PeerReport>,
    /// The mixed run.
    pub mixed: MixedRun,
    /// The control run.
    pub control: MixedRun,
}

impl MixedReport {
    /// Compares both runs' views with their truths (the same truth: both
    /// ran the same steps).
    pub fn new(scenario: &MixedScenario, mixed: MixedRun, control: MixedRun) -> Self {
        let peers = (0..scenario.n())
            .filter_map(|index| {
                let id = sim_id(index).to_hex();
                if !mixed.truth.components.contains_key(&id) {
                    return None;
                }
                let (m, mixed_wrong) = WrongCount::of(&id, mixed.views.get(&id), &mixed.truth);
                let (c, control_wrong) =
                    WrongCount::of(&id, control.views.get(&id), &control.truth);
                Some(PeerReport {
                    index,
                    side: scenario.sides[index],
                    mixed: m,
                    mixed_wrong,
                    control: c,
                    control_wrong,
                })
            })
            .collect();
        MixedReport {
            peers,
            mixed,
            control,
        }
    }

    /// Rust peers whose view is not exactly right.
    pub fn rust_wrong(&self) -> Vec<&PeerReport> {
        self.peers
            .iter()
            .filter(|p| p.side == Side::Rust && p.mixed.total() > 0)
            .collect()
    }

    /// JavaScript peers more wrong in the mixed run than in the control.
    pub fn js_worse(&self) -> Vec<&PeerReport> {
        self.peers
            .iter()
            .filter(|p| p.side == Side::Js && p.mixed.total() > p.control.total())
            .collect()
    }

    /// Whether both runs went quiet, no Rust view is wrong, no JavaScript
    /// view is worse than in the control, and the package threw no more
    /// than in the control.
    pub fn holds(&self) -> bool {
        self.mixed.quiet
            && self.control.quiet
            && self.rust_wrong().is_empty()
            && self.js_worse().is_empty()
            && self.mixed.js_errors.len() <= self.control.js_errors.len()
    }
}

impl fmt::Display for MixedReport {
    /// One line per peer (its side, and its wrong entries mixed and in the
    /// control), each wrong entry below it, then the runs' totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.peers {
            let side = match p.side {
                Side::Js => "js  ",
                Side::Rust => "rust",
            };
            let flag = if (p.side == Side::Rust && p.mixed.total() > 0)
                || (p.side == Side::Js && p.mixed.total() > p.control.total())
            {
                "  <-- WORSE"
            } else {
                ""
            };
            writeln!(
                f,
                "  #{:<2} {side} mixed {}, control {}{flag}",
                p.index, p.mixed, p.control
            )?;
            if !p.mixed_wrong.is_empty() {
                writeln!(f, "        mixed:   {}", p.mixed_wrong.join("; "))?;
            }
            if !p.control_wrong.is_empty() {
                writeln!(f, "        control: {}", p.control_wrong.join("; "))?;
            }
        }
        let total = |run: &MixedRun, side: Option<Side>| -> usize {
            self.peers
                .iter()
                .filter(|p| side.is_none_or(|s| p.side == s))
                .map(|p| {
                    if std::ptr::eq(run, &self.mixed) {
                        p.mixed.total()
                    } else {
                        p.control.total()
                    }
                })
                .sum()
        };
        writeln!(
            f,
            "  wrong entries at JS peers: mixed {}, control {}; at Rust peers (mixed): {}",
            total(&self.mixed, Some(Side::Js)),
            total(&self.control, Some(Side::Js)),
            total(&self.mixed, Some(Side::Rust)),
        )?;
        write!(
            f,
            "  delivered: mixed {}, control {}; quiet: mixed {}, control {}; JS errors: mixed {:?}, control {:?}",
            self.mixed.delivered,
            self.control.delivered,
            self.mixed.quiet,
            self.control.quiet,
            self.mixed.js_errors,
            self.control.js_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn hex(i: usize) -> String {
        sim_id(i).to_hex()
    }

    #[test]
    fn each_kind_of_wrong_entry_is_counted_once() {
        let truth = Truth {
            components: BTreeMap::from([(hex(0), [hex(0), hex(1), hex(2)].into())]),
            latest: (0..4).map(|i| (hex(i), json!({ "i": i }))).collect(),
        };
        let right = View {
            online: vec![hex(0), hex(1), hex(2)],
            data: (0..3).map(|i| (hex(i), json!({ "i": i }))).collect(),
        };
        assert_eq!(WrongCount::of(&hex(0), Some(&right), &truth).0.total(), 0);

        // Missing #2, a ghost #3, and {} for #1.
        let wrong = View {
            online: vec![hex(0), hex(1), hex(3)],
            data: BTreeMap::from([
                (hex(0), json!({ "i": 0 })),
                (hex(1), json!({})),
                (hex(3), json!({ "i": 3 })),
            ]),
        };
        let (count, lines) = WrongCount::of(&hex(0), Some(&wrong), &truth);
        assert_eq!(
            count,
            WrongCount {
                missing: 1,
                ghosts: 1,
                wrong_data: 1
            }
        );
        assert_eq!(
            lines,
            [
                "missing #2",
                "ghost #3",
                r#"data of #1 = {} (latest {"i":1})"#
            ]
        );

        let (none, _) = WrongCount::of(&hex(0), None, &truth);
        assert_eq!(none.missing, 3);
    }
}
