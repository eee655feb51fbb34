//! `wasmgate-image`: builds wasmgate's container image without Docker and pushes it.
//! `scripts/build-image` runs it after building the static binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use wasmgate_image::{Image, ImageSpec};

/// Builds wasmgate's container image without a container engine: the static binary, a CA bundle
/// and a non-root user in one reproducible layer.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image into an OCI image layout directory; prints its digest.
    Build {
        /// The statically linked wasmgate binary.
        #[arg(long)]
        binary: PathBuf,
        /// The OCI image layout directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The tag the layout's index gives the image.
        #[arg(long, default_value = "latest")]
        tag: String,
        /// A PEM bundle of trusted CAs to install at /etc/ssl/certs/ca-certificates.crt.
        #[arg(long)]
        ca_bundle: Option<PathBuf>,
        /// Every file's time and the image's `created`, in seconds since the epoch.
        #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
        source_date_epoch: i64,
        /// The org.opencontainers.image.version label.
        #[arg(long)]
        version_label: String,
        /// The org.opencontainers.image.revision label (the source commit).
        #[arg(long)]
        revision: Option<String>,
    },
    /// Unpack the image in an OCI image layout into a directory (its root file system).
    Unpack {
        /// The OCI image layout directory (`build --out`).
        #[arg(long)]
        layout: PathBuf,
        /// The directory to unpack into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Push the image in an OCI image layout to a registry; prints `repository@digest`.
    Push {
        /// The OCI image layout directory (`build --out`).
        #[arg(long)]
        layout: PathBuf,
        /// Where to push: `registry/repository:tag`.
        #[arg(long)]
        to: String,
        /// Reach the registry over plain HTTP (a registry on loopback in tests).
        #[arg(long)]
        insecure: bool,
        /// A PEM CA to trust for the registry, besides the system roots.
        #[arg(long)]
        registry_ca: Option<PathBuf>,
        /// Basic-auth user name.
        #[arg(long, env = "WASMGATE_IMAGE_USERNAME", requires = "password")]
        username: Option<String>,
        /// Basic-auth password.
        #[arg(long, env = "WASMGATE_IMAGE_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmgate-image: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build {
            binary,
            out,
            tag,
            ca_bundle,
            source_date_epoch,
            version_label,
            revision,
        } => {
            let image = Image::build(&ImageSpec {
                binary,
                ca_bundle,
                created: source_date_epoch,
                version: version_label,
                revision,
            })?;
            image.write_layout(&out, &tag)?;
            println!("{}", image.digest());
        }
        Command::Unpack { layout, to } => Image::read_layout(&layout)?.unpack(&to)?,
        Command::Push {
            layout,
            to,
            insecure,
            registry_ca,
            username,
            password,
        } => {
            let image = Image::read_layout(&layout)?;
            let reference: Reference = to.parse().map_err(|e| anyhow::anyhow!("--to {to}: {e}"))?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut config = ClientConfig {
                protocol: if insecure {
                    ClientProtocol::Http
                } else {
                    ClientProtocol::Https
                },
                ..ClientConfig::default()
            };
            if let Some(ca) = registry_ca {
                let data = std::fs::read(&ca)
                    .map_err(|e| anyhow::anyhow!("--registry-ca {}: {e}", ca.display()))?;
                config.extra_root_certificates = vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                }];
            }
            let client = Client::try_from(config)?;
            let auth = match (username, password) {
                (Some(user), Some(pass)) => RegistryAuth::Basic(user, pass),
                _ => RegistryAuth::Anonymous,
            };
            println!("{}", image.push(&client, &reference, &auth).await?);
        }
    }
    Ok(())
}
