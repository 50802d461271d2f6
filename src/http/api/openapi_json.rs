//! `GET /openapi.json`: serves the API description `openapi.rs` builds from the route table. The
//! document reaches the handler as app data (`api::configure` puts it there) because the table names
//! this handler: the builder reads the table, so the handler cannot read the builder.

use actix_web::{web, HttpResponse};

use crate::http::principal::Principal;

/// The description's JSON text, built once per process.
pub struct OpenApiJson(pub &'static str);

/// `GET /openapi.json`: the same bytes on every call.
pub(super) async fn document(_principal: Principal, document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document.0)
}
