//! The link graph of each checked object: its components, each import, and what provides it (a
//! sibling component, the host's built-ins, a plugin bound through a `hostInterfaces` entry on
//! some of the eligible hosts), failures in red. As Graphviz DOT (one `digraph` per object;
//! `dot -Tsvg` renders them) or Mermaid flowcharts (one per object).

use std::fmt::Write as _;

use crate::check::report::{CheckReport, ObjectResult};
use crate::resolve::Provider;

/// Where an edge goes.
enum Target {
    Component(String),
    Builtin,
    Plugin(String, String),
    Failure(String),
}

/// (from component, import, target, failed).
fn edges(o: &ObjectResult) -> Vec<(String, String, Target, bool)> {
    o.graph
        .links
        .iter()
        .map(|l| {
            let (target, failed) = match &l.provider {
                Provider::Sibling(c) => (Target::Component(c.clone()), false),
                Provider::Builtin => (Target::Builtin, false),
                Provider::Plugin {
                    entry,
                    hosts,
                    eligible,
                    versions,
                } => {
                    let offered = if versions.is_empty() {
                        String::new()
                    } else {
                        format!("; offered: {}", versions.join(", "))
                    };
                    (
                        Target::Plugin(
                            entry.clone(),
                            format!("plugin via {entry}\non {hosts} of {eligible} hosts{offered}"),
                        ),
                        false,
                    )
                }
                Provider::Unresolved(code) => {
                    // The violation about this import says why (and how to fix it).
                    let why = o
                        .violations
                        .iter()
                        .find(|f| {
                            f.component.as_deref() == Some(l.component.as_str())
                                && f.code == code.as_str()
                        })
                        .map(|f| wrap(&f.message, 60))
                        .unwrap_or_default();
                    (
                        Target::Failure(format!("nothing provides it ({})\n{why}", code.as_str())),
                        true,
                    )
                }
            };
            (l.component.clone(), l.import.clone(), target, failed)
        })
        .collect()
}

fn title(o: &ObjectResult) -> String {
    format!(
        "{} {}/{}: {}",
        o.kind,
        o.namespace,
        o.name,
        if o.allowed { "admitted" } else { "denied" }
    )
}

/// A DOT string literal.
fn q(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

/// Graphviz DOT, one digraph per object.
pub fn dot(report: &CheckReport) -> String {
    let mut out = String::new();
    for o in &report.results {
        let _ = writeln!(
            out,
            "digraph {} {{",
            q(&format!("{}/{}/{}", o.kind, o.namespace, o.name))
        );
        let _ = writeln!(out, "  label={}; labelloc=t; rankdir=LR;", q(&title(o)));
        let _ = writeln!(
            out,
            "  node [fontname=\"Helvetica\"]; edge [fontname=\"Helvetica\", fontsize=10];"
        );
        for (name, note) in &o.graph.components {
            match note {
                None => {
                    let _ = writeln!(
                        out,
                        "  {} [shape=box, label={}];",
                        q(&format!("c:{name}")),
                        q(name)
                    );
                }
                Some(why) => {
                    let _ = writeln!(
                        out,
                        "  {} [shape=box, style=dashed, color=orange, label={}];",
                        q(&format!("c:{name}")),
                        q(&format!(
                            "{name}\n(world not known: imports unchecked)\n{}",
                            short(why)
                        ))
                    );
                }
            }
        }
        let mut failures = 0;
        for (from, import, target, failed) in edges(o) {
            let to = match &target {
                Target::Component(c) => format!("c:{c}"),
                Target::Builtin => "builtin".to_string(),
                Target::Plugin(entry, _) => format!("plugin:{entry}"),
                Target::Failure(_) => {
                    failures += 1;
                    format!("fail:{failures}")
                }
            };
            match &target {
                Target::Builtin => {
                    let _ = writeln!(
                        out,
                        "  \"builtin\" [shape=component, label=\"host built-ins (WASI)\"];"
                    );
                }
                Target::Plugin(_, label) => {
                    let _ = writeln!(out, "  {} [shape=component, label={}];", q(&to), q(label));
                }
                Target::Failure(code) => {
                    let _ = writeln!(
                        out,
                        "  {} [shape=octagon, color=red, fontcolor=red, label={}];",
                        q(&to),
                        q(code)
                    );
                }
                Target::Component(_) => {}
            }
            let style = if failed {
                ", color=red, fontcolor=red"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {} -> {} [label={}{style}];",
                q(&format!("c:{from}")),
                q(&to),
                q(&import)
            );
        }
        out.push_str("}\n");
    }
    out
}

/// Mermaid flowcharts, one per object (a `%%` comment names each).
pub fn mermaid(report: &CheckReport) -> String {
    let mut out = String::new();
    for (n, o) in report.results.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "%% {}", title(o));
        out.push_str("flowchart LR\n");
        let id = |s: &str| {
            let mut id = String::from("n_");
            id.extend(
                s.chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
            );
            id
        };
        let text = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
        for (name, note) in &o.graph.components {
            match note {
                None => {
                    let _ = writeln!(out, "  {}[\"{}\"]", id(&format!("c:{name}")), text(name));
                }
                Some(_) => {
                    let _ = writeln!(
                        out,
                        "  {}[\"{}<br/>(world not known: imports unchecked)\"]:::unknown",
                        id(&format!("c:{name}")),
                        text(name)
                    );
                }
            }
        }
        let mut failures = 0;
        for (from, import, target, failed) in edges(o) {
            let to = match &target {
                Target::Component(c) => id(&format!("c:{c}")),
                Target::Builtin => {
                    let _ = writeln!(out, "  builtin[[\"host built-ins (WASI)\"]]");
                    "builtin".to_string()
                }
                Target::Plugin(entry, label) => {
                    let node = id(&format!("plugin:{entry}"));
                    let _ = writeln!(out, "  {node}[[\"{}\"]]", text(label));
                    node
                }
                Target::Failure(code) => {
                    failures += 1;
                    let node = format!("fail_{failures}");
                    let _ = writeln!(
                        out,
                        "  {node}{{{{\"nothing provides it<br/>({code})\"}}}}:::fail"
                    );
                    node
                }
            };
            let arrow = if failed { "-.->" } else { "-->" };
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {to}",
                id(&format!("c:{from}")),
                text(&import)
            );
        }
        out.push_str("  classDef fail stroke:#d00,color:#d00\n");
        out.push_str("  classDef unknown stroke:#e90,stroke-dasharray:4\n");
    }
    out
}

/// `s` on lines of at most about `width` characters (at spaces), at most four of them.
fn wrap(s: &str, width: usize) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in s.split_whitespace() {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    if lines.len() > 4 {
        lines.truncate(4);
        lines[3].push_str(" ...");
    }
    lines.join("\n")
}

/// The first line of a long reason, cut at 80 characters.
fn short(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 80 {
        format!("{}...", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}
