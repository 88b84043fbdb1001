//! `lade info`: what `docker info` tells, for a daemonless tool: the store (root, format, snapshotter, counts and
//! sizes), the OCI runtime and sandbox, where registry settings and credentials come from, and the host.

use crate::output::human_size;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    format: String,
}

pub fn run(context: &super::Context, args: Args) -> anyhow::Result<()> {
    let store = context.store()?;
    let blobs = store.list_blobs()?;
    let blob_bytes: u64 = blobs.iter().map(|d| store.blob_size(d).unwrap_or(0)).sum();
    let records = store.image_records()?;
    let tagged = records.iter().filter(|r| r.name.is_some()).count();
    let containers = store.live_leases()?.len();
    let snapshotter = builder::snapshot::Snapshotter::new(&store)
        .map(|s| format!("{:?}", s.mode()).to_lowercase())
        .unwrap_or_else(|e| format!("unavailable ({e})"));
    let runtime = builder::runtime::Runtime::detect(&store, None)
        .map(|r| r.binary().display().to_string())
        .unwrap_or_else(|e| format!("none working ({e})"));
    let (lade_config, registries) = super::remote::LadeConfig::load()?;
    let certs_dir =
        std::env::var("LADE_CERTS_DIR").unwrap_or_else(|_| "/etc/docker/certs.d".to_string());
    let credentials = registry_client::credentials::DockerConfig::default_path();
    let rootless = !rustix::process::geteuid().is_root();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let info = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "StoreRoot": store.root(),
        "StorageFormat": "OCI image layout",
        "Snapshotter": snapshotter,
        "Images": records.len(),
        "TaggedImages": tagged,
        "Blobs": blobs.len(),
        "BlobBytes": blob_bytes,
        "RunningContainers": containers,
        "OCIRuntime": runtime,
        "Rootless": rootless,
        "SeccompProfile": "Docker 20.10 default (builtin)",
        "LadeConfig": lade_config,
        "InsecureRegistries": registries.insecure_registries,
        "CertsDir": certs_dir,
        "CredentialsFile": credentials,
        "OperatingSystem": os,
        "KernelVersion": kernel,
        "Architecture": layerstore::Platform::host().architecture,
        "CPUs": cpus,
        "MemTotal": memory,
    });
    match args.format.as_str() {
        "json" => println!("{info}"),
        "table" => {
            println!("Client: lade {}", env!("CARGO_PKG_VERSION"));
            println!("Store:");
            println!(" Root:                {}", store.root().display());
            println!(" Format:              OCI image layout");
            println!(" Snapshotter:         {snapshotter}");
            println!(" Images:              {} ({tagged} tagged)", records.len());
            println!(
                " Blobs:               {} ({})",
                blobs.len(),
                human_size(blob_bytes)
            );
            println!(" Running containers:  {containers}");
            println!("Runtime:");
            println!(" OCI runtime:         {runtime}");
            println!(" Rootless:            {rootless}");
            println!(" Seccomp profile:     Docker 20.10 default (builtin)");
            println!("Registries:");
            println!(" lade config:         {}", lade_config.display());
            println!(
                " Insecure registries: loopback (127.0.0.0/8, ::1){}",
                registries
                    .insecure_registries
                    .iter()
                    .map(|r| format!(", {r}"))
                    .collect::<String>()
            );
            println!(" Certificates:        {certs_dir}/<host:port>/ca.crt");
            println!(" Credentials:         {}", credentials.display());
            println!("Host:");
            println!(" Operating System:    {os}");
            println!(" Kernel Version:      {kernel}");
            println!(
                " Architecture:        {}",
                layerstore::Platform::host().architecture
            );
            println!(" CPUs:                {cpus}");
            println!(" Total Memory:        {}", human_size(memory));
        }
        other => anyhow::bail!("unknown --format {other:?}: use table or json"),
    }
    Ok(())
}
