//! `wasmgate check --cluster` against a real kube-apiserver (the e2e control plane of
//! `tests/support`): the hosts come from `hosts.wasmgate.dev/v1alpha1` through the kubeconfig,
//! and the results equal those of `--inventory` with the same Host objects.
//!
//! kube-apiserver serves `hosts.wasmgate.dev` here from a CRD standing in for wasmgate's
//! aggregated API: the client sees the same REST path and list shape either way.

mod support;

use std::process::Command;

use serde_json::Value;

use support::{control_plane_bin, repo_root, run_bounded, ControlPlane, COMMAND_TIMEOUT};

const HOST_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: hosts.wasmgate.dev
spec:
  group: wasmgate.dev
  scope: Cluster
  names: {plural: hosts, singular: host, kind: Host, listKind: HostList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

fn check(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
    cmd.arg("check")
        .args(args)
        .current_dir(repo_root())
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn");
    let out = run_bounded(cmd, None, COMMAND_TIMEOUT);
    let code = out.code().expect("wasmgate check exited");
    let json = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (code, json, out.stderr)
}

#[test]
fn cluster_hosts_are_the_inventory() {
    let Some(bin) = control_plane_bin() else {
        return;
    };
    let cp = ControlPlane::start(&bin);
    let kubectl = cp.kubectl();
    let inputs = ["examples/broken", "examples/workloads"];

    // Not served yet: a clear input error.
    let mut args = vec!["-o", "json", "--cluster"];
    args.extend(inputs);
    let (code, _, stderr) = check(&cp.kubeconfig, &args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not serve hosts.wasmgate.dev/v1alpha1"),
        "{stderr}"
    );

    kubectl.ok(&["apply", "-f", "-"], Some(HOST_CRD));
    kubectl.ok(
        &[
            "wait",
            "--for",
            "condition=Established",
            "crd/hosts.wasmgate.dev",
            "--timeout=60s",
        ],
        None,
    );
    kubectl.ok(&["apply", "-f", "examples/inventory.yaml"], None);
    let listed = kubectl.get_json(&["hosts"]);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(5));

    let (code, cluster, stderr) = check(&cp.kubeconfig, &args);
    assert_eq!(code, 1, "{stderr}");
    let mut file_args = vec!["-o", "json", "--inventory", "examples/inventory.yaml"];
    file_args.extend(inputs);
    let (file_code, file, _) = check(&cp.kubeconfig, &file_args);
    assert_eq!(file_code, 1);
    assert_eq!(cluster["summary"]["hosts"], 5);
    assert_eq!(cluster["summary"], file["summary"]);
    assert_eq!(
        cluster["results"], file["results"],
        "same verdicts, messages and patches"
    );
}
