//! README's configuration table and `wasmgate serve --help` agree: every flag of `serve` has an
//! environment variable named after it (`--foo-bar` -> `WASMGATE_FOO_BAR`), and README's table
//! has a row naming the flag and that variable; every flag the table names exists.
//!
//! The flags come from the real command line (clap's introspection of `wasmgate::cli::Cli`), so
//! a flag added without an environment variable or a README row fails here.

use std::collections::BTreeSet;

use clap::CommandFactory;

/// `--dev` is a switch for local use; an environment variable would let a Pod's environment turn
/// it on by accident.
const NO_ENV: &[&str] = &["dev"];

/// Variables that predate the naming rule and that deployments set (the Pod's namespace from the
/// downward API): kept, so no existing manifest breaks.
const ESTABLISHED: &[(&str, &str)] = &[
    ("service-namespace", "WASMGATE_NAMESPACE"),
    ("leader-lease-name", "WASMGATE_LEADER_LEASE"),
    // OpenTelemetry's standard variable, which collectors' docs and operators already set.
    ("otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
];

fn readme_rows() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("## Configuration")
        .expect("a Configuration section");
    readme[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `--"))
        .map(str::to_string)
        .collect()
}

/// The flags a row's first cell names (`--a`, `--b` in "`--a`, `--b` (`--alias`)").
fn row_flags(row: &str) -> Vec<String> {
    let first = row.split('|').nth(1).unwrap_or_default();
    first
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| s.strip_prefix("--"))
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_serve_flag_has_an_env_var_and_a_readme_row() {
    let cli = wasmgate::cli::Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("a serve subcommand");
    let rows = readme_rows();
    assert!(!rows.is_empty(), "no configuration rows found in README");
    let mut problems = Vec::new();
    let mut flags = BTreeSet::new();
    // `serve`'s own flags and the global ones (`--log-format`).
    let globals = cli.get_arguments().filter(|a| a.is_global_set());
    for arg in serve.get_arguments().chain(globals) {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        flags.insert(long.to_string());
        let want_env = ESTABLISHED
            .iter()
            .find(|(flag, _)| *flag == long)
            .map(|(_, env)| env.to_string())
            .unwrap_or_else(|| format!("WASMGATE_{}", long.to_uppercase().replace('-', "_")));
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        if NO_ENV.contains(&long) {
            if env.is_some() {
                problems.push(format!("--{long} should have no environment variable"));
            }
        } else if env.as_deref() != Some(want_env.as_str()) {
            problems.push(format!(
                "--{long}: environment variable {env:?}, want {want_env}"
            ));
        }
        let row = rows.iter().find(|r| row_flags(r).iter().any(|f| f == long));
        match row {
            None => problems.push(format!("--{long}: no row in README's configuration table")),
            Some(row) if !NO_ENV.contains(&long) && !row.contains(&format!("`{want_env}`")) => {
                problems.push(format!(
                    "--{long}: README's row does not name {want_env}: {row}"
                ))
            }
            Some(_) => {}
        }
    }
    let aliases: BTreeSet<String> = serve
        .get_arguments()
        .chain(cli.get_arguments())
        .flat_map(|a| a.get_visible_aliases().unwrap_or_default())
        .map(str::to_string)
        .collect();
    for row in &rows {
        for flag in row_flags(row) {
            if !flags.contains(&flag) && !aliases.contains(&flag) {
                problems.push(format!("README names --{flag}, which serve does not have"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "README and `serve --help` differ:\n{}",
        problems.join("\n")
    );
}
