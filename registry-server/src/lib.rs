//! The OCI distribution API server behind `lade registry serve`.
//!
//! Will hold the HTTP API (axum), storage backends in CNCF Distribution's layout, auth and garbage collection.
