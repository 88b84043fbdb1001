//! Running the server: state from configuration, plain HTTP or TLS (rustls with the ring provider), online garbage
//! collection, and graceful shutdown that lets in-flight requests finish within a time limit.

use std::future::Future;
use std::net::TcpListener;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Config;
use crate::gc::{self, GcOptions};
use crate::http::auth::{AuthError, Authenticator};
use crate::http::{self, metrics::Metrics, AppState, Shared};
use crate::notify::Notifier;
use crate::proxy::Mirror;
use crate::registry::Registry;
use crate::storage::fs::FsDriver;
use crate::uploads::Uploads;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("creating storage root {path}: {source}")]
    Root {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("loading TLS certificate and key: {0}")]
    Tls(#[source] std::io::Error),
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::upstream::UpstreamError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the shared state for a configuration.
pub fn state(config: Config) -> Result<Shared, ServeError> {
    std::fs::create_dir_all(&config.root).map_err(|source| ServeError::Root {
        path: config.root.display().to_string(),
        source,
    })?;
    let registry = Arc::new(Registry::new(Arc::new(FsDriver::new(&config.root))));
    let commit_lock = Arc::new(RwLock::new(()));
    let uploads = Arc::new(Uploads::new(
        registry.clone(),
        config.limits.blob_max_bytes,
        commit_lock.clone(),
    ));
    let admission = config
        .limits
        .max_concurrent_requests
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
    let auth = config
        .auth
        .as_ref()
        .map(Authenticator::load)
        .transpose()?
        .map(Arc::new);
    let mirror = config
        .proxy
        .as_ref()
        .map(|proxy| {
            Mirror::new(
                proxy,
                registry.clone(),
                commit_lock.clone(),
                config.limits.manifest_max_bytes,
            )
        })
        .transpose()?
        .map(Arc::new);
    if let Some(mirror) = &mirror {
        tracing::info!(remote = mirror.remote(), "serving as a pull-through mirror");
    }
    let notifier = config
        .notifications
        .as_ref()
        .filter(|n| n.endpoints.iter().any(|e| !e.disabled))
        .map(|n| Notifier::start(n, config.addr.port()))
        .transpose()?
        .map(Arc::new);
    Ok(Arc::new(AppState {
        registry,
        uploads,
        config: Arc::new(config),
        auth,
        metrics: Arc::new(Metrics::default()),
        commit_lock,
        admission,
        mirror,
        notifier,
    }))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn online_gc(state: Shared) {
    let gc = state.config.gc.clone();
    let options = GcOptions {
        dry_run: false,
        delete_untagged: gc.delete_untagged,
        grace_period: Duration::from_secs(gc.grace_period_secs),
        upload_max_age: Duration::from_secs(gc.upload_max_age_secs),
    };
    let mut interval = tokio::time::interval(Duration::from_secs(gc.interval_secs.max(1)));
    interval.tick().await;
    loop {
        interval.tick().await;
        let (st, opts) = (state.clone(), options.clone());
        let result =
            tokio::task::spawn_blocking(move || gc::collect(&st.registry, &opts, &st.commit_lock))
                .await;
        match result {
            Ok(Ok(report)) => tracing::info!(
                blobs_removed = report.blobs_removed.len(),
                bytes_freed = report.bytes_freed,
                manifests_removed = report.manifests_removed.len(),
                uploads_removed = report.uploads_removed,
                "garbage collection finished"
            ),
            Ok(Err(err)) => tracing::error!(error = %err, "garbage collection failed"),
            Err(err) => tracing::error!(error = %err, "garbage collection panicked"),
        }
    }
}

/// Serves the registry on `listener` until `shutdown` completes, then waits up to the configured shutdown timeout
/// for in-flight requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = state(config)?;
    let config = state.config.clone();
    let app = http::router(state.clone());
    let gc_task = config
        .gc
        .enabled
        .then(|| tokio::spawn(online_gc(state.clone())));
    let grace = Duration::from_secs(config.limits.shutdown_timeout_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    listener.set_nonblocking(true)?;
    let mut deadline_rx = stop_rx.clone();
    let deadline = async move {
        let _ = deadline_rx.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    let result = match &config.tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut rx = stop_rx;
            let server = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            });
            tokio::select! {
                result = std::future::IntoFuture::into_future(server) => result.map_err(ServeError::Io),
                _ = deadline => {
                    tracing::warn!("shutdown timeout reached; dropping remaining connections");
                    Ok(())
                }
            }
        }
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls_config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                    .await
                    .map_err(ServeError::Tls)?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            let mut rx = stop_rx;
            tokio::spawn(async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
                stopper.graceful_shutdown(Some(grace));
            });
            axum_server::from_tcp_rustls(listener, rustls_config)
                .handle(handle)
                .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
                .map_err(ServeError::Io)
        }
    };
    if let Some(task) = gc_task {
        task.abort();
    }
    result
}
