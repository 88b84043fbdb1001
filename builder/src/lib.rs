//! Turns a Dockerfile and a build context into images in the layer store.
//!
//! Will hold the Dockerfile front end (parser, word expansion, typed instructions, stages), the build plan (stages,
//! content-addressed cache keys) and the executor (snapshots, RUN through an OCI runtime).
//!
//! The executor: [`context`] reads the build context (with [`dockerignore`] rules and [`glob`] source patterns) and
//! checksums COPY sources; [`snapshot`] gives each step a writable root filesystem over the parent image's layers
//! and turns what the step changed into a layer; [`copy`] does COPY/ADD into it and [`runtime`] runs RUN in it
//! through runc. [`users`] resolves USER and `--chown` in the image, [`tree`] copies trees, [`stale`] finds what
//! dead builds left behind.
//!
//! A step, as the orchestrator drives it (holding `store.writer_lock()` until the image is recorded):
//!
//! ```text
//! let snapshots = Snapshotter::new(&store)?;                  // overlay when it works here, copies otherwise
//! let runtime = Runtime::detect(&store, runtime_flag)?;       // runc, or crun where it runs a probe container
//! let mut step = snapshots.prepare(&parent_layers)?;           // LayerRef::of_image(&base) for FROM
//! // RUN:
//! let outcome = runtime.run_in_snapshot(&mut step, &run_spec, &mut |bytes| progress(bytes))?;
//! // COPY/ADD (cache key first: context.checksum(&context.select(&args)?, &excludes, owner, chmod, &mut hashes)):
//! copy::copy(&context, &args, &dest, step.rootfs(), &copy_options)?;
//! let layer = step.commit(LayerOptions::default())?;          // None: the step changed nothing
//! // layer.descriptor and layer.diff_id go into the manifest and config; layer.layers is the next parent.
//! ```

pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod glob;
pub mod runtime;
pub mod snapshot;
pub mod stale;
pub mod tree;
pub mod users;
