//! `hyper-presence sim`: the protocol engine in the simulated network, a
//! thin shell over [`hyper_presence::sim::scenario`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use hyper_presence::sim::scenario::{
    self, Action, EventReport, FaultSpec, Progress, Report, Scenario, Shape, Step, Topology,
};

use super::{huge_pages, out};

/// Arguments of `sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many peers.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=20_000), conflicts_with = "scenario")]
    peers: u32,
    /// Seed of every random choice: the same seed replays the same run
    /// [default: 1, or the scenario's].
    #[arg(long)]
    seed: Option<u64>,
    /// How peers are linked.
    #[arg(long, value_enum, default_value_t = Shape::Random, conflicts_with = "scenario")]
    shape: Shape,
    /// Links per peer for `regular` and `small-world` (nearest neighbours),
    /// new links per peer for `scale-free`.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64), conflicts_with = "scenario")]
    degree: u32,
    /// Chance that a packet is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = probability, conflicts_with = "scenario")]
    duplicate: f64,
    /// Chance that a packet is lost (its link dies and is redialled).
    #[arg(long, default_value_t = 0.0, value_parser = probability, conflicts_with = "scenario")]
    drop: f64,
    /// Run the scenario in this file (.toml or .json) instead of the one the
    /// flags above describe (all join at once, one crashes, it restarts, one
    /// leaves).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Also draw agreement over simulated time as an SVG chart in this file.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
    /// Print one JSON object per event, then one for the whole run, instead
    /// of the table.
    #[arg(long)]
    json: bool,
}

/// The shape as scenario files and --shape spell it.
fn shape_name(shape: Shape) -> String {
    serde_json::to_value(shape)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn probability(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=0.5).contains(&p) {
        Ok(p)
    } else {
        Err("a probability here is between 0 and 0.5".into())
    }
}

/// The scenario the flags describe.
fn from_flags(args: &SimArgs) -> Scenario {
    Scenario {
        peers: args.peers as usize,
        seed: args.seed.unwrap_or(1),
        topology: Topology {
            shape: args.shape,
            degree: args.degree as usize,
        },
        faults: FaultSpec {
            duplicate: args.duplicate,
            drop: args.drop,
            ..FaultSpec::default()
        },
        sampling: Default::default(),
        announce_window_ms: 5,
        gossip_window_ms: 10,
        have_notices: true,
        share_between_engines: true,
        max_send_bytes: hyper_presence::proto::DEFAULT_MAX_SEND_BYTES,
        events: vec![
            Step::new(Action::JoinAll).labelled("all join at once"),
            Step::new(Action::Crash {
                peer: None,
                count: 1,
            })
            .labelled("one peer crashes"),
            Step::new(Action::Restart {
                peer: None,
                count: 1,
                same_incarnation: false,
            })
            .labelled("it restarts"),
            Step::new(Action::Leave {
                peer: None,
                count: 1,
            })
            .labelled("one peer leaves"),
        ],
    }
}

/// CPU time (user + system) and peak resident memory of this process so far.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    peak_bytes: u64,
}

#[cfg(unix)]
fn usage() -> Usage {
    let mut raw = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is handed, which is ours
    // and of the type it expects.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, raw.as_mut_ptr()) };
    if rc != 0 {
        return Usage::default();
    }
    // SAFETY: zero is a valid rusage, and getrusage succeeded.
    let raw = unsafe { raw.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    // Linux counts the peak in KiB, macOS in bytes.
    let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Usage {
        cpu: time(raw.ru_utime) + time(raw.ru_stime),
        peak_bytes: (raw.ru_maxrss.max(0) as u64).saturating_mul(unit),
    }
}

#[cfg(not(unix))]
fn usage() -> Usage {
    Usage::default()
}

/// A progress bar on stderr that appears only once a run has lasted a
/// couple of seconds, and never when stderr is not a terminal.
struct Bar {
    bar: ProgressBar,
    enabled: bool,
    shown: bool,
    started: Instant,
}

impl Bar {
    fn new(events: usize, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(events as u64), ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} events done  {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar {
            bar,
            enabled,
            shown: false,
            started: Instant::now(),
        }
    }

    fn update(&mut self, event: usize, simulated: Duration) {
        if self.enabled && !self.shown && self.started.elapsed() > Duration::from_secs(2) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        if self.shown {
            self.bar.set_position(event.saturating_sub(1) as u64);
            self.bar
                .set_message(format!("simulated {:.3} s", simulated.as_secs_f64()));
        }
    }

    /// Prints a line on stdout without tearing the bar.
    fn println(&self, line: &str) {
        self.bar.suspend(|| out(line));
    }
}

const EVENT_WIDTH: usize = 30;

fn header() -> String {
    format!(
        "{:>3} {:<EVENT_WIDTH$} {:>9} {:>12} {:>10} {:>12} {:>9} {:>8} {:>6} {:>8} {:>9} {:>9} {:>10} {:>8}",
        "#",
        "event",
        "at",
        "agreed after",
        "packets",
        "bytes",
        "per peer",
        "wall",
        "check",
        "cpu",
        "peak mem",
        "µs/learn",
        "recv/learn",
        "correct"
    )
}

/// µs of CPU and entries received per learning (one engine newly knowing
/// one node), or `None` when nothing was learned.
fn per_learning(cpu: Duration, entries: u64, learned: u64) -> Option<(f64, f64)> {
    (learned > 0).then(|| {
        (
            cpu.as_secs_f64() * 1e6 / learned as f64,
            entries as f64 / learned as f64,
        )
    })
}

/// `part / learned`, or `None` when nothing was learned.
fn ratio(part: u64, learned: u64) -> Option<f64> {
    (learned > 0).then(|| part as f64 / learned as f64)
}

fn table_row(row: &EventReport, labelled: bool, wall: Duration, usage: Usage) -> String {
    // An unlabelled event is shown by what it did, which says more.
    let mut name = if labelled {
        row.event.clone()
    } else {
        row.detail.clone()
    };
    if name.chars().count() > EVENT_WIDTH {
        name = name.chars().take(EVENT_WIDTH - 1).collect::<String>() + "…";
    }
    let check = if row.wall_s > 0.0 {
        format!("{:.0} %", 100.0 * row.check_s / row.wall_s)
    } else {
        "—".to_owned()
    };
    let (us, recv) = match per_learning(usage.cpu, row.entries_received, row.learned) {
        Some((us, recv)) => (format!("{us:.2}"), format!("{recv:.2}")),
        None => ("—".to_owned(), "—".to_owned()),
    };
    format!(
        "{:>3} {:<EVENT_WIDTH$} {:>9} {:>12} {:>10} {:>12} {:>9.1} {:>8} {:>6} {:>8} {:>9} {:>9} {:>10} {:>8}",
        row.index,
        name,
        format!("{:.3} s", row.at_ms / 1000.0),
        row.agreed_after_ms
            .map_or("—".to_owned(), |a| format!("{:.3} s", a / 1000.0)),
        row.packets,
        row.bytes,
        row.amplification,
        format!("{:.2} s", wall.as_secs_f64()),
        check,
        format!("{:.2} s", usage.cpu.as_secs_f64()),
        megabytes(usage.peak_bytes),
        us,
        recv,
        match row.correct {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "next came",
        }
    )
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

pub fn run(args: SimArgs) -> Result<ExitCode, String> {
    huge_pages::restart_with_huge_pages();
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path).map_err(|e| e.to_string())?,
        None => from_flags(&args),
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(path) = &args.chart {
        // Find out now, not after a long run, that the chart cannot be written.
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let json = args.json;
    let labelled: Vec<bool> = scenario.events.iter().map(|s| s.label.is_some()).collect();
    let title = match &args.scenario {
        Some(path) => format!(
            "{}: {} peers ({}), seed {}",
            path.display(),
            scenario.peers,
            shape_name(scenario.topology.shape),
            scenario.seed
        ),
        None => format!(
            "{} peers ({}), seed {}, duplicate {}, drop {}",
            scenario.peers,
            shape_name(scenario.topology.shape),
            scenario.seed,
            args.duplicate,
            args.drop
        ),
    };
    if !json {
        out(&title);
        out(&header());
    }
    let mut bar = Bar::new(
        scenario.events.len(),
        !json && std::io::stderr().is_terminal(),
    );
    let started = Instant::now();
    let at_start = usage();
    let mut last_wall = started;
    let mut last_usage = at_start;
    let mut problems_shown = 0;
    let report: Report = scenario::run_with(&scenario, |progress| match progress {
        Progress::Running { event, now, .. } => bar.update(event, now),
        Progress::Done(row) => {
            let now = usage();
            let wall = last_wall.elapsed();
            let cpu = now.cpu.saturating_sub(last_usage.cpu);
            last_wall = Instant::now();
            last_usage = now;
            let this = Usage {
                cpu,
                peak_bytes: now.peak_bytes,
            };
            if json {
                let mut line = serde_json::to_value(row).unwrap_or_default();
                line["wall_s"] = wall.as_secs_f64().into();
                line["cpu_s"] = cpu.as_secs_f64().into();
                line["peak_memory_bytes"] = now.peak_bytes.into();
                let per = per_learning(cpu, row.entries_received, row.learned);
                line["cpu_us_per_learning"] = per.map(|p| p.0).into();
                line["entries_per_learning"] = per.map(|p| p.1).into();
                line["news_per_learning"] = ratio(row.entries_news, row.learned).into();
                line["notices_per_learning"] = ratio(row.notices_received, row.learned).into();
                bar.println(&line.to_string());
            } else {
                let labelled = labelled.get(row.index - 1).copied().unwrap_or(false);
                bar.println(&table_row(row, labelled, wall, this));
                if problems_shown < 20 {
                    for problem in &row.problems {
                        bar.bar.suspend(|| eprintln!("    {problem}"));
                        problems_shown += 1;
                    }
                }
            }
            bar.update(row.index + 1, Duration::from_secs_f64(row.at_ms / 1000.0));
        }
    })
    .map_err(|e| e.to_string())?;
    bar.bar.finish_and_clear();
    let end = usage();
    let wall = started.elapsed();
    let cpu = end.cpu.saturating_sub(at_start.cpu);
    let ok = report.all_correct();
    let learned: u64 = report.rows.iter().map(|r| r.learned).sum();
    let entries: u64 = report.rows.iter().map(|r| r.entries_received).sum();
    let news: u64 = report.rows.iter().map(|r| r.entries_news).sum();
    let notices: u64 = report.rows.iter().map(|r| r.notices_received).sum();
    let checking: f64 = report.rows.iter().map(|r| r.check_s).sum();
    let per = per_learning(cpu, entries, learned);
    if json {
        let summary = serde_json::json!({
            "summary": true,
            "events": report.rows.len(),
            "peers": report.rows.last().map_or(0, |r| r.peers),
            "simulated_s": report.end_ms / 1000.0,
            "packets": report.rows.iter().map(|r| r.packets).sum::<u64>(),
            "bytes": report.rows.iter().map(|r| r.bytes).sum::<u64>(),
            "wall_s": wall.as_secs_f64(),
            "cpu_s": cpu.as_secs_f64(),
            "peak_memory_bytes": end.peak_bytes,
            "learned": learned,
            "entries_received": entries,
            "cpu_us_per_learning": per.map(|p| p.0),
            "entries_per_learning": per.map(|p| p.1),
            "entries_news": news,
            "news_per_learning": ratio(news, learned),
            "notices_received": notices,
            "notices_per_learning": ratio(notices, learned),
            "check_s": checking,
            "huge_pages": huge_pages::in_effect(),
            "correct": ok,
        });
        out(&summary.to_string());
    } else {
        let per = match per {
            Some((us, recv)) => format!(
                "; {learned} learnings, {us:.2} µs of CPU and {recv:.2} entries received per learning ({:.2} of them news) and {:.2} notices",
                ratio(news, learned).unwrap_or(0.0),
                ratio(notices, learned).unwrap_or(0.0),
            ),
            None => String::new(),
        };
        out(&format!(
            "whole run: {:.3} s simulated; {:.2} s wall ({:.2} s of it checking views), {:.2} s CPU (user + sys), {} peak memory{per}; {}",
            report.end_ms / 1000.0,
            wall.as_secs_f64(),
            checking,
            cpu.as_secs_f64(),
            megabytes(end.peak_bytes),
            if ok {
                "every view right"
            } else {
                "SOME VIEWS WRONG"
            }
        ));
    }
    if let Some(path) = &args.chart {
        chart::draw(path, &title, &report)?;
        if !json {
            out(&format!("chart: {}", path.display()));
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

mod chart {
    //! Agreement over simulated time, as SVG.

    use super::*;
    use plotters::prelude::*;

    /// Most points drawn; longer series are thinned evenly.
    const MAX_POINTS: usize = 4_000;

    pub fn draw(path: &Path, title: &str, report: &Report) -> Result<(), String> {
        let svg = render(title, report).map_err(|e| format!("cannot draw the chart: {e}"))?;
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn render(title: &str, report: &Report) -> Result<String, Box<dyn std::error::Error>> {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for row in &report.rows {
            let at = row.at_ms / 1000.0;
            // Agreement holds where it was until the event; then it drops at once.
            if let Some(&(_, before)) = points.last() {
                points.push((at, before));
            }
            for s in &row.agreement {
                points.push((at + s.t_ms / 1000.0, s.agreement * 100.0));
            }
        }
        if points.len() > MAX_POINTS {
            let keep = points.len().div_ceil(MAX_POINTS);
            let last = points.len() - 1;
            points = points
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % keep == 0 || *i == last)
                .map(|(_, p)| p)
                .collect();
        }
        let end = points
            .iter()
            .map(|p| p.0)
            .fold(report.end_ms / 1000.0, f64::max)
            .max(0.001);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (960, 440)).into_drawing_area();
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0f64..end * 1.02, 0f64..112f64)?;
            chart
                .configure_mesh()
                .x_desc("simulated time (s)")
                .y_desc("peers whose online list is right (%)")
                .y_labels(6)
                .disable_x_mesh()
                .draw()?;
            let marker = RGBColor(170, 170, 170);
            let labels = report.rows.len() <= 16;
            for (k, row) in report.rows.iter().enumerate() {
                let at = row.at_ms / 1000.0;
                chart.draw_series(LineSeries::new([(at, 0.0), (at, 100.0)], marker))?;
                if labels {
                    // Three heights in turn, so neighbouring labels do not overlap.
                    let y = 110.0 - 3.5 * (k % 3) as f64;
                    chart.draw_series(std::iter::once(Text::new(
                        row.event.clone(),
                        (at, y),
                        ("sans-serif", 12).into_font().color(&RGBColor(80, 80, 80)),
                    )))?;
                }
            }
            chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
            root.present()?;
        }
        Ok(svg)
    }
}
