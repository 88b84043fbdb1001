//! Content discovery: tag listing and the catalog (both paginated with `n`/`last` and a `Link` header), and the
//! referrers API.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use layerstore::{media_types, Index};
use serde_json::json;

use super::{hv, parse_digest, query, Shared};
use crate::error::{ApiError, ApiResult, Code};
use crate::uploads::blocking;

/// One page of a sorted list, and whether more follows.
fn paginate(
    items: Vec<String>,
    params: &[(String, String)],
) -> ApiResult<(Vec<String>, Option<usize>)> {
    let n = match query::first(params, "n") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::new(Code::Unsupported)
                .message("the n query parameter must be a non-negative integer")
                .status(StatusCode::BAD_REQUEST)
        })?),
        None => None,
    };
    let last = query::first(params, "last").unwrap_or_default();
    let rest: Vec<String> = items
        .into_iter()
        .filter(|item| item.as_str() > last)
        .collect();
    match n {
        Some(n) if rest.len() > n => Ok((rest[..n].to_vec(), Some(n))),
        _ => Ok((rest, None)),
    }
}

fn json_response(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(link) = link {
        headers.insert(header::LINK, hv(link));
    }
    response
}

fn next_link(path: &str, page: &[String], n: Option<usize>) -> Option<String> {
    let (n, last) = (n?, page.last()?);
    Some(format!(
        "<{path}?n={n}&last={}>; rel=\"next\"",
        query::encode(last)
    ))
}

/// GET `/v2/<name>/tags/list`.
pub async fn tags(st: Shared, name: String, req: Request) -> ApiResult<Response> {
    let params = query::parse(req.uri().query());
    let registry = st.registry.clone();
    let n = name.clone();
    let tags = blocking(move || Ok(registry.tags(&n)?))
        .await?
        .ok_or_else(|| ApiError::new(Code::NameUnknown).detail(json!({ "name": name })))?;
    let (page, more) = paginate(tags, &params)?;
    let link = next_link(&format!("/v2/{name}/tags/list"), &page, more);
    Ok(json_response(json!({ "name": name, "tags": page }), link))
}

/// GET `/v2/_catalog`.
pub async fn catalog(State(st): State<Shared>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(Code::Unsupported).into_response();
    }
    let params = query::parse(req.uri().query());
    let registry = st.registry.clone();
    let result = async {
        let repositories = blocking(move || Ok(registry.repositories()?)).await?;
        let (page, more) = paginate(repositories, &params)?;
        let link = next_link("/v2/_catalog", &page, more);
        Ok::<_, ApiError>(json_response(json!({ "repositories": page }), link))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// GET `/v2/<name>/referrers/<digest>[?artifactType=]`: an OCI index of the manifests whose subject is `digest`.
pub async fn referrers(
    st: Shared,
    name: String,
    digest: String,
    req: Request,
) -> ApiResult<Response> {
    let subject = parse_digest(&digest)?;
    let params = query::parse(req.uri().query());
    let artifact_type = query::first(&params, "artifactType").map(str::to_string);
    let registry = st.registry.clone();
    let filter = artifact_type.clone();
    let found =
        blocking(move || Ok(registry.referrers(&name, &subject, filter.as_deref())?)).await?;
    let body = serde_json::to_vec(&Index::new(found)).map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_types::OCI_INDEX),
    );
    if artifact_type.is_some() {
        headers.insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().extend(headers);
    Ok(response)
}
