//! What the CLI's end-to-end tests share: running the `docket` binary and reading doctor's
//! `--json` verdicts. Each test file uses only some of it. Starts no box (that is
//! `docket_tests::Daemon`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `docket` binary this package built.
pub fn docket(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(args)
        .output()
        .expect("run docket")
}

/// `docket` that must succeed: its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = docket(args);
    assert!(
        o.status.success(),
        "docket {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The arguments of `docket site init` for `dir`.
pub fn site_init<'a>(dir: &'a Path, site_id: &'a str, name: &'a str) -> [&'a str; 8] {
    [
        "site",
        "init",
        "--dir",
        s(dir),
        "--site-id",
        site_id,
        "--name",
        name,
    ]
}

/// What doctor's check `name` said, with its verdict: `"true …"` / `"false …"`.
pub fn says(v: &serde_json::Value, name: &str) -> String {
    v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == name)
        .map(|c| format!("{} {}", c["ok"], c["says"]))
        .collect()
}
