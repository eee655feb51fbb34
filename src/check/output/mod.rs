//! Renderers of a [`CheckReport`]: compiler-style text, JSON (the report itself), SARIF 2.1.0
//! JUnit XML, and the link graph (Graphviz DOT, Mermaid).

mod graph;
mod json;
mod junit;
mod sarif;
mod text;

use clap::ValueEnum;

use super::report::CheckReport;

pub use sarif::artifact_uri;

/// `--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Compiler-style diagnostics (`file:line: error[code]: message`) and a summary line.
    #[default]
    Text,
    /// The documented JSON report (docs/check-output.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.
    Sarif,
    /// JUnit XML: one testsuite per file, one testcase per object.
    Junit,
    /// The link graph of each object as Graphviz DOT (one digraph per object): components,
    /// each import and what provides it (sibling, built-in, plugin on which hosts), failures in
    /// red. Same as `--graph dot`.
    Dot,
    /// The link graph as Mermaid flowcharts (one per object). Same as `--graph mermaid`.
    Mermaid,
}

/// Renders `report` in `format`. `exit_code` is recorded where the format has a place for it
/// (SARIF `invocations`). Only the JSON renderer can fail, if the report does not serialize.
pub fn render(
    report: &CheckReport,
    format: OutputFormat,
    exit_code: u8,
) -> Result<String, serde_json::Error> {
    Ok(match format {
        OutputFormat::Text => text::render(report),
        OutputFormat::Json => json::render(report)?,
        OutputFormat::Sarif => sarif::render(report, exit_code),
        OutputFormat::Junit => junit::render(report),
        OutputFormat::Dot => graph::dot(report),
        OutputFormat::Mermaid => graph::mermaid(report),
    })
}
