//! A client for the OCI distribution API: auth, push, pull, copy between transports, progress.
