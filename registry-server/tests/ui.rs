//! The web page over HTTP: what each page shows, escaping of hostile stored text, authentication as the API's,
//! and switching the page off.

mod common;
mod ui_content;

use common::{client, config, header, TestServer};
use registry_server::config::AuthConfig;
use reqwest::StatusCode;
use ui_content::{populate, HOSTILE_ANNOTATION, HOSTILE_LABEL, SBOM_TYPE};

fn page(server: &TestServer, path: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let response = client().get(server.url(path)).send().unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().unwrap(), headers)
}

#[test]
fn pages_show_repositories_tags_and_images() {
    let server = TestServer::start();
    let content = populate(&server);
    let host = server.base.trim_start_matches("http://");

    let (status, body, headers) = page(&server, "/");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    for name in ["library/web", "multi/app", "tools/builder", "tools/linter"] {
        assert!(
            body.contains(&format!(">{name}</a>")),
            "{name} missing: {body}"
        );
    }
    let (_, searched, _) = page(&server, "/ui?q=TOOLS");
    assert!(searched.contains(">tools/builder</a>") && searched.contains(">tools/linter</a>"));
    assert!(!searched.contains(">library/web</a>"));
    let (_, none, _) = page(&server, "/ui?q=%3Cnothing%3E");
    assert!(
        none.contains("No repository matches “&lt;nothing&gt;”"),
        "{none}"
    );

    let (status, repo, _) = page(&server, "/ui/repo?name=library%2Fweb");
    assert_eq!(status, StatusCode::OK);
    assert!(repo.contains(">1.0</a>") && repo.contains(">latest</a>"));
    assert!(repo.contains(&content.web_digest.to_string()));
    assert!(repo.contains(&format!("title=\"{} bytes\"", content.web_size)));
    assert!(repo.contains("linux/amd64") && repo.contains("2026-11-30 12:34:56 UTC"));
    assert!(repo.contains(&format!("docker pull {host}/library/web:latest")));

    let (_, multi, _) = page(&server, "/ui/repo?name=multi%2Fapp");
    assert!(multi.contains("linux/amd64, linux/arm64/v8"), "{multi}");

    let (status, image, _) = page(&server, "/ui/image?name=library%2Fweb&ref=1.0");
    assert_eq!(status, StatusCode::OK);
    assert!(image.contains(&format!("docker pull {host}/library/web:1.0")));
    assert!(
        image.contains("<code>[&quot;/bin/web&quot;]</code>"),
        "entrypoint: {image}"
    );
    assert!(image.contains("<code>[&quot;--port&quot;,&quot;8080&quot;]</code>"));
    assert!(image.contains("GREETING=&lt;b&gt;hello&lt;/b&gt;"));
    assert!(image.contains("org.opencontainers.image.title"));
    assert!(image.contains("COPY web /bin/web # buildkit"));
    assert!(image.contains("title=\"250000 bytes\""), "layer size");
    assert!(image.contains(&content.sbom_digest.to_string()) && image.contains(SBOM_TYPE));

    let (_, sbom, _) = page(
        &server,
        &format!("/ui/image?name=library%2Fweb&ref={}", content.sbom_digest),
    );
    assert!(sbom.contains("An artifact") && sbom.contains(&content.web_digest.to_string()));

    let (_, index, _) = page(
        &server,
        &format!("/ui/image?name=multi%2Fapp&ref={}", content.index_digest),
    );
    assert!(index.contains("linux/arm64/v8") && index.contains("id=\"manifests\""));
    assert!(index.contains(&format!(
        "docker pull {host}/multi/app@{}",
        content.index_digest
    )));

    let (status, _, _) = page(&server, "/ui/repo?name=no%2Fsuch");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = page(&server, "/ui/image?name=library%2Fweb&ref=nope");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, bad, _) = page(&server, "/ui/repo?name=..%2Fetc");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("not a valid repository name"));
}

#[test]
fn stored_text_is_escaped_everywhere() {
    let server = TestServer::start();
    let content = populate(&server);
    let (_, image, _) = page(&server, "/ui/image?name=library%2Fweb&ref=latest");
    let (_, sbom, _) = page(
        &server,
        &format!("/ui/image?name=library%2Fweb&ref={}", content.sbom_digest),
    );
    for body in [&image, &sbom] {
        assert!(!body.contains(HOSTILE_LABEL) && !body.contains("<script>alert"));
        assert!(!body.contains(HOSTILE_ANNOTATION) && !body.contains("<img"));
        assert!(!body.contains("<b>hello"));
        // The page's own script is the only one.
        assert_eq!(body.matches("<script>").count(), 1);
    }
    assert!(image.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert!(image.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(image.contains("&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt;"));
    // A Host header is attacker-controlled too.
    let response = client()
        .get(server.url("/ui/repo?name=library%2Fweb"))
        .header("host", "evil\"><script>x</script>")
        .send()
        .unwrap();
    let body = response.text().unwrap();
    assert!(body
        .contains("docker pull evil&quot;&gt;&lt;script&gt;x&lt;/script&gt;/library/web:latest"));
}

#[test]
fn the_page_asks_for_credentials_as_the_api_does() {
    let tmp = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(tmp.path().join("htpasswd"), format!("alice:{hash}\n")).unwrap();
    let mut cfg = config(&tmp.path().join("root"));
    cfg.auth = Some(AuthConfig {
        htpasswd: tmp.path().join("htpasswd"),
        realm: "ui realm".into(),
        anonymous_read: false,
    });
    let server = TestServer::with_config(cfg);
    for path in ["/", "/ui", "/ui/repo?name=a", "/ui/image?name=a&ref=b"] {
        let response = client().get(server.url(path)).send().unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            header(&response, "www-authenticate"),
            "Basic realm=\"ui realm\""
        );
        let wrong = client()
            .get(server.url(path))
            .basic_auth("alice", Some("nope"))
            .send()
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let ok = client()
        .get(server.url("/ui"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().unwrap().contains("holds no repository yet"));
}

#[test]
fn the_page_can_be_switched_off() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.ui = false;
    let server = TestServer::with_config(cfg);
    for path in ["/", "/ui", "/ui/repo?name=a"] {
        let response = client().get(server.url(path)).send().unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        client().get(server.url("/v2/")).send().unwrap().status(),
        StatusCode::OK
    );
}
