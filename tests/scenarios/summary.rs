//! The host-only verdict of a `plan --json`, in the form of the hand-written
//! `tests/fixtures/hostonly/<machine>/expected` files (hardware modules,
//! protocols, top-level modules, names not found, excluded modules), so
//! that a blessed `expected.json` of a host-only scenario can be held
//! against what a person decided the machine needs.

use serde_json::Value;
use std::collections::BTreeSet;

/// Reasons that make a module top-level (asked for, not pulled in).
const TOP_LEVEL: &[&str] = &["rule", "conf", "modalias", "loaded", "requested"];
/// Reasons that make a module the machine's hardware provider.
const HARDWARE: &[&str] = &["rule", "modalias", "loaded"];

/// The five `key: values` lines of a plan, values sorted.
pub fn of_plan(plan: &Value) -> String {
    let (mut hardware, mut top) = (BTreeSet::new(), BTreeSet::new());
    for m in array(&plan["modules"]) {
        let name = text(&m["name"]);
        for r in array(&m["reasons"]) {
            let kind = text(&r["kind"]);
            if TOP_LEVEL.contains(&kind.as_str()) {
                top.insert(name.clone());
            }
            if HARDWARE.contains(&kind.as_str()) {
                hardware.insert(name.clone());
            }
        }
    }
    let protocols = array(&plan["protocols"]).iter().map(text).collect();
    let not_found = array(&plan["not_found"])
        .iter()
        .map(|n| text(&n["request"]))
        .collect();
    let excluded = array(&plan["excluded"])
        .iter()
        .map(|e| format!("{} ({}:{})", text(&e["name"]), text(&e["file"]), e["line"]))
        .collect();
    [
        ("hardware", hardware),
        ("protocols", protocols),
        ("modules", top),
        ("not_found", not_found),
        ("excluded", excluded),
    ]
    .iter()
    .map(|(k, v)| line(k, v))
    .collect()
}

/// A fixture's `expected` file without its comments.
pub fn of_fixture(expected: &str) -> String {
    expected
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

fn line(key: &str, values: &BTreeSet<String>) -> String {
    let joined: Vec<&str> = values.iter().map(String::as_str).collect();
    format!("{key}: {}", joined.join(" "))
        .trim_end()
        .to_string()
        + "\n"
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
