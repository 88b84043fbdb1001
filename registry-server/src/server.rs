//! Running the server: state from configuration, plain HTTP or TLS (rustls with the ring provider), online garbage
//! collection, and graceful shutdown that lets in-flight requests finish within a time limit.

use std::future::Future;
use std::net::TcpListener;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{Config, Storage, UploadPurging};
use crate::gc::{self, GcOptions};
use crate::http::auth::{AuthError, Authenticator};
use crate::http::{self, metrics::Metrics, AppState, Shared};
use crate::notify::Notifier;
use crate::proxy::Mirror;
use crate::registry::Registry;
use crate::storage::fs::FsDriver;
use crate::storage::object::{ObjectDriver, SetupError};
use crate::storage::Driver;
use crate::uploads::Uploads;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The filesystem storage root could not be created.
    #[error("creating storage root {path}: {source}")]
    Root {
        /// The root directory.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The S3 storage could not be set up (invalid options, or the bucket is unreachable).
    #[error(transparent)]
    Storage(#[from] SetupError),
    /// The htpasswd file could not be loaded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The TLS certificate or key could not be loaded.
    #[error("loading TLS certificate and key: {0}")]
    Tls(#[source] std::io::Error),
    /// A notification endpoint is misconfigured.
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// The proxy's upstream client could not be set up.
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::upstream::UpstreamError),
    /// Binding or serving a listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the storage a configuration names; an S3 bucket is checked once, so that a missing bucket or refused
/// credentials stop the server at startup. Blocking: call it off the async threads.
pub fn open_storage(config: &Config) -> Result<Arc<dyn Driver>, ServeError> {
    Ok(match &config.storage {
        Storage::Filesystem => {
            std::fs::create_dir_all(&config.root).map_err(|source| ServeError::Root {
                path: config.root.display().to_string(),
                source,
            })?;
            Arc::new(FsDriver::new(&config.root))
        }
        Storage::InMemory => Arc::new(ObjectDriver::in_memory()),
        Storage::S3(options) => Arc::new(ObjectDriver::s3(options)?),
    })
}

/// Builds the shared state for a configuration. Blocking: call it off the async threads.
pub fn state(config: Config) -> Result<Shared, ServeError> {
    let registry = Arc::new(Registry::new(open_storage(&config)?));
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
        health: Arc::default(),
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
        let settle = Duration::from_secs(gc.settle_secs);
        // Shared storage may have other replicas committing: collect under the sweep lease there. A filesystem
        // root has one server, which the commit lock alone keeps apart from its collection.
        let shared = matches!(state.config.storage, Storage::S3(_));
        let result = tokio::task::spawn_blocking(move || {
            if shared {
                gc::collect_leased(&st.registry, &opts, &st.commit_lock, settle)
            } else {
                gc::collect(&st.registry, &opts, &st.commit_lock).map(Some)
            }
        })
        .await;
        match result {
            Ok(Ok(None)) => {
                tracing::info!("garbage collection skipped: another replica is collecting")
            }
            Ok(Ok(Some(report))) => tracing::info!(
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

async fn purge_uploads(state: Shared, purging: UploadPurging) {
    let mut interval = tokio::time::interval(purging.interval.max(Duration::from_secs(1)));
    loop {
        interval.tick().await;
        let (st, p) = (state.clone(), purging.clone());
        let result =
            tokio::task::spawn_blocking(move || gc::purge_uploads(&st.registry, p.age, p.dry_run))
                .await;
        match result {
            Ok(Ok(removed)) => {
                tracing::info!(removed, dry_run = purging.dry_run, "upload purge finished")
            }
            Ok(Err(err)) => tracing::error!(error = %err, "upload purge failed"),
            Err(err) => tracing::error!(error = %err, "upload purge panicked"),
        }
    }
}

/// Binds the debug address and serves `/metrics` there until `stop` turns true.
async fn serve_debug(
    state: Shared,
    addr: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| {
            ServeError::Io(std::io::Error::new(
                source.kind(),
                format!("binding the debug address {addr}: {source}"),
            ))
        })?;
    tracing::info!(%addr, "serving /metrics on the debug address");
    let app = http::debug_router(state);
    Ok(tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        });
        if let Err(err) = server.await {
            tracing::error!(error = %err, "debug listener failed");
        }
    }))
}

/// Serves the registry on `listener` until `shutdown` completes, then waits up to the configured shutdown timeout
/// for in-flight requests.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = tokio::task::spawn_blocking(move || state(config))
        .await
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
    let config = state.config.clone();
    let app = http::router(state.clone());
    let gc_task = config
        .gc
        .enabled
        .then(|| tokio::spawn(online_gc(state.clone())));
    let purge_task = config
        .upload_purging
        .clone()
        .map(|purging| tokio::spawn(purge_uploads(state.clone(), purging)));
    let grace = Duration::from_secs(config.limits.shutdown_timeout_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health = state.health.clone();
    let drain_delay = Duration::from_secs(config.health.drain_delay_secs);
    tokio::spawn(async move {
        shutdown.await;
        // Readiness fails first, so that load balancers stop sending before the listener closes.
        health.start_draining();
        if !drain_delay.is_zero() {
            tracing::info!(?drain_delay, "draining: /readyz fails, still serving");
            tokio::time::sleep(drain_delay).await;
        }
        let _ = stop_tx.send(true);
    });
    let debug_task = match config.debug.addr {
        Some(addr) => Some(serve_debug(state.clone(), addr, stop_rx.clone()).await?),
        None => None,
    };
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
    for task in gc_task.into_iter().chain(purge_task).chain(debug_task) {
        task.abort();
    }
    result
}
