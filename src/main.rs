//! The `wasmgate` binary.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use wasmgate::cli::{Cli, Command, ServeArgs};
use wasmgate::components::{LocalFileSource, WorldResolver, WorldSource};
use wasmgate::engine::Engine;
use wasmgate::inventory::{
    load_hosts, start_live, start_live_jetstream, watch_file, InventoryLog, InventorySource,
};
use wasmgate::platform::leader::{default_identity, LeaderHandle};
use wasmgate::platform::metrics::Metrics;
use wasmgate::platform::serving::{self, TlsInputs};
use wasmgate::platform::telemetry;
use wasmgate::platform::tls::issue;
use wasmgate::policy::Policy;
use wasmgate::reconcile::ReconcileMetrics;
use wasmgate::server::metrics::{register_inventory, AdmissionMetrics};
use wasmgate::server::{self, AppState};

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = match (args.listen, args.dev) {
        (Some(a), true) if !a.ip().is_loopback() => {
            anyhow::bail!("--dev serves on loopback only; {a} is not a loopback address")
        }
        (Some(a), _) => a,
        (None, true) => "127.0.0.1:8443".parse()?,
        (None, false) => "0.0.0.0:8443".parse()?,
    };
    // Refused configurations are refused before anything below writes to the cluster: the
    // hosts API's loopback rule, and NATS credentials and certificates (a wrong path is a
    // configuration error, not something to retry forever).
    args.api.check_listen(listen.ip().is_loopback())?;
    let nats = args.live.nats()?;
    let webhook_client_ca = match &args.webhook_client_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--webhook-client-ca {}: {e}", path.display()))?;
            let ca = wasmgate::platform::tls::RequiredClientCa::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("--webhook-client-ca {}: {e}", path.display()))?;
            tracing::info!(ca = %path.display(), "the webhooks require a client certificate");
            Some(Arc::new(ca))
        }
        None => None,
    };
    // Leader election (a Lease; only the leader writes to the cluster), then the serving
    // certificate in the chosen --cert-mode, reloaded while serving.
    // One Kubernetes client (or why there is none) for every part that talks to the API:
    // leader election, self-managed certificates, the hosts API's authentication, the reconciler.
    let kube = wasmgate::platform::kube::client(args.api.kubeconfig.as_deref()).await;
    let leader = wasmgate::platform::leader::start(
        &args.leader,
        &kube,
        args.api.kubeconfig.is_some(),
        args.dev,
        &args.service_namespace,
    )?;
    let mut sans = issue::default_sans(&args.service_name, &args.service_namespace);
    sans.extend(args.cert_sans);
    let tls = serving::start(
        &args.tls,
        TlsInputs {
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            cert_dir: args.cert_dir,
            sans,
            namespace: args.service_namespace.clone(),
            client: kube.clone(),
        },
        leader.as_ref(),
    )
    .await?;

    // The live inventory: admission judges against it and the `hosts` API serves it, so both
    // always see the same hosts. It is fed by NATS heartbeats, by API writes, or by an inventory
    // file (--inventory, or --dev without --nats-url), which then owns it.
    let live = match (args.live.inventory_log, &nats) {
        (InventoryLog::Jetstream, Some(connection)) => {
            // Without leader election this is the only replica: it leads (ages hosts).
            let leading = leader
                .as_ref()
                .map(|l| l.is_leader.clone())
                .unwrap_or_else(|| LeaderHandle::always(default_identity()).is_leader);
            start_live_jetstream(
                args.live.config(),
                connection.clone(),
                args.live.stream(),
                leading,
                Duration::from_secs(1),
            )
            .await?
        }
        (InventoryLog::Jetstream, None) => {
            anyhow::bail!("--inventory-log jetstream needs --nats-url")
        }
        (InventoryLog::Memory, _) => {
            start_live(args.live.config(), nats.clone(), Duration::from_secs(1))
        }
    };
    // One registry for the process; each part registers its own series in it. The inventory
    // series are read from `live` at scrape time.
    let mut metrics = Metrics::new();
    let admission_metrics = AdmissionMetrics::register(metrics.registry());
    let reconcile_metrics = ReconcileMetrics::register(metrics.registry());
    register_inventory(
        metrics.registry(),
        live.inventory.clone(),
        live.stats.clone(),
        nats.is_some(),
    );
    wasmgate::platform::metrics::register_platform(
        metrics.registry(),
        leader.as_ref().map(|l| l.is_leader.clone()),
    );
    let metrics = Arc::new(metrics);
    let inventory_path = args
        .inventory
        .or_else(|| (args.dev && nats.is_none()).then(|| PathBuf::from("examples/inventory.yaml")));
    let inventory: Arc<dyn InventorySource> = live.inventory.clone();
    if let Some(path) = &inventory_path {
        let hosts = load_hosts(path)?;
        tracing::info!(path = %path.display(), hosts = hosts.len(), "inventory loaded; the hosts API serves it read-only");
        live.inventory
            .replace_from_file(hosts, std::time::SystemTime::now());
        watch_file(
            path.clone(),
            live.inventory.clone(),
            Duration::from_secs(args.inventory_poll_seconds.max(1)),
        );
    } else if let Some(nats) = &nats {
        tracing::info!(
            url = nats.url(),
            "admission uses the live inventory from NATS heartbeats"
        );
    } else {
        tracing::warn!(
            "no --nats-url or --inventory: admission sees only hosts written through the hosts API"
        );
    }

    let files: HashMap<String, PathBuf> =
        LocalFileSource::parse_mapping(&args.components).map_err(anyhow::Error::msg)?;
    let mut sources: Vec<Arc<dyn WorldSource>> = vec![Arc::new(LocalFileSource::new(files))];
    if let Some(oci) = args.registry.source()? {
        sources.push(Arc::new(oci));
    }
    let policy = Policy {
        unknown_world: args.unknown_world,
        allow_shared_hosts: args.allow_shared_hosts,
        require_all_eligible: args.require_all_eligible,
        pin_digests: args.registry.pin_digests,
        ..Policy::default()
    };
    let admission = Arc::new(Engine::with_memo(
        Arc::new(WorldResolver::new(sources)),
        inventory,
        Arc::new(policy),
        args.review_memo,
    ));
    let ready = Arc::new(AtomicBool::new(false));
    // The reconciler re-resolves stored objects as the inventory changes; it needs a cluster.
    let resolutions = wasmgate::store::ResolutionStore::new();
    let reconcile = args
        .reconcile
        .reconcile
        .unwrap_or(!args.dev || args.api.kubeconfig.is_some());
    if reconcile {
        match kube.clone() {
            Ok(client) => {
                // Without leader election this is the only replica: it writes.
                let leading = leader
                    .clone()
                    .unwrap_or_else(|| LeaderHandle::always(default_identity()));
                wasmgate::reconcile::spawn(
                    wasmgate::reconcile::ReconcilerParts {
                        client,
                        admission: admission.clone(),
                        store: resolutions.clone(),
                        leader: leading.is_leader.clone(),
                        identity: leading.identity.clone(),
                        metrics: Some(reconcile_metrics),
                        inventory_ready: ready.clone(),
                    },
                    &args.reconcile,
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "no Kubernetes API: the reconciler is off (workloadresolutions stays empty)")
            }
        }
    }
    let hosts_api = wasmgate::apiserver::setup(
        &args.api,
        kube.map_err(|e| e.to_string()),
        live.inventory.clone(),
        resolutions,
        listen.ip().is_loopback(),
    )
    .await?;
    let stopping = Arc::new(AtomicBool::new(false));
    let app = server::router(AppState {
        admission,
        ready: ready.clone(),
        stopping: stopping.clone(),
        metrics,
        admission_metrics,
        nats: nats.as_ref().map(|_| server::NatsReadiness {
            stats: live.stats.clone(),
            grace: args.live.config().reporting_grace(),
        }),
        webhook_client_ca,
    })
    .merge(hosts_api);
    tracing::info!(%listen, dev = args.dev, "wasmgate serving /validate and /mutate");
    // With NATS, ready once connected and every host has had time to heartbeat once.
    let warmup = nats.is_some().then_some(args.live.inventory_warmup);
    let warming = ready.clone();
    tokio::spawn(async move {
        live.warm_up(warmup).await;
        warming.store(true, Ordering::Relaxed);
    });
    // On SIGTERM the Lease is handed over at once (a successor need not wait for it to expire)
    // while in-flight requests drain.
    let releasing = leader.clone();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("stop signal received");
        if let Some(leader) = releasing {
            leader.release().await;
        }
    };
    // Polled only after the first signal was handled, so it waits for a second one.
    let hurry = shutdown_signal();
    server::serve_tls(
        listen,
        tls.config,
        app,
        &args.listener,
        stopping,
        shutdown,
        hurry,
    )
    .await?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let otlp = match &cli.command {
        Command::Serve(args) => args.telemetry.otlp_endpoint.as_deref(),
        _ => None,
    };
    let telemetry = match telemetry::init(cli.log_format, otlp) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wasmgate: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Check(args) => return wasmgate::check::main(args),
        Command::Crds => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = wasmgate::crd::crd_documents()
                .into_iter()
                .try_for_each(|(_, yaml)| writeln!(out, "---\n{yaml}"));
            match written {
                // `wasmgate crds | head` closes the pipe early: not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(serve(args))),
        Command::SimHosts(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(wasmgate::sim::run(args))
                    .map_err(anyhow::Error::from)
            })
            .map(|summary| {
                eprintln!(
                    "published {} heartbeats in {:.1}s",
                    summary.published,
                    summary.elapsed.as_secs_f64()
                )
            }),
    };
    // The runtime is gone: flush the spans still buffered.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
