//! `lade version`: what `docker version` prints for the client — version, git commit, build date, compiler and
//! OS/arch (the build facts come from `build.rs`) — plus the store root this invocation uses and the OCI runtime
//! found there (lade has no server part).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(context: &super::Context, _args: Args) -> anyhow::Result<()> {
    println!("Client: lade");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" Git commit:        {}", env!("LADE_GIT_COMMIT"));
    println!(" Built:             {}", env!("LADE_BUILD_DATE"));
    println!(" Rust version:      {}", env!("LADE_RUSTC_VERSION"));
    println!(" Target:            {}", env!("LADE_TARGET"));
    println!(
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        layerstore::Platform::host().architecture
    );
    let root = crate::root::store_root(context.root.clone());
    println!(" Store root:        {}", root.display());
    let runtime = context
        .store()
        .ok()
        .and_then(|store| builder::runtime::Runtime::detect(&store, None).ok())
        .map_or_else(
            || "none working (install runc)".to_string(),
            |r| r.binary().display().to_string(),
        );
    println!(" OCI runtime:       {runtime}");
    Ok(())
}
