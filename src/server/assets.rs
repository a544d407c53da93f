//! The web client: the pages and their scripts and styles from `web-client/`, served under
//! their own paths (`/js/core.js`) and the pages by name without `.html` (`/deputy`,
//! `/chair`, `/`). Release builds carry the folder inside the binary; debug builds read it
//! from the source tree, so a page can be changed and reloaded without a rebuild.

use super::http::not_found;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web-client/"]
struct WebClient;

/// The longest path we look up; anything longer is not ours.
const MAX_PATH: usize = 128;

/// The file a request path names, if it is a plausible asset path: lowercase names of
/// letters, digits, `-`, `_` and one `.`, in at most one folder, never `..`.
fn file_for(path: &str) -> Option<String> {
    let path = path.strip_prefix('/')?;
    if path.len() > MAX_PATH {
        return None;
    }
    if path.is_empty() {
        return Some("index.html".to_owned());
    }
    let segments: Vec<&str> = path.split('/').collect();
    let ok = segments.len() <= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                })
        });
    if !ok {
        return None;
    }
    // A page is asked for by its name alone.
    if segments.len() == 1 && !path.contains('.') {
        return Some(format!("{path}.html"));
    }
    Some(path.to_owned())
}

/// Serves one file of the web client, with its hash as `ETag` (answered 304 when the
/// browser has it). Pages and scripts are revalidated on every load (`no-cache`), so a new
/// server version reaches every device at its next reload.
pub(super) async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let Some(file) = file_for(uri.path()).and_then(|name| WebClient::get(&name).map(|f| (name, f)))
    else {
        if uri.path() == "/favicon.ico" {
            // Pages name their icon; a browser that asks anyway gets nothing, not an error.
            return StatusCode::NO_CONTENT.into_response();
        }
        return not_found().into_response();
    };
    let (name, file) = file;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mime = mime_guess::from_path(&name).first_or_octet_stream();
    let content_type = match mime.type_() {
        mime_guess::mime::TEXT | mime_guess::mime::APPLICATION
            if mime.get_param("charset").is_none() =>
        {
            format!("{mime}; charset=utf-8")
        }
        _ => mime.to_string(),
    };
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::file_for;

    #[test]
    fn pages_are_named_without_their_extension_and_assets_by_their_path() {
        assert_eq!(file_for("/").as_deref(), Some("index.html"));
        assert_eq!(file_for("/deputy").as_deref(), Some("deputy.html"));
        assert_eq!(file_for("/js/core.js").as_deref(), Some("js/core.js"));
        assert_eq!(file_for("/css/app.css").as_deref(), Some("css/app.css"));
    }

    #[test]
    fn paths_that_could_leave_the_folder_or_are_not_ours_are_refused() {
        for bad in [
            "/../Cargo.toml",
            "/js/../../x",
            "/a/b/c.js",
            "/.hidden",
            "/js/.x",
            "//x",
            "/Deputy",
            "/js/%2e%2e",
            "no-slash",
        ] {
            assert_eq!(file_for(bad), None, "{bad}");
        }
        assert_eq!(file_for(&format!("/{}", "a".repeat(200))), None);
    }
}
