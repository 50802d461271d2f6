//! The UI's static files, embedded in the binary and served under a content hash:
//! `/assets/<hash>/<name>`. A URL with the current hash never changes content, so it is cached for a
//! year (`immutable`); a stale hash (a page rendered by an older release) still gets the current file,
//! but uncached.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

static ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "topology.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/topology.js"),
    },
    Asset { name: "logo.svg", content_type: "image/svg+xml", bytes: include_bytes!("../../assets/logo.svg") },
    Asset {
        name: "alloy.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/alloy.svg"),
    },
    Asset { name: "otel.svg", content_type: "image/svg+xml", bytes: include_bytes!("../../assets/otel.svg") },
];

/// One hash over every asset: a release that changes any of them changes every URL, which keeps
/// pages and the files they reference consistent with each other.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in ASSETS {
        hasher.update(asset.name.as_bytes());
        hasher.update((asset.bytes.len() as u64).to_be_bytes());
        hasher.update(asset.bytes);
    }
    hex::encode(&hasher.finalize()[..6])
});

/// The URL of an embedded asset, e.g. `/assets/3f9a1c2b7d10/app.css`.
pub fn url(name: &str) -> String {
    debug_assert!(ASSETS.iter().any(|asset| asset.name == name), "unknown asset {name}");
    format!("/assets/{}/{name}", *VERSION)
}

pub async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (version, name) = path.into_inner();
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("no such asset");
    };
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "no-cache" };
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(asset.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_carry_the_content_hash() {
        let css = url("app.css");
        assert!(css.starts_with("/assets/") && css.ends_with("/app.css"));
        assert_eq!(css.split('/').nth(2).map(str::len), Some(12));
        assert_eq!(url("app.js").split('/').nth(2), css.split('/').nth(2));
    }
}
