//! wasmgate's container image, built without a container engine.
//!
//! The image is one layer on an empty base: the statically linked `wasmgate` binary, the CA
//! bundle it verifies registries and NATS with, `/etc/passwd` and `/etc/group` naming the non-root
//! user it runs as (65532, as the manifests' `runAsUser`), and a world-writable `/tmp`. No shell,
//! no package manager, no libc: the binary must be static (checked, [`check_static`]).
//!
//! The build is reproducible: every file in the layer has the same owner, the same time
//! (`SOURCE_DATE_EPOCH`, [`ImageSpec::created`]) and a fixed order, and gzip writes no name or
//! time, so the same binary always gives the same digest.
//!
//! [`Image::write_layout`] writes an OCI image layout (for `skopeo copy oci:DIR ...`,
//! `podman load`, or any registry tool) and [`Image::push`] pushes to a registry with oci-client;
//! [`Image::read_layout`] reads a layout back, checking every digest.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image configuration.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The media type of the image's one layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The media type of an OCI image index (a layout's `index.json`).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Where the binary is in the image; the image's entrypoint.
pub const BINARY_PATH: &str = "/usr/local/bin/wasmgate";
/// Where the CA bundle is in the image (Debian's path, which rustls-native-certs reads).
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The user and group the image runs as: distroless' `nonroot`, the manifests' `runAsUser`.
pub const USER_ID: u64 = 65532;

/// What can go wrong building, reading or pushing the image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a static executable: {reason} (build it with RUSTFLAGS='-C target-feature=+crt-static' and an explicit --target, as scripts/build-image does)")]
    NotStatic { path: PathBuf, reason: String },
    #[error("SOURCE_DATE_EPOCH {0} is not a valid time")]
    BadTime(i64),
    #[error("OCI layout {dir}: {reason}")]
    Layout { dir: PathBuf, reason: String },
    #[error("OCI layout {dir}: blob {digest} has digest {actual}")]
    DigestMismatch {
        dir: PathBuf,
        digest: String,
        actual: String,
    },
    #[error("push to {reference}: {source}")]
    Push {
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
}

type Result<T, E = ImageError> = std::result::Result<T, E>;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The statically linked `wasmgate` binary.
    pub binary: PathBuf,
    /// A PEM bundle of trusted CAs, installed at [`CA_BUNDLE_PATH`]; none means the image trusts
    /// only what `--registry-ca` and the NATS flags give it.
    pub ca_bundle: Option<PathBuf>,
    /// Seconds since the epoch: every file's time and the config's `created`
    /// (`SOURCE_DATE_EPOCH`).
    pub created: i64,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision` (the source commit), when known.
    pub revision: Option<String>,
}

/// A content-addressed blob: its bytes, media type and `sha256:` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// The blob's OCI descriptor.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A built image: its manifest, config and layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
}

/// Checks that `elf` is an x86-64/aarch64 ELF executable with no program interpreter: it runs in
/// an image with no libc and no dynamic loader.
pub fn check_static(path: &Path, elf: &[u8]) -> Result<()> {
    let not_static = |reason: String| ImageError::NotStatic {
        path: path.to_path_buf(),
        reason,
    };
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err(not_static("not an ELF file".into()));
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err(not_static("not a 64-bit little-endian ELF file".into()));
    }
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(header) = elf.get(at..at + 16) else {
            return Err(not_static("truncated program headers".into()));
        };
        let p_type = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if p_type == PT_INTERP {
            let offset = u64::from_le_bytes(header[8..16].try_into().unwrap_or([0; 8])) as usize;
            let interp = elf
                .get(offset..)
                .and_then(|s| s.split(|b| *b == 0).next())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(not_static(format!(
                "it is dynamically linked (interpreter {interp})"
            )));
        }
    }
    Ok(())
}

/// One entry of the layer.
struct Entry<'a> {
    path: &'a str,
    mode: u32,
    owner: u64,
    content: Option<&'a [u8]>,
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";
// Static glibc reads this for getaddrinfo: the files, then DNS (resolv.conf, which Kubernetes
// mounts).
const NSSWITCH: &str = "hosts: files dns\n";

impl Image {
    /// Builds the image from `spec`.
    pub fn build(spec: &ImageSpec) -> Result<Image> {
        let binary = std::fs::read(&spec.binary).map_err(io_error(&spec.binary))?;
        check_static(&spec.binary, &binary)?;
        let ca_bundle = match &spec.ca_bundle {
            Some(path) => Some(std::fs::read(path).map_err(io_error(path))?),
            None => None,
        };
        let created = time::OffsetDateTime::from_unix_timestamp(spec.created)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .ok_or(ImageError::BadTime(spec.created))?;

        let dir = |path| Entry {
            path,
            mode: 0o755,
            owner: 0,
            content: None,
        };
        let file = |path, mode, content| Entry {
            path,
            mode,
            owner: 0,
            content: Some(content),
        };
        let mut entries = vec![
            dir("etc/"),
            file("etc/group", 0o644, GROUP.as_bytes()),
            file("etc/nsswitch.conf", 0o644, NSSWITCH.as_bytes()),
            file("etc/passwd", 0o644, PASSWD.as_bytes()),
        ];
        if let Some(ca) = &ca_bundle {
            entries.extend([
                dir("etc/ssl/"),
                dir("etc/ssl/certs/"),
                file(&CA_BUNDLE_PATH[1..], 0o644, ca),
            ]);
        }
        entries.extend([
            dir("home/"),
            Entry {
                path: "home/nonroot/",
                mode: 0o700,
                owner: USER_ID,
                content: None,
            },
            Entry {
                path: "tmp/",
                mode: 0o1777,
                owner: 0,
                content: None,
            },
            dir("usr/"),
            dir("usr/local/"),
            dir("usr/local/bin/"),
            file(&BINARY_PATH[1..], 0o755, &binary),
        ]);
        let tar = layer_tar(&entries, spec.created)?;
        let diff_id = sha256_digest(&tar);
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::best());
        let layer = gz
            .write_all(&tar)
            .and_then(|()| gz.finish())
            .map_err(io_error(Path::new("layer.tar.gz")))?;
        let layer = Blob::new(LAYER_MEDIA_TYPE, layer);

        let mut labels = json!({
            "org.opencontainers.image.title": "wasmgate",
            "org.opencontainers.image.description": "WIT-aware admission control and live host inventory for wasmCloud v2 on Kubernetes",
            "org.opencontainers.image.licenses": "Apache-2.0",
            "org.opencontainers.image.version": spec.version,
            "org.opencontainers.image.created": created,
        });
        if let Some(revision) = &spec.revision {
            labels["org.opencontainers.image.revision"] = json!(revision);
        }
        let mut env = vec!["PATH=/usr/local/bin".to_string()];
        if ca_bundle.is_some() {
            env.push(format!("SSL_CERT_FILE={CA_BUNDLE_PATH}"));
        }
        let config = json!({
            "created": created,
            "architecture": go_arch(),
            "os": "linux",
            "config": {
                "User": format!("{USER_ID}:{USER_ID}"),
                "Entrypoint": [BINARY_PATH],
                "Env": env,
                "WorkingDir": "/home/nonroot",
                "Labels": labels,
            },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
            "history": [{ "created": created, "created_by": "wasmgate-image build" }],
        });
        let config = Blob::new(CONFIG_MEDIA_TYPE, to_vec(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
            "annotations": labels,
        });
        Ok(Image {
            manifest: Blob::new(MANIFEST_MEDIA_TYPE, to_vec(&manifest)),
            config,
            layers: vec![layer],
        })
    }

    /// The manifest's digest: what `repo@sha256:...` pulls.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Writes the image as an OCI image layout in `dir` (created if missing; blobs already
    /// there are kept), its index naming it `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io_error(&blobs))?;
        for blob in self.blobs() {
            let path = blobs.join(hex_of(&blob.digest));
            write_atomically(&path, &blob.bytes)?;
        }
        let mut descriptor = self.manifest.descriptor();
        descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        descriptor["platform"] = json!({ "architecture": go_arch(), "os": "linux" });
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [descriptor],
        });
        write_atomically(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        write_atomically(&dir.join("index.json"), &to_vec(&index))
    }

    /// Reads the first image of the OCI layout in `dir`, checking every blob's digest.
    pub fn read_layout(dir: &Path) -> Result<Image> {
        let bad = |reason: String| ImageError::Layout {
            dir: dir.to_path_buf(),
            reason,
        };
        let read_json = |path: &Path| -> Result<Value> {
            let bytes = std::fs::read(path).map_err(io_error(path))?;
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))
        };
        let read_blob = |descriptor: &Value| -> Result<Blob> {
            let (Some(digest), Some(media_type)) = (
                descriptor["digest"].as_str(),
                descriptor["mediaType"].as_str(),
            ) else {
                return Err(bad(format!(
                    "descriptor without digest or mediaType: {descriptor}"
                )));
            };
            let path = dir.join("blobs/sha256").join(hex_of(digest));
            let blob = Blob::new(media_type, std::fs::read(&path).map_err(io_error(&path))?);
            if blob.digest != digest {
                return Err(ImageError::DigestMismatch {
                    dir: dir.to_path_buf(),
                    digest: digest.to_string(),
                    actual: blob.digest,
                });
            }
            Ok(blob)
        };
        let index = read_json(&dir.join("index.json"))?;
        let first = index["manifests"]
            .get(0)
            .ok_or_else(|| bad("index.json lists no manifest".into()))?;
        let manifest = read_blob(first)?;
        let parsed: Value = serde_json::from_slice(&manifest.bytes)
            .map_err(|e| bad(format!("manifest {}: {e}", manifest.digest)))?;
        let config = read_blob(&parsed["config"])?;
        let layers = parsed["layers"]
            .as_array()
            .ok_or_else(|| bad(format!("manifest {} has no layers", manifest.digest)))?
            .iter()
            .map(read_blob)
            .collect::<Result<Vec<_>>>()?;
        Ok(Image {
            manifest,
            config,
            layers,
        })
    }

    /// Unpacks the image's layers into `rootfs` (created if missing), keeping modes, and owners
    /// when run as root: the image's file system, for a `COPY` into a `FROM scratch` stage.
    pub fn unpack(&self, rootfs: &Path) -> Result<()> {
        std::fs::create_dir_all(rootfs).map_err(io_error(rootfs))?;
        for layer in &self.layers {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer.bytes[..]));
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.unpack(rootfs).map_err(io_error(rootfs))?;
        }
        Ok(())
    }

    /// Pushes the image to `reference` (its blobs, then the manifest, byte for byte, so the
    /// registry's digest is [`Image::digest`]); returns `repository@digest`.
    pub async fn push(
        &self,
        client: &Client,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<String> {
        let failed = |source| ImageError::Push {
            reference: reference.whole(),
            source,
        };
        client
            .store_auth_if_needed(reference.resolve_registry(), auth)
            .await;
        for blob in self.layers.iter().chain([&self.config]) {
            if !client
                .blob_exists(reference, &blob.digest)
                .await
                .map_err(failed)?
            {
                client
                    .push_blob(reference, blob.bytes.clone(), &blob.digest)
                    .await
                    .map_err(failed)?;
            }
        }
        client
            .push_manifest_raw(
                reference,
                self.manifest.bytes.clone(),
                http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(failed)?;
        Ok(format!(
            "{}/{}@{}",
            reference.registry(),
            reference.repository(),
            self.digest()
        ))
    }

    fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain([&self.config, &self.manifest])
    }
}

/// The layer as an uncompressed tar, entries in the given order, every time `mtime`.
fn layer_tar(entries: &[Entry<'_>], mtime: i64) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mtime = u64::try_from(mtime).map_err(|_| ImageError::BadTime(mtime))?;
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mtime(mtime);
        let data = entry.content.unwrap_or_default();
        header.set_size(data.len() as u64);
        header.set_entry_type(if entry.content.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        tar.append_data(&mut header, entry.path, data)
            .map_err(|e| ImageError::Io {
                path: PathBuf::from(entry.path),
                source: e,
            })?;
    }
    tar.into_inner().map_err(io_error(Path::new("layer.tar")))
}

fn to_vec(value: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail (its keys are strings).
    serde_json::to_vec(value).unwrap_or_default()
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The OCI (Go) name of this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_static_elf() -> Vec<u8> {
        // A minimal ELF64 header with one PT_LOAD program header and no PT_INTERP.
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        elf
    }

    fn spec(dir: &Path, elf: &[u8]) -> ImageSpec {
        let binary = dir.join("wasmgate");
        std::fs::write(&binary, elf).unwrap();
        ImageSpec {
            binary,
            ca_bundle: None,
            created: 0,
            version: "0.1.0".into(),
            revision: Some("abc".into()),
        }
    }

    #[test]
    fn a_dynamically_linked_binary_is_refused_naming_its_interpreter() {
        let mut elf = fake_static_elf();
        elf[64..68].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let offset = elf.len() as u64;
        elf[64 + 8..64 + 16].copy_from_slice(&offset.to_le_bytes());
        elf.extend_from_slice(interp);
        let err = check_static(Path::new("wasmgate"), &elf).unwrap_err();
        assert!(
            err.to_string()
                .contains("interpreter /lib64/ld-linux-x86-64.so.2"),
            "{err}"
        );
        let err = check_static(Path::new("x"), b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(err.to_string().contains("not an ELF file"), "{err}");
    }

    #[test]
    fn the_same_inputs_give_the_same_digest_and_a_layout_reads_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(dir.path(), &fake_static_elf());
        let first = Image::build(&spec).unwrap();
        let second = Image::build(&spec).unwrap();
        assert_eq!(first.digest(), second.digest());
        let later = Image::build(&ImageSpec {
            created: 1_700_000_000,
            ..spec.clone()
        })
        .unwrap();
        assert_ne!(
            first.digest(),
            later.digest(),
            "the time is part of the image"
        );

        let layout = dir.path().join("layout");
        first.write_layout(&layout, "0.1.0").unwrap();
        assert_eq!(Image::read_layout(&layout).unwrap(), first);
        let rootfs = dir.path().join("rootfs");
        first.unpack(&rootfs).unwrap();
        assert_eq!(
            std::fs::read(rootfs.join(&BINARY_PATH[1..])).unwrap(),
            fake_static_elf()
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
            PASSWD
        );

        // A corrupted blob is named.
        let layer = layout
            .join("blobs/sha256")
            .join(hex_of(&first.layers[0].digest));
        std::fs::write(&layer, b"not the layer").unwrap();
        let err = Image::read_layout(&layout).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn the_config_runs_the_binary_as_nonroot() {
        let dir = tempfile::tempdir().unwrap();
        let image = Image::build(&spec(dir.path(), &fake_static_elf())).unwrap();
        let config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"], json!([BINARY_PATH]));
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");
        assert_eq!(
            config["rootfs"]["diff_ids"][0].as_str().map(|s| s.len()),
            Some(71)
        );
        let manifest: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(manifest["layers"][0]["size"], image.layers[0].bytes.len());
    }
}
