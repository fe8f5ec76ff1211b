//! The `hyper-presence` binary, run as a user would.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-presence"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decode_shows_the_original_state_vector_as_json() {
    let (code, stdout, _) = run(&[
        "decode",
        "--message",
        "000512107b226e616d65223a22616c696365227d",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["type"], "State");
    assert_eq!(v["data"], r#"{"name":"alice"}"#);
}

#[test]
fn decode_shows_a_flood_packet_and_its_origin() {
    let packet = "0a20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa100718ff012214000512107b226e616d65223a22616c696365227d";
    let (code, stdout, _) = run(&["decode", packet]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["origin"], "aa".repeat(32));
    assert_eq!(
        (v["number"].as_u64(), v["ttl"].as_u64()),
        (Some(7), Some(255))
    );
}

#[test]
fn decode_shows_our_extensions_raw_keys_and_unknown_feature_bits() {
    // A request that reads batches, notices and raw ids (1 | 2 | 4) and a
    // bit this build does not know (64): field 10.
    let (code, stdout, _) = run(&["decode", "--message", "00015047"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["type"], "BootstrapRequest");
    assert_eq!(
        v["features"],
        serde_json::json!(["batches", "have", "rawIds", 64])
    );
    // A response whose one entry is keyed by the raw id (map-entry field 3)
    // shows that id in hex, as a hex-keyed one would be shown.
    let raw = format!("0002 0a24 1a20{} 1200", "13".repeat(32)).replace(' ', "");
    let (code, stdout, _) = run(&["decode", "--message", &raw]);
    assert_eq!(code, 0, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let entry = &v["bootstrap"]["13".repeat(32)];
    assert_eq!(entry["connectedTo"], serde_json::json!([]));
    assert_eq!(entry["dataSignature"], serde_json::Value::Null);
}

#[test]
fn a_closed_stdout_ends_decode_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_hyper-presence"))
        .args([
            "decode",
            "--message",
            "000512107b226e616d65223a22616c696365227d",
        ])
        .stdout(writer)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_gets_a_one_line_error_and_status_2() {
    for args in [
        &["decode", "zz"][..],
        &["decode", "0a05"][..],
        &["sim", "--peers", "1"][..],
        &["sim", "--drop", "2"][..],
        &["no-such-command"][..],
        &["join", "--ephemeral"][..],
        &["join", "--topic", "t", "--ephemeral", "--data", "{bad"][..],
        &["join", "--topic", "t", "--ephemeral", "--data", "5"][..],
        &["join", "--topic", "t", "--ephemeral", "--listen", "nowhere"][..],
        &["join", "--key", "abcd", "--ephemeral"][..],
        &["demo", "--peers", "1"][..],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("hyper-presence: "), "{args:?}: {stderr}");
    }
    // Asking for help is no error.
    let (code, stdout, _) = run(&["sim", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--scenario"));
}

#[test]
fn sim_reports_every_phase_correct_and_exits_0() {
    let (code, stdout, _) = run(&[
        "sim",
        "--peers",
        "30",
        "--seed",
        "4",
        "--duplicate",
        "0.1",
        "--drop",
        "0.01",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let phases: Vec<&str> = stdout.lines().filter(|l| l.ends_with("yes")).collect();
    assert_eq!(phases.len(), 4, "{stdout}");
    for phase in [
        "all join at once",
        "one peer crashes",
        "it restarts",
        "one peer leaves",
    ] {
        assert!(stdout.contains(phase), "{stdout}");
    }
    assert!(
        stdout.contains("CPU") && stdout.contains("peak memory"),
        "{stdout}"
    );
    assert!(
        stdout.contains("µs/learn") && stdout.contains("entries received per learning"),
        "{stdout}"
    );
}

#[test]
fn sim_replays_the_same_run_for_the_same_seed() {
    // Every field but those measured on the machine.
    let strip = |s: String| -> Vec<serde_json::Value> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                for measured in [
                    "wall_s",
                    "check_s",
                    "cpu_s",
                    "cpu_us_per_learning",
                    "peak_memory_bytes",
                ] {
                    o.remove(measured);
                }
                v
            })
            .collect()
    };
    let args = [
        "sim", "--peers", "25", "--seed", "9", "--drop", "0.01", "--json",
    ];
    let (_, a, _) = run(&args);
    let (_, b, _) = run(&args);
    assert_eq!(strip(a.clone()).len(), 5, "{a}");
    assert_eq!(strip(a), strip(b));
}

#[test]
fn sim_runs_a_scenario_file_as_json_rows() {
    let (code, stdout, stderr) = run(&["sim", "--scenario", "scenarios/quick.json", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, rows) = lines.split_last().unwrap();
    assert_eq!(rows.len(), 7, "{stdout}");
    for row in rows {
        assert_eq!(row["correct"], true, "{row}");
        assert!(row["agreed_after_ms"].as_f64().is_some(), "{row}");
        assert!(row["cpu_s"].as_f64().is_some(), "{row}");
        assert!(row["peak_memory_bytes"].as_u64().unwrap() > 0, "{row}");
        assert!(!row["agreement"].as_array().unwrap().is_empty(), "{row}");
    }
    assert_eq!(rows[0]["event"], "all join at once");
    // Every one of the N engines learned of the N - 1 others, each heard of
    // at least once.
    let n = rows[0]["peers"].as_u64().unwrap();
    assert_eq!(
        rows[0]["learned"].as_u64(),
        Some(n * (n - 1)),
        "{}",
        rows[0]
    );
    assert!(rows[0]["entries_per_learning"].as_f64().unwrap() >= 1.0);
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["correct"], true);
    assert!(
        summary["cpu_us_per_learning"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(summary["entries_per_learning"].as_f64().unwrap() >= 1.0);
    assert!(summary["check_s"].as_f64().is_some(), "{summary}");
    // A seed on the command line replaces the file's.
    let (code, other, _) = run(&[
        "sim",
        "--scenario",
        "scenarios/quick.json",
        "--json",
        "--seed",
        "8",
    ]);
    assert_eq!(code, 0);
    assert_ne!(other.lines().next(), stdout.lines().next());
}

#[test]
fn sim_draws_an_svg_chart() {
    let dir = std::env::temp_dir().join(format!("hp-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("agreement.svg");
    let (code, stdout, _) = run(&["sim", "--peers", "20", "--chart", svg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..100.min(text.len())]);
    assert!(text.contains("one peer crashes") && text.contains("<polyline"));
    // The same seed draws the same chart.
    let again = dir.join("again.svg");
    run(&["sim", "--peers", "20", "--chart", again.to_str().unwrap()]);
    assert_eq!(std::fs::read(&again).unwrap(), text.as_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_scenario_gets_a_one_line_error_and_status_2() {
    let dir = std::env::temp_dir().join(format!("hp-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "typo.toml",
            "peers = 5\n[[events]]\naction = \"explode\"\n",
            "explode",
        ),
        ("syntax.toml", "peers = [\n", "line"),
        (
            "range.json",
            r#"{"peers": 5, "faults": {"drop": 3}, "events": [{"action": "join-all"}]}"#,
            "drop",
        ),
        (
            "order.json",
            r#"{"peers": 5, "events": [{"action": "join-all"}, {"action": "restart"}]}"#,
            "no peer is stopped",
        ),
        ("not-json.json", "peers = 5", "line 1"),
        ("scenario.yaml", "peers: 5", ".toml or .json"),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (code, stdout, stderr) = run(&["sim", "--scenario", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {stdout}{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let (code, _, stderr) = run(&[
        "sim",
        "--scenario",
        dir.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read"), "{stderr}");
    let (code, _, _) = run(&["sim", "--scenario", "scenarios/quick.json", "--peers", "5"]);
    assert_eq!(code, 2);
    let nowhere = dir.join("no-such-dir").join("chart.svg");
    let (code, stdout, stderr) =
        run(&["sim", "--peers", "5", "--chart", nowhere.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn join_refuses_an_address_it_cannot_bind_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run(&[
        "join",
        "--no-mdns",
        "--no-dht",
        "--topic",
        "t",
        "--ephemeral",
        "--listen",
        &addr,
    ]);
    assert_eq!(code, 2);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot listen"), "{stderr}");
}

#[test]
fn demo_runs_real_peers_and_every_check_holds() {
    let (code, stdout, _) = run(&["demo", "--peers", "6", "--seed", "3"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("every check held"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" s")).count(),
        3,
        "{stdout}"
    );
}

#[test]
fn sim_prints_json_phases_on_every_topology() {
    for shape in [
        "random",
        "line",
        "ring",
        "star",
        "regular",
        "small-world",
        "scale-free",
    ] {
        let (code, stdout, _) = run(&["sim", "--peers", "24", "--shape", shape, "--json"]);
        assert_eq!(code, 0, "{shape}: {stdout}");
        let phases: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(phases.len(), 5, "{shape}");
        assert!(
            phases.iter().all(|p| p["correct"] == true),
            "{shape}: {stdout}"
        );
        assert!(phases[0]["packets"].as_u64().unwrap() > 0);
    }
}

/// `RUST_LOG` turns on logs, on stderr only: `--json` output stays one JSON
/// object per line.
#[test]
fn rust_log_writes_to_stderr_and_never_into_json_output() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let join = |connect: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-presence"));
        cmd.args(["join", "--no-mdns", "--no-dht", "--json", "--ephemeral"])
            .args(["--topic", "rust-log-test"])
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "hyper_presence=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(addr) = connect {
            cmd.args(["--connect", addr]);
        }
        cmd.spawn().expect("join starts")
    };
    let mut a = join(None);
    let mut a_lines = BufReader::new(a.stdout.take().unwrap()).lines();
    let ready: serde_json::Value = serde_json::from_str(&a_lines.next().unwrap().unwrap()).unwrap();
    let addr = ready["listen"][0].as_str().unwrap().to_owned();
    let b = join(Some(&addr));
    // Wait until a sees two peers online: the link came up and logged.
    let mut seen = vec![ready];
    for line in a_lines.by_ref() {
        let line = line.unwrap();
        let value: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line on stdout ({e}): {line}"));
        let done = value["event"] == "online" && value["peers"].as_array().unwrap().len() == 2;
        seen.push(value);
        if done {
            break;
        }
    }
    // Leaving logs the connection's end; then both exit.
    for child in [&a, &b] {
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    for line in a_lines {
        let line = line.unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(&line).is_ok(),
            "not a JSON line on stdout: {line}"
        );
    }
    let a_out = a.wait_with_output().unwrap();
    let b_out = b.wait_with_output().unwrap();
    assert!(a_out.status.success() && b_out.status.success());
    let logs = String::from_utf8_lossy(&a_out.stderr);
    assert!(
        logs.contains("connection ended"),
        "debug logs on stderr: {logs}"
    );
    assert!(seen.len() >= 2);
}

/// `sim` starts itself again with glibc's huge-page tunable, unless
/// `GLIBC_TUNABLES` is set (empty: without); its summary says which.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn sim_asks_glibc_for_huge_pages_unless_told_otherwise() {
    let huge_pages = |tunables: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-presence"));
        cmd.args(["sim", "--peers", "8", "--json"]);
        match tunables {
            Some(value) => cmd.env("GLIBC_TUNABLES", value),
            None => cmd.env_remove("GLIBC_TUNABLES"),
        };
        let out = cmd.output().expect("the binary runs");
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(summary["correct"], true, "{summary}");
        summary["huge_pages"].clone()
    };
    assert_eq!(huge_pages(None), true);
    assert_eq!(huge_pages(Some("")), false);
    assert_eq!(huge_pages(Some("glibc.malloc.hugetlb=1")), true);
}
