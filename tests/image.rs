//! The container image that `scripts/build-image` builds (crates/image), run for real: pushed to
//! a real registry (Debian's `docker-registry`), pulled back by digest with oci-client, unpacked,
//! and its binary run in a chroot of the image's root filesystem as the image's user. There is
//! no libc, no dynamic loader and no shell in there, so this proves the binary is static and the
//! image complete: `wasmgate serve` answers AdmissionReviews over TLS from inside it.
//!
//! The image layout comes from `scripts/build-image` (`.ci/run` runs it before the tests):
//! `target/image/oci-layout`, or the directory `WASMGATE_IMAGE_LAYOUT` names. Without it the test
//! fails under CI=true (or WASMGATE_E2E=require) and is skipped, loudly, otherwise. chroot needs
//! root: without it the binary is run from the unpacked file system as the current user (its
//! ELF is still checked to need no loader), and a loud line says the chroot was not used.
//!
//! Run: `scripts/build-image && cargo test --test image`.

mod common;
mod support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use oci_client::Reference;
use serde_json::{json, Value};

use common::registry::Registry;
use common::{admission_review, Server};
use support::{announce, e2e_required, repo_root, run_bounded};
use wasmgate_image::{sha256_digest, Image, BINARY_PATH, LAYER_MEDIA_TYPE, USER_ID};

/// The layout to test and whether this process may chroot; `None` (after a SKIPPED line) when
/// either is missing and the test is not required.
fn prerequisites() -> Option<PathBuf> {
    let layout = std::env::var_os("WASMGATE_IMAGE_LAYOUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/image/oci-layout"));
    let missing = if !layout.join("index.json").is_file() {
        Some(format!(
            "no image layout at {} (run scripts/build-image)",
            layout.display()
        ))
    } else {
        None
    };
    match missing {
        None => Some(layout),
        Some(why) if e2e_required() => panic!("the image test must run (CI): {why}"),
        Some(why) => {
            announce(format!("SKIPPED tests/image.rs: {why}"));
            None
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0)
}

/// The image's entrypoint with an empty environment but `HOME`, as a container runtime starts
/// it: as root, `chroot --userspec=65532:65532 ROOTFS BINARY_PATH`; otherwise the unpacked
/// binary itself.
fn in_image(rootfs: &Path) -> Command {
    let mut cmd = if is_root() {
        // By path: the child's PATH (the image's) is where Command looks.
        let mut chroot = Command::new("/usr/sbin/chroot");
        chroot
            .arg(format!("--userspec={USER_ID}:{USER_ID}"))
            .arg(rootfs)
            .arg(BINARY_PATH);
        chroot
    } else {
        Command::new(rootfs.join(&BINARY_PATH[1..]))
    };
    cmd.env_clear()
        .env("HOME", "/home/nonroot")
        .env("PATH", "/usr/local/bin")
        .env("RUST_LOG", "warn");
    cmd
}

/// `path` inside the image as the entrypoint sees it (see [`in_image`]).
fn seen_in_image(rootfs: &Path, path: &str) -> PathBuf {
    if is_root() {
        PathBuf::from(path)
    } else {
        rootfs.join(&path[1..])
    }
}

fn example(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).expect("read example");
    let mut object: Value = serde_saphyr::from_str(&text).expect("example YAML");
    object["metadata"]["namespace"] = json!("team-a");
    object
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_pulled_from_a_registry_runs_wasmgate_as_nonroot_with_nothing_else_inside() {
    let Some(layout) = prerequisites() else {
        return;
    };
    let image = Image::read_layout(&layout).expect("read the image layout");

    // Push, then pull back by digest, as a node pulls `repository@sha256:...`.
    let registry = Registry::start(None, false);
    let client = registry.client();
    let tagged: Reference = format!("{}/wasmgate/wasmgate:ci", registry.host())
        .parse()
        .expect("reference");
    let pushed = image
        .push(&client, &tagged, &registry.auth())
        .await
        .expect("push the image");
    assert_eq!(
        pushed,
        format!("{}/wasmgate/wasmgate@{}", registry.host(), image.digest())
    );
    let by_digest: Reference = pushed.parse().expect("digest reference");
    let pulled = client
        .pull(&by_digest, &registry.auth(), vec![LAYER_MEDIA_TYPE])
        .await
        .expect("pull the image back");
    assert_eq!(pulled.digest.as_deref(), Some(image.digest()));
    assert_eq!(pulled.layers.len(), 1, "one layer");

    let config: Value = serde_json::from_slice(&pulled.config.data).expect("config JSON");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["User"], format!("{USER_ID}:{USER_ID}"));
    assert_eq!(config["config"]["Entrypoint"], json!([BINARY_PATH]));
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );

    // Unpack the layer as a runtime would, and check its diff_id.
    let work = tempfile::tempdir().expect("tempdir");
    let gz = work.path().join("layer.tar.gz");
    std::fs::write(&gz, &pulled.layers[0].data).expect("write layer");
    let gunzip = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .output()
        .expect("gunzip");
    assert!(gunzip.status.success(), "gunzip: {:?}", gunzip.status);
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        sha256_digest(&gunzip.stdout),
        "the config's diff_id is the uncompressed layer's digest"
    );
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir rootfs");
    let mut untar = Command::new("tar");
    untar.arg("-xzf").arg(&gz).arg("-C").arg(&rootfs);
    if is_root() {
        untar.arg("--same-owner");
    }
    let out = run_bounded(untar, None, Duration::from_secs(60));
    assert!(out.success(), "untar: {}", out.describe());

    // Nothing but wasmgate: no shell, no libc, no loader.
    for absent in ["bin", "sbin", "lib", "lib64", "usr/lib", "usr/bin"] {
        assert!(
            !rootfs.join(absent).exists(),
            "the image has /{absent}, it should not"
        );
    }
    let binary = rootfs.join(&BINARY_PATH[1..]);
    let elf = std::fs::read(&binary).expect("read the binary");
    wasmgate_image::check_static(&binary, &elf).expect("a static binary: no loader needed");
    if !is_root() {
        announce("tests/image.rs: not root, so the binary runs outside a chroot of the image");
    }
    let version = run_bounded(
        {
            let mut c = in_image(&rootfs);
            c.arg("--version");
            c
        },
        None,
        Duration::from_secs(30),
    );
    assert!(version.success(), "--version: {}", version.describe());
    assert_eq!(
        version.stdout.trim(),
        format!("wasmgate {}", env!("CARGO_PKG_VERSION"))
    );

    // Serve from inside: TLS with generated certificates in the image's /tmp, the example
    // inventory, and two reviews, one admitted and one denied.
    std::fs::copy(
        repo_root().join("examples/inventory.yaml"),
        rootfs.join("tmp/inventory.yaml"),
    )
    .expect("copy inventory");
    let server = Server::start_program(
        in_image(&rootfs),
        &rootfs.join("tmp/certs"),
        &seen_in_image(&rootfs, "/tmp/certs"),
        &[
            "--inventory".into(),
            seen_in_image(&rootfs, "/tmp/inventory.yaml")
                .display()
                .to_string(),
            "--registry-pulls".into(),
            "false".into(),
            "--api-auth".into(),
            "none".into(),
            "--shutdown-delay".into(),
            "0s".into(),
        ],
    );
    if is_root() {
        let key = std::fs::metadata(rootfs.join("tmp/certs/tls.key")).expect("tls.key");
        assert_eq!(
            (key.uid(), key.gid()),
            (USER_ID as u32, USER_ID as u32),
            "the server runs as the image's user and wrote its key as that user"
        );
    }
    let http = server.client();
    let verdict = |object: Value| {
        let http = http.clone();
        let url = format!("{}/validate?timeout=10s", server.url);
        async move {
            let response: Value = http
                .post(url)
                .json(&admission_review(&object, false))
                .send()
                .await
                .expect("POST /validate")
                .json()
                .await
                .expect("AdmissionReview JSON");
            response["response"].clone()
        }
    };
    let good = verdict(example("examples/workloads/hello-kv.yaml")).await;
    assert_eq!(good["allowed"], true, "hello-kv: {good}");
    let broken = verdict(example("examples/broken/postgres-version.yaml")).await;
    assert_eq!(broken["allowed"], false, "postgres-version: {broken}");
    let message = broken["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("postgres"),
        "the denial names what does not link: {message}"
    );
}
