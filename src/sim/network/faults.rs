//! What can go wrong on a simulated link: latency distributions, loss and
//! duplication. Apart from the network because scenario files describe
//! exactly these, and the network only draws from them.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// How long a packet takes on a link: a distribution each packet's one-way
/// latency is drawn from, so packets overtake each other, on one link as
/// across links. Every draw is clamped to between 0 and [`Latency::CAP`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Uniform between `min` and `max` (drawn in whole microseconds).
    Uniform {
        /// Least latency.
        min: Duration,
        /// Greatest latency.
        max: Duration,
    },
    /// Normal around `mean`; draws below zero become zero.
    Normal {
        /// Mean latency.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Log-normal: mostly near `median`, with a long tail of slow packets
    /// (`sigma` 1 makes one packet in twenty over five times the median).
    LogNormal {
        /// Median latency.
        median: Duration,
        /// Standard deviation of the latency's logarithm.
        sigma: f64,
    },
}

impl Latency {
    /// Longest latency any draw can give, so a long tail stays finite.
    pub const CAP: Duration = Duration::from_secs(60);

    /// Every packet takes exactly `latency`.
    pub fn fixed(latency: Duration) -> Self {
        Latency::Uniform {
            min: latency,
            max: latency,
        }
    }

    /// One draw from the distribution.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Duration {
        match *self {
            // Drawn as before distributions existed, so seeded runs replay.
            Latency::Uniform { min, max } => {
                let (lo, hi) = (min, max.max(min));
                let span = (hi - lo).as_micros() as u64;
                (lo + Duration::from_micros(rng.random_range(0..=span))).min(Self::CAP)
            }
            Latency::Normal { mean, std_dev } => {
                Self::seconds(mean.as_secs_f64() + std_dev.as_secs_f64() * standard_normal(rng))
            }
            Latency::LogNormal { median, sigma } => {
                Self::seconds(median.as_secs_f64() * (sigma * standard_normal(rng)).exp())
            }
        }
    }

    fn seconds(s: f64) -> Duration {
        if s.is_nan() || s <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(s.min(Self::CAP.as_secs_f64()))
        }
    }
}

/// A standard normal draw (Box–Muller), from two uniform draws.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // 1 - u lies in (0, 1], so its logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How packets travel: their latency, and what can go wrong with them
/// (probabilities per packet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Each packet's one-way latency.
    pub latency: Latency,
    /// When set, each pair of peers draws a base latency from this the first
    /// time they connect and keeps it for every later connection (a slow
    /// path stays slow, across redials and restarts); every packet between
    /// them takes that plus its own draw from `latency`.
    pub link_latency: Option<Latency>,
    /// Chance that a delivered packet stays in flight to be delivered again.
    pub duplicate: f64,
    /// Chance that a packet is lost; the link it was on then dies (both sides
    /// see a disconnect, packets still on it are lost too) and is redialled
    /// at once, as a TCP connection that lost data would be.
    pub drop: f64,
}

impl Default for Faults {
    /// 1 to 50 ms of latency, uniform, the same for every link; no
    /// duplication, no loss.
    fn default() -> Self {
        Faults {
            latency: Latency::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(50),
            },
            link_latency: None,
            duplicate: 0.0,
            drop: 0.0,
        }
    }
}

impl Faults {
    /// Default latency with the given duplication and loss.
    pub fn lossy(duplicate: f64, drop: f64) -> Self {
        Faults {
            duplicate,
            drop,
            ..Faults::default()
        }
    }
}
