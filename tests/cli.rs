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
        assert!(!stderr.trim().is_empty(), "{args:?}");
    }
    let (_, _, stderr) = run(&["decode", "0a05"]);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
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
    assert_eq!(phases.len(), 3, "{stdout}");
}

#[test]
fn sim_replays_the_same_run_for_the_same_seed() {
    // Every column but wall-clock time (the two tokens before the verdict).
    let strip_wall = |s: String| -> Vec<String> {
        s.lines()
            .map(|l| {
                let mut words: Vec<&str> = l.split_whitespace().collect();
                if l.ends_with("yes") || l.ends_with("NO") {
                    let n = words.len();
                    words.drain(n - 3..n - 1);
                }
                words.join(" ")
            })
            .collect()
    };
    let (_, a, _) = run(&["sim", "--peers", "25", "--seed", "9"]);
    let (_, b, _) = run(&["sim", "--peers", "25", "--seed", "9"]);
    assert_eq!(strip_wall(a.clone()).len(), 5, "{a}");
    assert_eq!(strip_wall(a), strip_wall(b));
}

#[test]
fn join_refuses_an_address_it_cannot_bind_in_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run(&["join", "--topic", "t", "--ephemeral", "--listen", &addr]);
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
        assert_eq!(phases.len(), 3, "{shape}");
        assert!(
            phases.iter().all(|p| p["correct"] == true),
            "{shape}: {stdout}"
        );
        assert!(phases[0]["packets"].as_u64().unwrap() > 0);
    }
}
