//! The process's Kubernetes client: one builder for every part that talks to the API (leader
//! election, self-managed certificates, the hosts API's authentication, the reconciler).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why no Kubernetes client could be made. Cheap to clone (the sources are shared), so every
/// part that needs the API can report the same reason.
#[derive(Clone, Debug, thiserror::Error)]
pub enum KubeClientError {
    /// The kubeconfig file given cannot be read or parsed.
    #[error("{path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Arc<kube::config::KubeconfigError>,
    },
    /// No configuration could be inferred (not in a cluster, no `$KUBECONFIG`, no
    /// `~/.kube/config`).
    #[error("{0}")]
    Infer(Arc<kube::config::InferConfigError>),
    /// The configuration is complete but no client can be built from it.
    #[error("{0}")]
    Client(Arc<kube::Error>),
}

/// The client, or why there is none: kept by the process and handed to each part.
pub type ClientResult = Result<kube::Client, KubeClientError>;

/// A Kubernetes client from `kubeconfig`, or inferred (in-cluster, `$KUBECONFIG`,
/// `~/.kube/config`); the error says which and why.
pub async fn client(kubeconfig: Option<&Path>) -> ClientResult {
    let config = match kubeconfig {
        Some(path) => {
            let err = |e| KubeClientError::Kubeconfig {
                path: path.to_path_buf(),
                source: Arc::new(e),
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| KubeClientError::Infer(Arc::new(e)))?,
    };
    kube::Client::try_from(config).map_err(|e| KubeClientError::Client(Arc::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_is_named() {
        let path = Path::new("/nonexistent/wasmgate/kubeconfig");
        let Err(e) = client(Some(path)).await else {
            panic!("a client from a missing file");
        };
        assert!(matches!(e, KubeClientError::Kubeconfig { .. }));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/wasmgate/kubeconfig: "),
            "{e}"
        );
    }
}
