//! This API's OpenAPI 3.1 description, generated from the route table
//! ([`API_ROUTES`]: verb, path, access, summary) and each handler's types (`handler_types.rs`: the
//! JSON body, query and path types it extracts, and its typed reply). Nothing in it is written by hand
//! but the one-line summaries and the tag names, so a route, a field or a role rule cannot be added
//! without the description following. Served at `GET /api/v1/openapi.json` (`openapi_json.rs`) and
//! rendered for people at `/api` (`ui/api_reference.rs`).
//!
//! Invariants:
//! - Every row of [`API_ROUTES`] is exactly one operation, and there are no others.
//! - The document is built once ([`document_value`]) and is the same bytes on every call and every node:
//!   objects are written with sorted keys.
//! - It carries no secret and nothing per caller. It is served to anyone signed in, like the API's
//!   shape itself (strangers get 401 on every unknown route, so the shape is not shown to them).
//! - Request schemas describe what serde accepts, reply schemas what it writes: a handler that returns
//!   `Reply<T>` serializes `T`, the schema shown. Untyped replies (handlers building
//!   `serde_json::Value`) are shown as an object with a description, never as a guessed shape.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::handler_types::{Body, Generators, HandlerTypes};
use super::routes::{Access, ApiRoute, API_ROUTES};
use crate::error::ErrorEnvelope;
use crate::http::principal::SESSION_COOKIE;

/// The OpenAPI version the document follows (its schemas are JSON Schema 2020-12).
const OPENAPI_VERSION: &str = "3.1.0";

/// What a fleet-model write answers under `?validate_only=true`.
const VALIDATE_ONLY: &str = " With `?validate_only=true` nothing is committed: the answer is 200 \
    `{\"valid\": true, \"configs\": [...]}`, the config every affected collector would get.";

/// The handler modules' tags, in the order the reference page shows them: (module, tag, description).
pub const TAGS: &[(&str, &str, &str)] = &[
    ("auth", "Sign-in", "Sessions: sign in, sign out, who is signed in."),
    ("service_accounts", "Service accounts", "Accounts for scripts and the CLI, and their bearer tokens."),
    ("collectors", "Collectors", "The fleet's collectors, their tokens, delivered configs and events."),
    (
        "collectors_batch",
        "Batch provisioning",
        "Create many collectors, with their tokens, in one call (for imports and migrations).",
    ),
    (
        "collectors_bulk",
        "Many collectors",
        "Label, rotate the tokens of, delete or prune many collectors at once.",
    ),
    (
        "enrollment_tokens",
        "OpAMP enrollment",
        "Tokens OpenTelemetry Collectors' agents enroll with on /v1/opamp: create, list, revoke.",
    ),
    ("fleet_model", "Fleet model", "Pipelines, and each collector's sources, destinations and routes."),
    (
        "fleet_items",
        "Fleet-wide items",
        "Sources, destinations and routes attached to collectors by label selector.",
    ),
    (
        "rollouts",
        "Rollouts",
        "How changes reach the collectors they alter: progress, resume, abort, rollback.",
    ),
    ("topology", "Topology", "A collector's rendered pipeline with its throughput."),
    ("users", "Users", "People who sign in, their roles, passwords and sessions."),
    ("audit", "Audit", "Who changed what, from where, with what outcome."),
    ("stream", "Live updates", "Server-sent events the web UI keeps its views current with."),
    ("cluster", "Cluster", "Members, leadership, slots and joining nodes."),
    ("backup", "Backup", "The whole fleet and its data key, for `linkmesh restore`."),
    ("openapi_json", "API description", "This document."),
];

static DOCUMENT: OnceLock<(Value, String)> = OnceLock::new();

fn built() -> &'static (Value, String) {
    DOCUMENT.get_or_init(|| {
        let document = build_document();
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        (document, text)
    })
}

/// The description as JSON, built on first use.
pub fn document_value() -> &'static Value {
    &built().0
}

/// The description as served: pretty-printed JSON with sorted keys.
pub fn document_text() -> &'static str {
    built().1.as_str()
}

/// The module and operation id of a handler, from its type name:
/// `linkmesh::http::api::fleet_model::list_items<linkmesh::model::pipeline::Source>` is
/// (`fleet_model`, `fleet_model_list_items_source`).
pub fn handler_names(type_name: &str) -> (String, String) {
    let (function_path, generic) = match type_name.split_once('<') {
        Some((path, rest)) => (path, rest.trim_end_matches('>').rsplit("::").next()),
        None => (type_name, None),
    };
    let mut segments = function_path.rsplit("::");
    let function = segments.next().unwrap_or_default();
    let module = segments.next().unwrap_or_default().to_owned();
    let mut operation_id = format!("{module}_{function}");
    if let Some(generic) = generic {
        operation_id.push('_');
        operation_id.push_str(&generic.to_ascii_lowercase());
    }
    (module, operation_id)
}

/// The tag of a handler module (the module's own name when [`TAGS`] does not list it).
pub fn tag_of(module: &str) -> &str {
    // Modules split out of a tagged one keep its tag.
    let module = match module {
        "collectors_list" => "collectors",
        other => other,
    };
    TAGS.iter().find(|(name, _, _)| *name == module).map_or(module, |(_, tag, _)| tag)
}

/// Who may call a route, in words.
pub fn access_text(access: Access) -> String {
    match access.min_role() {
        None => "No sign-in needed.".to_owned(),
        Some(crate::model::Role::Viewer) => "Any signed-in user or service account.".to_owned(),
        Some(role) => format!("Role `{}` or above.", role.as_str()),
    }
}

fn build_document() -> Value {
    let mut generators = Generators::new();
    let mut paths = Map::new();
    let mut used_modules = Vec::new();
    for route in API_ROUTES {
        let types = route.handler_types(&mut generators);
        let (module, operation_id) = handler_names(types.name);
        if !used_modules.contains(&module) {
            used_modules.push(module.clone());
        }
        let item = paths.entry(route.full_path()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(
                route.verb.as_str().to_ascii_lowercase(),
                operation(route, &types, &module, operation_id),
            );
        }
    }
    let error_schema = generators.reply.subschema_for::<ErrorEnvelope<'static>>();
    let mut schemas = generators.request.take_definitions(true);
    for (name, schema) in generators.reply.take_definitions(true) {
        // A type read and written under one name must have one shape (checked by the tests).
        schemas.entry(name).or_insert(schema);
    }
    let tags: Vec<Value> = TAGS
        .iter()
        .filter(|(module, _, _)| used_modules.iter().any(|used| used == module))
        .map(|(_, tag, description)| json!({ "name": tag, "description": description }))
        .collect();
    let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": error_schema } } });
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "linkmesh REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Manage fleets of Grafana Alloy and OpenTelemetry Collectors. All bodies are JSON with \
                snake_case fields, times RFC 3339 UTC, ids opaque strings. Errors share one envelope \
                (`ErrorEnvelope`) with the matching HTTP status. Generated by the server from its route table \
                and its handlers' types.",
        },
        "servers": [{ "url": "/" }],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "The session cookie `POST /api/v1/auth/login` sets. Writes sent with it from a \
                        browser must come from linkmesh's own pages (Origin / Sec-Fetch-Site).",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "lmsat_…",
                    "description": "A service-account token, accepted on every route that needs a sign-in.",
                },
            },
            "responses": {
                "InvalidArgument": error("The request is malformed; `details.field` names the field at fault."),
                "Unauthenticated": error("No valid session or token."),
                "PermissionDenied": error("Signed in, but the role is below what the call needs."),
                "NotFound": error("No such resource."),
                "Error": error("Any other refusal or failure, with its code and HTTP status."),
            },
        },
    })
}

fn operation(route: &ApiRoute, types: &HandlerTypes, module: &str, operation_id: String) -> Value {
    let mut description = access_text(route.access);
    if route.is_audited() {
        description.push_str(" Recorded in the audit log.");
    }
    // Fleet-model writes read `WriteOptions`: a dry run answers the rendered outcome instead.
    let previews =
        types.query.as_ref().is_some_and(|query| query.pointer("/properties/validate_only").is_some());
    if previews {
        description.push_str(VALIDATE_ONLY);
    }
    let mut operation = Map::new();
    operation.insert("operationId".into(), json!(operation_id));
    operation.insert("summary".into(), json!(route.summary));
    operation.insert("description".into(), json!(description));
    operation.insert("tags".into(), json!([tag_of(module)]));
    operation.insert("x-linkmesh-access".into(), json!(format!("{:?}", route.access)));
    if let Some(role) = route.access.min_role() {
        operation.insert("x-linkmesh-min-role".into(), json!(role.as_str()));
    }
    let security =
        if route.access == Access::Public { json!([]) } else { json!([{ "session": [] }, { "bearer": [] }]) };
    operation.insert("security".into(), security);

    let parameters = parameters(route, types);
    let has_path_parameters = route.path.contains('{');
    let has_query = types.query.is_some();
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Value::Array(parameters));
    }
    match &types.body {
        Some(Body::Json(schema)) => {
            operation.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": schema } } }),
            );
        }
        Some(Body::Raw) => {
            operation.insert(
                "requestBody".into(),
                json!({
                    "required": true,
                    "description": "Read and checked by the handler itself.",
                    "content": { "application/json": { "schema": { "type": "object" } } },
                }),
            );
        }
        None => {}
    }

    let mut responses = Map::new();
    let (status, success) = success_response(route, types);
    responses.insert(status.to_string(), success);
    if previews && status != 200 {
        responses.insert(
            "200".into(),
            json!({
                "description": format!("Validated only.{VALIDATE_ONLY}"),
                "content": { "application/json": { "schema": { "type": "object" } } },
            }),
        );
    }
    let reference = |name: &str| json!({ "$ref": format!("#/components/responses/{name}") });
    if types.body.is_some() || has_query {
        responses.insert("400".into(), reference("InvalidArgument"));
    }
    if route.access != Access::Public {
        responses.insert("401".into(), reference("Unauthenticated"));
    }
    if route.access.min_role().is_some_and(|role| role != crate::model::Role::Viewer) {
        responses.insert("403".into(), reference("PermissionDenied"));
    }
    if has_path_parameters {
        responses.insert("404".into(), reference("NotFound"));
    }
    responses.insert("default".into(), reference("Error"));
    operation.insert("responses".into(), Value::Object(responses));
    Value::Object(operation)
}

/// Path parameters from the path's `{name}` segments, typed by the handler's `web::Path<T>` (a tuple
/// types them in order); query parameters from the handler's `web::Query<T>` fields.
fn parameters(route: &ApiRoute, types: &HandlerTypes) -> Vec<Value> {
    let mut parameters = Vec::new();
    let names = route.path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'));
    for (index, name) in names.enumerate() {
        let schema = types
            .path
            .as_ref()
            .and_then(|path| match path.get("prefixItems") {
                Some(Value::Array(items)) => items.get(index).cloned(),
                _ => Some(path.as_value().clone()),
            })
            .unwrap_or_else(|| json!({ "type": "string" }));
        parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": schema }));
    }
    if let Some(query) = &types.query {
        let required: Vec<&str> = query
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = query.get("properties") {
            for (name, schema) in properties {
                let mut schema = schema.clone();
                // `Option<T>` fields are optional parameters, not nullable ones: a query has no null.
                let description = match &mut schema {
                    Value::Object(schema) => {
                        if let Some(Value::Array(kinds)) = schema.get_mut("type") {
                            kinds.retain(|kind| kind != "null");
                            if kinds.len() == 1 {
                                let kind = kinds[0].clone();
                                schema.insert("type".into(), kind);
                            }
                        }
                        schema.remove("description")
                    }
                    _ => None,
                };
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&name.as_str()),
                    "schema": schema,
                });
                if let (Some(description), Value::Object(parameter)) = (description, &mut parameter) {
                    parameter.insert("description".into(), description);
                }
                parameters.push(parameter);
            }
        }
    }
    parameters
}

/// The success answer: the typed reply's status and schema, or the route's status with a described,
/// untyped object.
fn success_response(route: &ApiRoute, types: &HandlerTypes) -> (u16, Value) {
    match &types.reply {
        Some(reply) => {
            let content = match &reply.schema {
                Some(schema) => json!({ reply.media_type: { "schema": schema } }),
                None => json!({ reply.media_type: {} }),
            };
            (reply.status, json!({ "description": reason(reply.status), "content": content }))
        }
        None if route.success_status == 204 => (204, json!({ "description": "No content." })),
        None => (
            route.success_status,
            json!({
                "description": format!(
                    "{} The body is built by the handler and not typed in this description (the README's \
                     HTTP surface tables name its fields).",
                    reason(route.success_status)
                ),
                "content": { "application/json": { "schema": { "type": "object" } } },
            }),
        ),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK.",
        201 => "Created.",
        202 => "Accepted: the change goes on in the background.",
        204 => "No content.",
        _ => "Success.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_one_operation_and_there_are_no_others() {
        let document = build_document();
        let paths = document["paths"].as_object().expect("paths");
        let operations: usize = paths.values().map(|item| item.as_object().map_or(0, Map::len)).sum();
        assert_eq!(operations, API_ROUTES.len());
        for route in API_ROUTES {
            let operation = &paths[&route.full_path()][route.verb.as_str().to_ascii_lowercase()];
            assert_eq!(operation["summary"], route.summary, "{} {}", route.verb.as_str(), route.path);
        }
    }

    #[test]
    fn operation_ids_are_unique_and_every_module_has_a_tag() {
        let mut generators = Generators::new();
        let mut ids = std::collections::BTreeSet::new();
        for route in API_ROUTES {
            let (module, operation_id) = handler_names(route.handler_types(&mut generators).name);
            assert!(ids.insert(operation_id.clone()), "{operation_id} twice");
            assert!(TAGS.iter().any(|(_, tag, _)| *tag == tag_of(&module)), "no tag for module {module}");
        }
    }

    #[test]
    fn handler_names_come_from_the_type_name() {
        assert_eq!(
            handler_names("linkmesh::http::api::fleet_model::list_items<linkmesh::model::pipeline::Source>"),
            ("fleet_model".to_owned(), "fleet_model_list_items_source".to_owned())
        );
        assert_eq!(
            handler_names("linkmesh::http::api::auth::login"),
            ("auth".to_owned(), "auth_login".to_owned())
        );
    }

    /// A handler that takes a principal cannot serve a stranger, so its route must not be public; a
    /// typed reply's status must be the one the route's table row states.
    #[test]
    fn handler_types_agree_with_the_table() {
        let mut generators = Generators::new();
        for route in API_ROUTES {
            let types = route.handler_types(&mut generators);
            let name = format!("{} {}", route.verb.as_str(), route.path);
            assert!(!(types.takes_principal && route.access == Access::Public), "{name}");
            if let Some(reply) = &types.reply {
                assert_eq!(reply.status, route.success_status, "{name}");
            }
            let placeholders = route.path.matches('{').count();
            let typed = match types.path.as_ref().map(|path| path.get("prefixItems")) {
                None => 0,
                Some(Some(Value::Array(items))) => items.len(),
                Some(_) => 1,
            };
            assert_eq!(typed, placeholders, "{name}: path type and placeholders differ");
        }
    }

    #[test]
    fn request_and_reply_types_of_one_name_have_one_shape() {
        let mut generators = Generators::new();
        for route in API_ROUTES {
            route.handler_types(&mut generators);
        }
        let requests = generators.request.take_definitions(true);
        for (name, schema) in generators.reply.take_definitions(true) {
            if let Some(request) = requests.get(&name) {
                assert_eq!(request, &schema, "{name} differs between requests and replies");
            }
        }
    }

    #[test]
    fn the_document_is_the_same_every_time() {
        assert_eq!(build_document(), build_document());
    }
}
