//! Document routes: uploads from a sitting's clerks (streamed, size-limited, typed by
//! content), and reading a document version back (checked against its hash, with `ETag`,
//! `Range` and its file name), by bearer token or by a short-lived link for the browser's
//! own viewer. The reader's right to read is checked on every request.

use super::App;
use super::http::{ApiError, authenticate, bearer, not_found};
use crate::documents::blobs::{BlobError, Checked};
use crate::documents::link::{self, Grant, LinkError};
use crate::documents::range::{self, Answer};
use crate::documents::sniff::Kind;
use crate::documents::{Documents, UploadError};
use crate::sitting::{self, ActorId, DocumentId, DocumentState, Role, SittingId};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// A document served as itself: nothing in it may run or load anything, except that a PDF
/// may open in the browser's own viewer.
const DOCUMENT_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
     object-src 'self'; frame-ancestors 'self'; base-uri 'none'";

pub(super) fn router() -> OpenApiRouter<Arc<App>> {
    // An upload is limited by `documents.max_upload_bytes` as it streams, not by the
    // server's small default for bodies.
    let (schemas, paths, uploads) = routes!(upload);
    OpenApiRouter::new()
        .routes((schemas, paths, uploads.layer(DefaultBodyLimit::disable())))
        .routes(routes!(download))
        .routes(routes!(make_link))
        .routes(routes!(search))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// The words, with or without diacritics.
    q: String,
    /// Only this sitting.
    sitting: Option<String>,
    /// Only this agenda item.
    item: Option<u32>,
    /// Only this media type (`application/pdf`...).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    media_type: Option<String>,
    /// Published at or after (milliseconds since 1970).
    from: Option<i64>,
    /// Published at or before.
    to: Option<i64>,
    /// At most this many hits.
    limit: Option<usize>,
}

#[derive(Serialize)]
struct SearchHit {
    #[serde(flatten)]
    hit: crate::documents::search::Hit,
    /// A later version exists.
    superseded: bool,
    /// The latest version.
    latest: u32,
}

#[derive(Serialize)]
struct SearchAnswer {
    hits: Vec<SearchHit>,
}

/// `GET /api/search?q=…`: documents of every sitting the caller may read (the public ones
/// without a token), best first, each with a snippet of its text.
#[utoipa::path(
    get,
    path = "/api/search",
    tag = "documents",
    params(SearchQuery),
    responses(
        (status = 200, description = "Hits, best first, with a snippet each; without a token, public documents only", body = Object),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
    ),
)]
async fn search(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<SearchAnswer>, ApiError> {
    let Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    let limits = app.documents().limits();
    let words = q.q.trim();
    if words.is_empty() || words.chars().count() > limits.search_query_chars {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("q must be 1 to {} characters", limits.search_query_chars),
        ));
    }
    // Anyone may search the public documents; a token shows what its roles may read.
    let actor = match bearer(&headers) {
        Some(_) => Some(authenticate(&app, bearer(&headers))?.sub),
        None => None,
    };
    let mut readers = std::collections::BTreeMap::new();
    for h in app.sittings() {
        let roles: Vec<Role> = actor
            .as_ref()
            .and_then(|a| h.roster().actor(a))
            .map(|a| a.roles.iter().copied().collect())
            .unwrap_or_default();
        readers.insert(h.id().as_str().to_owned(), (roles, h.document_access()));
    }
    let wanted = crate::documents::search::Search {
        query: words.to_owned(),
        sitting: q.sitting,
        item: q.item,
        media_type: q.media_type,
        from: q.from,
        to: q.to,
        limit: q.limit.unwrap_or(20).clamp(1, limits.search_max_hits),
    };
    let searching = app.clone();
    let found = tokio::task::spawn_blocking(move || {
        searching.search_index().search(&wanted, |sitting, doc| {
            readers.get(sitting).is_some_and(|(roles, access)| {
                access
                    .get(&DocumentId(doc))
                    .is_some_and(|a| sitting::readable(a, roles))
            })
        })
    })
    .await;
    let hits = match found {
        Ok(Ok(hits)) => hits,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "search failed");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "search is not available; try again",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "search task failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "search failed",
            ));
        }
    };
    let mut latest = std::collections::BTreeMap::new();
    for h in &hits {
        if !latest.contains_key(&h.sitting)
            && let Some(handle) = app.sitting(&SittingId::new(h.sitting.clone()))
            && let Ok(snap) = handle.snapshot().await
        {
            let versions: std::collections::BTreeMap<u32, u32> = snap
                .state
                .documents
                .iter()
                .map(|(id, d)| (id.0, d.latest()))
                .collect();
            latest.insert(h.sitting.clone(), versions);
        }
    }
    let hits = hits
        .into_iter()
        .map(|hit| {
            let newest = latest
                .get(&hit.sitting)
                .and_then(|v| v.get(&hit.document))
                .copied()
                .unwrap_or(hit.version);
            SearchHit {
                superseded: hit.version < newest,
                latest: newest,
                hit,
            }
        })
        .collect();
    Ok(axum::Json(SearchAnswer { hits }))
}

fn documents(app: &App) -> &Documents {
    app.documents()
}

#[derive(Serialize)]
struct Uploaded {
    sha256: String,
    size: u64,
    media_type: String,
}

fn upload_error(e: UploadError) -> ApiError {
    match e {
        UploadError::TooLarge { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the file is larger than the limit of {limit} bytes"),
        ),
        UploadError::Empty => ApiError::new(StatusCode::BAD_REQUEST, "empty", "the file is empty"),
        UploadError::Unsupported => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
            e.to_string(),
        ),
        UploadError::Interrupted(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "interrupted",
            "the upload broke off",
        ),
        UploadError::Spool(_) | UploadError::Blob(_) | UploadError::Store(_) => {
            tracing::error!(error = %e, "upload: storage failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the file could not be stored; try again",
            )
        }
    }
}

/// `POST /api/sittings/{id}/uploads`: the body is the file. Answers `201` with its hash,
/// size and media type, which `publish_document` and `supersede_document` then name.
#[utoipa::path(
    post,
    path = "/api/sittings/{id}/uploads",
    tag = "documents",
    params(("id" = String, Path, description = "The sitting")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses(
        (status = 201, description = "`{sha256, size, media_type}`: what `publish_document` and `supersede_document` then name", body = Object),
        (status = 400, description = "Empty or malformed", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "Only a clerk of the sitting", body = ApiError),
        (status = 404, description = "No such sitting, document or version (or not readable by the caller)", body = ApiError),
        (status = 413, description = "Larger than `documents.max_upload_bytes`", body = ApiError),
        (status = 415, description = "Not a PDF, DOCX, ODT, XLSX, text, PNG or JPEG file", body = ApiError),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn upload(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let handle = app.sitting(&SittingId::new(id)).ok_or_else(not_found)?;
    let clerk = handle
        .roster()
        .actor(&claims.sub)
        .is_some_and(|a| a.roles.contains(&Role::Clerk));
    if !clerk {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "only a clerk of the sitting may upload documents",
        ));
    }
    let docs = documents(&app);
    let limit = docs.limits().max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(upload_error(UploadError::TooLarge { limit }));
    }
    let record = docs
        .receive(body.into_data_stream().boxed(), crate::clock::now_millis())
        .await
        .map_err(upload_error)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Uploaded {
            sha256: record.sha256,
            size: record.size,
            media_type: record.media_type,
        }),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DownloadQuery {
    /// A link's token, instead of a bearer token.
    link: Option<String>,
    /// `1`: save rather than open.
    download: Option<u8>,
}

/// Who is reading, by bearer token or link; the link must be for this very version.
fn reader(
    app: &App,
    headers: &HeaderMap,
    link_token: Option<&str>,
    at: (&SittingId, u32, u32),
) -> Result<ActorId, ApiError> {
    if let Some(token) = link_token {
        let g = link::verify(app.link_key(), token, crate::clock::now_millis().0).map_err(|e| {
            let code = match e {
                LinkError::Expired => "link_expired",
                LinkError::Invalid => "invalid_link",
            };
            ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
        })?;
        if g.s != at.0.as_str() || g.d != at.1 || g.v != at.2 {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_link",
                "the link is for another document",
            ));
        }
        return Ok(ActorId::new(g.a));
    }
    Ok(authenticate(app, bearer(headers))?.sub)
}

/// The document and version asked for, if `actor` may read it. A document the reader may
/// not read is answered as missing, like one that does not exist.
async fn readable_version(
    app: &App,
    sitting: &SittingId,
    actor: &ActorId,
    doc: u32,
    version: u32,
) -> Result<(DocumentState, u32), ApiError> {
    let handle = app.sitting(sitting).ok_or_else(not_found)?;
    let roles: Vec<Role> = handle
        .roster()
        .actor(actor)
        .map(|a| a.roles.iter().copied().collect())
        .unwrap_or_default();
    let snap = handle.snapshot().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the sitting is not available; try again",
        )
    })?;
    let d = snap
        .state
        .documents
        .get(&DocumentId(doc))
        .filter(|d| sitting::readable(&d.access, &roles))
        .ok_or_else(not_found)?;
    if version == 0 || version > d.latest() {
        return Err(not_found());
    }
    Ok((d.clone(), version))
}

#[utoipa::path(
    get,
    path = "/api/sittings/{id}/documents/{doc}/versions/{version}",
    tag = "documents",
    params(("id" = String, Path, description = "The sitting"), ("doc" = u32, Path, description = "The document"), ("version" = u32, Path, description = "Its version, from 1"), DownloadQuery),
    responses(
        (status = 200, description = "The file, checked against its hash, with its name, `ETag` and `Accept-Ranges`", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 400, description = "Malformed request", body = ApiError),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 403, description = "The link is not for this version or caller, or has expired", body = ApiError),
        (status = 404, description = "No such sitting, document or version (or not readable by the caller)", body = ApiError),
        (status = 416, description = "The range is outside the file"),
        (status = 503, description = "Unavailable; try again shortly", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn download(
    State(app): State<Arc<App>>,
    Path((id, doc, version)): Path<(String, u32, u32)>,
    headers: HeaderMap,
    query: Result<Query<DownloadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text()))?;
    let sitting = SittingId::new(id);
    let actor = reader(&app, &headers, q.link.as_deref(), (&sitting, doc, version))?;
    let (d, version) = readable_version(&app, &sitting, &actor, doc, version).await?;
    let Some(v) = d.versions.get(version as usize - 1) else {
        return Err(not_found());
    };
    let etag = format!("\"{}\"", v.sha256);
    let mut out = HeaderMap::new();
    let kind = Kind::from_media_type(&v.media_type);
    let content_type = match kind {
        Some(Kind::Text) => "text/plain; charset=utf-8".to_owned(),
        _ => v.media_type.clone(),
    };
    let name = v.file_name.clone().unwrap_or_else(|| {
        let ext = kind.map_or("bin", Kind::extension);
        format!("{}.{ext}", v.title)
    });
    let inline = q.download != Some(1) && kind.is_some_and(Kind::shown_inline);
    let put = |h: &mut HeaderMap, k: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut out, header::ETAG, &etag);
    put(&mut out, header::CONTENT_TYPE, &content_type);
    put(
        &mut out,
        header::CONTENT_DISPOSITION,
        &range::disposition(&name, inline),
    );
    put(&mut out, header::ACCEPT_RANGES, "bytes");
    put(&mut out, header::CACHE_CONTROL, "private, no-cache");
    put(&mut out, header::CONTENT_SECURITY_POLICY, DOCUMENT_CSP);
    if version < d.latest() {
        put(
            &mut out,
            header::HeaderName::from_static("dienhong-superseded-by"),
            &d.latest().to_string(),
        );
    }
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let blobs = documents(&app).blobs();
    let checked = blobs.check(&v.sha256).await.map_err(|e| match e {
        BlobError::Tampered(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "blob_corrupt",
            "the stored file does not match its recorded hash; it is not served",
        ),
        BlobError::Missing(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "blob_missing",
            "the file of this document is not in the store",
        ),
        other => unreadable(&other),
    })?;
    let size = match &checked {
        Checked::InMemory(b) => b.len() as u64,
        Checked::Large { size } => *size,
    };
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|h| h.to_str().ok())
        .is_none_or(|h| h.trim() == etag);
    let wanted = if if_range_ok {
        range::answer(
            headers.get(header::RANGE).and_then(|h| h.to_str().ok()),
            size,
        )
    } else {
        Answer::Whole
    };
    let (status, part) = match wanted {
        Answer::Whole => (StatusCode::OK, 0..size),
        Answer::Part(r) => {
            put(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{size}", r.start, r.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, r)
        }
        Answer::Unsatisfiable => {
            put(&mut out, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
        }
    };
    put(
        &mut out,
        header::CONTENT_LENGTH,
        &(part.end - part.start).to_string(),
    );
    let body = match checked {
        Checked::InMemory(b) => {
            // Within the size, by construction of `part`.
            let (s, e) = (
                usize::try_from(part.start).unwrap_or(0),
                usize::try_from(part.end).unwrap_or(0),
            );
            Body::from(b.slice(s..e))
        }
        Checked::Large { .. } => {
            let stream = blobs
                .stream(&v.sha256, part)
                .await
                .map_err(|e| unreadable(&e))?;
            Body::from_stream(stream)
        }
    };
    Ok((status, out, body).into_response())
}

/// A blob store that failed while reading (logged; the caller may try again).
fn unreadable(e: &BlobError) -> ApiError {
    tracing::error!(error = %e, "download: blob store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the file could not be read; try again",
    )
}

#[derive(Serialize)]
struct Link {
    url: String,
    expires_at_ms: i64,
}

/// `POST …/versions/{version}/link`: a link that opens this version for the caller for
/// `documents.link_secs`.
#[utoipa::path(
    post,
    path = "/api/sittings/{id}/documents/{doc}/versions/{version}/link",
    tag = "documents",
    params(("id" = String, Path, description = "The sitting"), ("doc" = u32, Path, description = "The document"), ("version" = u32, Path, description = "Its version, from 1")),
    responses(
        (status = 200, description = "A link that opens this version for the caller, for `documents.link_secs`", body = Object),
        (status = 401, description = "Missing, expired or revoked token", body = ApiError),
        (status = 404, description = "No such sitting, document or version (or not readable by the caller)", body = ApiError),
    ),
    security(("bearer" = []))
)]
async fn make_link(
    State(app): State<Arc<App>>,
    Path((id, doc, version)): Path<(String, u32, u32)>,
    headers: HeaderMap,
) -> Result<axum::Json<Link>, ApiError> {
    let claims = authenticate(&app, bearer(&headers))?;
    let sitting = SittingId::new(id);
    readable_version(&app, &sitting, &claims.sub, doc, version).await?;
    let exp = crate::clock::now_millis()
        .0
        .saturating_add(app.link_millis());
    let token = link::sign(
        app.link_key(),
        &Grant {
            s: sitting.as_str().to_owned(),
            d: doc,
            v: version,
            a: claims.sub.as_str().to_owned(),
            exp,
        },
    );
    let path = format!(
        "/api/sittings/{}/documents/{doc}/versions/{version}?link={token}",
        percent_encoding::utf8_percent_encode(sitting.as_str(), percent_encoding::NON_ALPHANUMERIC)
    );
    Ok(axum::Json(Link {
        url: path,
        expires_at_ms: exp,
    }))
}
