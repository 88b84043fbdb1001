//! Credentials through a `docker-credential-*` helper (`credsStore` and `credHelpers`), with a fake helper script
//! that keeps its secrets in a file. Alone in its test binary because it changes `PATH`.

use registry_client::credentials::{Credential, DockerConfig};

const HELPER: &str = r#"#!/bin/sh
store="$(dirname "$0")/secrets"
case "$1" in
  get) server=$(cat); line=$(grep -F "$server " "$store" 2>/dev/null | tail -1)
       if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
       set -- $line; printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$1" "$2" "$3" ;;
  store) json=$(cat)
       server=$(echo "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
       user=$(echo "$json" | sed 's/.*"Username":"\([^"]*\)".*/\1/')
       secret=$(echo "$json" | sed 's/.*"Secret":"\([^"]*\)".*/\1/')
       echo "$server $user $secret" >> "$store" ;;
  erase) server=$(cat); grep -vF "$server " "$store" > "$store.new"; mv "$store.new" "$store" ;;
esac
"#;

#[test]
fn helpers_get_store_and_erase() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-fake");
    std::fs::write(&helper, HELPER).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // This test binary runs no other test, so changing the environment races with nothing.
    std::env::set_var("PATH", path);

    let config_path = dir.path().join("config.json");
    std::fs::write(
        &config_path,
        r#"{"credsStore":"fake","credHelpers":{"other.example":"missing-helper"}}"#,
    )
    .unwrap();
    let mut config = DockerConfig::load(&config_path).unwrap();
    assert_eq!(config.get("r.example:5000").unwrap(), None);
    let credential = Credential::Basic {
        username: "u".into(),
        password: "p4ss".into(),
    };
    config.store("r.example:5000", &credential).unwrap();
    assert_eq!(config.get("r.example:5000").unwrap(), Some(credential));
    // The file records that a login happened, not the secret.
    let raw = std::fs::read_to_string(&config_path).unwrap();
    assert!(
        raw.contains("r.example:5000") && !raw.contains("p4ss"),
        "{raw}"
    );
    config
        .store("docker.io", &Credential::IdentityToken("refresh".into()))
        .unwrap();
    assert_eq!(
        config.get("docker.io").unwrap(),
        Some(Credential::IdentityToken("refresh".into()))
    );
    assert!(config.erase("r.example:5000").unwrap());
    assert_eq!(config.get("r.example:5000").unwrap(), None);
    // credHelpers wins over credsStore, and a helper that cannot run is an error naming it.
    let err = config.get("other.example").unwrap_err().to_string();
    assert!(err.contains("docker-credential-missing-helper"), "{err}");
}
