//! Evaluate udev rules on a device the way udevd does for an "add" event,
//! keeping what matters for the initramfs: `kmod load` requests, properties
//! (ID_RDMA_*), SYSTEMD_WANTS, and the programs rules run.

use super::device::{Device, Parent};
use super::rules::{Op, RuleLine, RulesFile, Token};
use crate::kmod::config::Origin;
use crate::kmod::name::fnmatch;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Effect {
    pub origin: Origin,
    pub kind: EffectKind,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum EffectKind {
    KmodLoad(String),
    Env(String, String),
    Wants(String),
    Program(String),
}

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub env: BTreeMap<String, String>,
    pub effects: Vec<Effect>,
    /// Lines with keys this evaluator cannot decide (assumed to match).
    pub undecided: Vec<(Origin, String)>,
}

impl Outcome {
    pub fn kmod_loads(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.effects.iter().filter_map(|e| match &e.kind {
            EffectKind::KmodLoad(m) => Some((m.as_str(), &e.origin)),
            _ => None,
        })
    }
    pub fn wants(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.effects.iter().filter_map(|e| match &e.kind {
            EffectKind::Wants(m) => Some((m.as_str(), &e.origin)),
            _ => None,
        })
    }
    /// `ID_RDMA_<PROTO>=1` properties, as lower-case protocol names.
    pub fn protocols(&self) -> Vec<String> {
        self.env
            .iter()
            .filter(|(k, v)| k.starts_with("ID_RDMA_") && v.as_str() == "1")
            .map(|(k, _)| k["ID_RDMA_".len()..].to_ascii_lowercase())
            .collect()
    }
}

/// Keys that match against the device's parent chain.
fn is_parent_key(k: &str) -> bool {
    matches!(k, "KERNELS" | "SUBSYSTEMS" | "DRIVERS" | "ATTRS" | "TAGS")
}

/// Match keys whose outcome depends on things not modelled here.
fn is_undecidable_match(k: &str) -> bool {
    matches!(
        k,
        "PROGRAM" | "RESULT" | "TEST" | "SYSCTL" | "CONST" | "NAME" | "SYMLINK" | "IMPORT"
    )
}

struct State<'d> {
    dev: &'d Device,
    env: BTreeMap<String, String>,
    tags: BTreeSet<String>,
}

impl State<'_> {
    fn subst(&self, s: &str) -> String {
        let mut out = String::new();
        let mut i = 0;
        while let Some(c) = s[i..].chars().next() {
            if (c == '$' || c == '%') && i + 1 < s.len() {
                let (val, used) = self.subst_one(c, &s[i + 1..]);
                if let Some(v) = val {
                    out.push_str(&v);
                    i += 1 + used;
                    continue;
                }
            }
            out.push(c);
            i += c.len_utf8();
        }
        out
    }

    /// One `$name{arg}` / `%x{arg}` substitution: (value, bytes consumed after the sigil).
    fn subst_one(&self, sigil: char, rest: &str) -> (Option<String>, usize) {
        let long: &[(&str, char)] = &[
            ("kernel", 'k'),
            ("number", 'n'),
            ("devpath", 'p'),
            ("driver", 'd'),
            ("env", 'E'),
            ("attr", 's'),
            ("sysfs", 's'),
            ("id", 'b'),
        ];
        let (code, mut used) = if sigil == '$' {
            if let Some(stripped) = rest.strip_prefix('$') {
                let _ = stripped;
                return (Some("$".into()), 1);
            }
            match long.iter().find(|(n, _)| rest.starts_with(n)) {
                Some((n, c)) => (*c, n.len()),
                None => return (None, 0),
            }
        } else {
            match rest.chars().next() {
                Some('%') => return (Some("%".into()), 1),
                Some(c) => (c, c.len_utf8()),
                None => return (None, 0),
            }
        };
        let mut arg = None;
        if rest[used..].starts_with('{') {
            if let Some(end) = rest[used..].find('}') {
                arg = Some(rest[used + 1..used + end].to_string());
                used += end + 1;
            }
        }
        let v = match code {
            'k' => self.dev.kernel.clone(),
            'n' => self
                .dev
                .kernel
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .to_string(),
            'p' => self.dev.devpath.clone(),
            'd' => self.dev.driver.clone().unwrap_or_default(),
            'E' => arg
                .as_deref()
                .and_then(|a| self.env.get(a).cloned())
                .unwrap_or_default(),
            's' => arg
                .as_deref()
                .and_then(|a| self.dev.attrs.get(a).cloned())
                .unwrap_or_default(),
            'b' => self
                .dev
                .parents
                .first()
                .map(|p| p.kernel.clone())
                .unwrap_or_default(),
            _ => return (None, 0),
        };
        (Some(v), used)
    }

    /// udev's value match: `|`-separated fnmatch alternatives; an empty
    /// pattern matches only an empty value.
    fn value_matches(&self, pattern: &str, value: &str) -> bool {
        let pattern = self.subst(pattern);
        if pattern.is_empty() {
            return value.is_empty();
        }
        pattern.split('|').any(|alt| fnmatch(alt, value))
    }

    fn device_value(&self, t: &Token) -> Option<String> {
        Some(match t.key.as_str() {
            "ACTION" => "add".into(),
            "SUBSYSTEM" => self.dev.subsystem.clone(),
            "KERNEL" => self.dev.kernel.clone(),
            "DEVPATH" => self.dev.devpath.clone(),
            "DRIVER" => self.dev.driver.clone().unwrap_or_default(),
            "ENV" => self
                .env
                .get(t.attr.as_deref()?)
                .cloned()
                .unwrap_or_default(),
            "ATTR" => self
                .dev
                .attrs
                .get(t.attr.as_deref()?)
                .cloned()
                .unwrap_or_default(),
            "TAG" => {
                return Some(
                    if self.tags.iter().any(|x| self.value_matches(&t.value, x)) {
                        t.value.clone()
                    } else {
                        String::new()
                    },
                )
            }
            _ => return None,
        })
    }

    fn parent_matches(&self, p: &Parent, t: &Token) -> bool {
        let v = match t.key.as_str() {
            "KERNELS" => p.kernel.clone(),
            "SUBSYSTEMS" => p.subsystem.clone().unwrap_or_default(),
            "DRIVERS" => p.driver.clone().unwrap_or_default(),
            "ATTRS" => match t.attr.as_deref().and_then(|a| p.attrs.get(a)) {
                Some(v) => v.trim_end().to_string(),
                None => return t.op == Op::Nomatch,
            },
            _ => String::new(),
        };
        self.value_matches(&t.value, &v) == (t.op == Op::Match)
    }
}

/// Evaluate all rules files in order on one device.
pub fn evaluate(files: &[RulesFile], dev: &Device) -> Outcome {
    let mut st = State {
        dev,
        env: dev.properties.clone(),
        tags: BTreeSet::new(),
    };
    st.env.insert("ACTION".into(), "add".into());
    st.env.insert("SUBSYSTEM".into(), dev.subsystem.clone());
    st.env.insert("DEVPATH".into(), dev.devpath.clone());
    let mut out = Outcome::default();
    let chain: Vec<Parent> = std::iter::once(dev.as_parent())
        .chain(dev.parents.iter().cloned())
        .collect();
    for f in files {
        let mut i = 0;
        while i < f.lines.len() {
            let line = &f.lines[i];
            let origin = Origin {
                file: f.path.clone(),
                line: line.line,
            };
            match apply_line(&mut st, &chain, line, &origin, &mut out) {
                Some(label) => match f.labels.get(&label) {
                    Some(&target) if target > i => i = target,
                    _ => i += 1,
                },
                None => i += 1,
            }
        }
    }
    out.env = st.env;
    out
}

/// Returns the GOTO label when the line matched and has one.
fn apply_line(
    st: &mut State,
    chain: &[Parent],
    line: &RuleLine,
    origin: &Origin,
    out: &mut Outcome,
) -> Option<String> {
    // Match keys on the device itself.
    let mut undecided = Vec::new();
    for t in line
        .tokens
        .iter()
        .filter(|t| t.is_match() && !is_parent_key(&t.key))
    {
        if is_undecidable_match(&t.key) {
            undecided.push(t.key.clone());
            continue;
        }
        match st.device_value(t) {
            Some(v) => {
                if st.value_matches(&t.value, &v) != (t.op == Op::Match) {
                    return None;
                }
            }
            None => undecided.push(t.key.clone()),
        }
    }
    // Parent keys: all on one line must match the same device of the chain.
    let pkeys: Vec<&Token> = line
        .tokens
        .iter()
        .filter(|t| t.is_match() && is_parent_key(&t.key))
        .collect();
    if !pkeys.is_empty()
        && !chain
            .iter()
            .any(|p| pkeys.iter().all(|t| st.parent_matches(p, t)))
    {
        return None;
    }
    // PROGRAM is a match key whose program we cannot run: assume success.
    for t in line.tokens.iter().filter(|t| t.key == "PROGRAM") {
        out.effects.push(Effect {
            origin: origin.clone(),
            kind: EffectKind::Program(st.subst(&t.value)),
        });
    }
    for k in undecided.iter().filter(|k| k.as_str() != "PROGRAM") {
        out.undecided.push((origin.clone(), k.clone()));
    }
    let mut goto = None;
    for t in line.tokens.iter().filter(|t| !t.is_match()) {
        match (t.key.as_str(), t.attr.as_deref()) {
            ("ENV", Some(k)) => {
                let v = st.subst(&t.value);
                if k == "SYSTEMD_WANTS" {
                    for u in v.split_ascii_whitespace() {
                        out.effects.push(Effect {
                            origin: origin.clone(),
                            kind: EffectKind::Wants(u.to_string()),
                        });
                    }
                }
                let new = match t.op {
                    Op::Add => {
                        let old = st.env.get(k).cloned().unwrap_or_default();
                        if old.is_empty() {
                            v.clone()
                        } else {
                            format!("{old} {v}")
                        }
                    }
                    _ => v.clone(),
                };
                st.env.insert(k.to_string(), new);
                out.effects.push(Effect {
                    origin: origin.clone(),
                    kind: EffectKind::Env(k.to_string(), v),
                });
            }
            ("TAG", _) => {
                if t.op == Op::Remove {
                    st.tags.remove(&t.value);
                } else {
                    st.tags.insert(st.subst(&t.value));
                }
            }
            ("RUN", attr) => {
                let v = st.subst(&t.value);
                if attr == Some("builtin") {
                    for m in kmod_load_args(&v) {
                        out.effects.push(Effect {
                            origin: origin.clone(),
                            kind: EffectKind::KmodLoad(m),
                        });
                    }
                } else {
                    out.effects.push(Effect {
                        origin: origin.clone(),
                        kind: EffectKind::Program(v),
                    });
                }
            }
            ("IMPORT", Some("program")) => out.effects.push(Effect {
                origin: origin.clone(),
                kind: EffectKind::Program(st.subst(&t.value)),
            }),
            ("GOTO", _) => goto = Some(t.value.clone()),
            _ => {}
        }
    }
    goto
}

/// The module names of a `RUN{builtin}` value `kmod load A B ...` (quotes
/// removed); empty for any other builtin.
pub fn kmod_load_args(value: &str) -> Vec<String> {
    let mut w = value.split_ascii_whitespace();
    if w.next() == Some("kmod") && w.next() == Some("load") {
        w.map(|m| m.trim_matches('\'').to_string()).collect()
    } else {
        Vec::new()
    }
}

/// Effects of every line regardless of matches: what the rules could do on
/// some device (used for generic images).
pub fn all_effects(files: &[RulesFile]) -> Vec<Effect> {
    let mut out = Vec::new();
    for f in files {
        for line in &f.lines {
            let origin = Origin {
                file: f.path.clone(),
                line: line.line,
            };
            for t in &line.tokens {
                let kind = match (t.key.as_str(), t.attr.as_deref(), t.op) {
                    ("RUN", Some("builtin"), op) if op != Op::Match && op != Op::Nomatch => {
                        for m in kmod_load_args(&t.value) {
                            out.push(Effect {
                                origin: origin.clone(),
                                kind: EffectKind::KmodLoad(m),
                            });
                        }
                        continue;
                    }
                    ("RUN", _, op) if op != Op::Match && op != Op::Nomatch => {
                        EffectKind::Program(t.value.clone())
                    }
                    ("PROGRAM", _, _) | ("IMPORT", Some("program"), _) => {
                        EffectKind::Program(t.value.clone())
                    }
                    ("ENV", Some("SYSTEMD_WANTS"), op) if op != Op::Match && op != Op::Nomatch => {
                        for u in t.value.split_ascii_whitespace() {
                            out.push(Effect {
                                origin: origin.clone(),
                                kind: EffectKind::Wants(u.to_string()),
                            });
                        }
                        continue;
                    }
                    ("ENV", Some(k), op) if op != Op::Match && op != Op::Nomatch => {
                        EffectKind::Env(k.to_string(), t.value.clone())
                    }
                    _ => continue,
                };
                out.push(Effect {
                    origin: origin.clone(),
                    kind,
                });
            }
        }
    }
    out
}

/// Keys the evaluator knows (match or assign); others are reported with -v.
pub fn known_key(k: &str) -> bool {
    matches!(
        k,
        "ACTION"
            | "DEVPATH"
            | "KERNEL"
            | "KERNELS"
            | "SUBSYSTEM"
            | "SUBSYSTEMS"
            | "DRIVER"
            | "DRIVERS"
            | "ATTR"
            | "ATTRS"
            | "ENV"
            | "TAG"
            | "TAGS"
            | "TEST"
            | "PROGRAM"
            | "RESULT"
            | "IMPORT"
            | "RUN"
            | "GOTO"
            | "LABEL"
            | "NAME"
            | "SYMLINK"
            | "OWNER"
            | "GROUP"
            | "MODE"
            | "OPTIONS"
            | "SECLABEL"
            | "SYSCTL"
            | "CONST"
            | "WAIT_FOR"
    )
}

/// Lines with keys this tool does not evaluate, for `-v`.
pub fn not_understood(files: &[RulesFile]) -> Vec<(Origin, String)> {
    let mut out = Vec::new();
    for f in files {
        for l in &f.lines {
            for t in &l.tokens {
                if !known_key(&t.key) {
                    out.push((
                        Origin {
                            file: f.path.clone(),
                            line: l.line,
                        },
                        t.key.clone(),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> RulesFile {
        let mut w = Vec::new();
        let f = RulesFile::from_text(
            name.into(),
            name.into(),
            crate::source::Source::Host(name.into()),
            text,
            &mut w,
        );
        assert!(w.is_empty(), "{w:?}");
        f
    }

    #[test]
    fn goto_env_drivers_and_wants() {
        let desc = file(
            "75.rules",
            "ACTION==\"remove\", GOTO=\"end\"\nSUBSYSTEM!=\"infiniband\", GOTO=\"end\"\nDRIVERS==\"mlx5_core\", ENV{ID_RDMA_INFINIBAND}=\"1\"\nDRIVERS==\"hfi1\", ENV{ID_RDMA_OPA}=\"1\"\nDEVPATH==\"*/infiniband/rxe*\", ATTR{parent}==\"*\", ENV{ID_RDMA_ROCE}=\"1\"\nLABEL=\"end\"\n",
        );
        let ulp = file(
            "90.rules",
            "SUBSYSTEM!=\"infiniband\", GOTO=\"end\"\nTAG+=\"systemd\", ENV{SYSTEMD_WANTS}+=\"rdma-hw.target\"\nTAG+=\"systemd\", ENV{ID_RDMA_INFINIBAND}==\"1\", ENV{SYSTEMD_WANTS}+=\"rdma-load-modules@infiniband.service\"\nLABEL=\"end\"\n",
        );
        let dev = Device {
            subsystem: "infiniband".into(),
            kernel: "mlx5_0".into(),
            devpath:
                "/devices/pci0000:00/0000:00:02.0/0000:03:00.0/mlx5_core.rdma.0/infiniband/mlx5_0"
                    .into(),
            parents: vec![
                Parent {
                    kernel: "mlx5_core.rdma.0".into(),
                    subsystem: Some("auxiliary".into()),
                    driver: Some("mlx5_ib.rdma".into()),
                    ..Default::default()
                },
                Parent {
                    kernel: "0000:03:00.0".into(),
                    subsystem: Some("pci".into()),
                    driver: Some("mlx5_core".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let o = evaluate(&[desc.clone(), ulp.clone()], &dev);
        assert_eq!(o.protocols(), vec!["infiniband"]);
        let wants: Vec<&str> = o.wants().map(|(u, _)| u).collect();
        assert_eq!(
            wants,
            vec!["rdma-hw.target", "rdma-load-modules@infiniband.service"]
        );
        // A net device never reaches the infiniband lines.
        let net = Device {
            subsystem: "net".into(),
            kernel: "eth0".into(),
            ..Default::default()
        };
        let o = evaluate(&[desc, ulp], &net);
        assert!(o.effects.is_empty());
    }

    #[test]
    fn substitutions_survive_multibyte_text() {
        // Found by the udev_rules fuzz target: a `%` before a multi-byte
        // character, and `{...}` arguments holding multi-byte characters.
        let f = file(
            "x.rules",
            "ENV{A}=\"%\u{e9}x $env{\u{e9}} %E{\u{e9}}y $kernel\"\n",
        );
        let dev = Device {
            subsystem: "net".into(),
            kernel: "eth0".into(),
            ..Default::default()
        };
        let o = evaluate(&[f], &dev);
        assert_eq!(o.env.get("A").map(String::as_str), Some("%\u{e9}x  y eth0"));
    }

    #[test]
    fn kmod_load_from_net_driver() {
        let hw = file(
            "90-hw.rules",
            "SUBSYSTEM!=\"net\", GOTO=\"net_end\"\nENV{ID_NET_DRIVER}==\"mlx4_en\", RUN{builtin}+=\"kmod load mlx4_ib\"\nENV{ID_NET_DRIVER}==\"virtio_net|foo\", RUN{builtin}+=\"kmod load rdma_rxe\"\nLABEL=\"net_end\"\n",
        );
        let mut dev = Device {
            subsystem: "net".into(),
            kernel: "enp1s0".into(),
            ..Default::default()
        };
        dev.properties
            .insert("ID_NET_DRIVER".into(), "virtio_net".into());
        let o = evaluate(std::slice::from_ref(&hw), &dev);
        let loads: Vec<(&str, usize)> = o.kmod_loads().map(|(m, o)| (m, o.line)).collect();
        assert_eq!(loads, vec![("rdma_rxe", 3)]);
        assert_eq!(all_effects(&[hw]).len(), 2);
    }
}
