//! The REST API's one route table, [`API_ROUTES`]: method, path, who may call it, and its handler.
//!
//! `api::configure` builds the router from this table and nothing else, and puts each route's access
//! check in front of its handler, before the body or the path is read: a stranger gets 401 and a role
//! below the route's minimum 403 whatever else is wrong with the request. (Handlers keep their own role
//! checks as a second line.) The tests read the same table: the unauthenticated sweep and the role
//! matrix in `tests/bad_input.rs`, and the check that the router serves every route with its methods.
//!
//! A new route is one line here, in the group of its resource. Paths are relative to [`API_PREFIX`]
//! and must not change once published (`design/api-contract.md`).

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage as _};

use super::fleet_items;
use super::fleet_model;
use super::rollouts;
// The collector items' handlers are generic over the kind of item: `list::<Source>` and so on.
use super::fleet_model::{
    create_item as create, delete_item as delete, get_item as get, list_items as list,
    replace_item as replace,
};
use super::handler_types::{Generators, HandlerTypes};
use super::{
    audit, auth, backup, cluster, collectors, collectors_batch, collectors_bulk, collectors_list,
    enrollment_tokens, openapi_json, service_accounts, stream, topology, users,
};
use crate::error::ApiError;
use crate::http::principal::{authenticate, Principal};
use crate::model::pipeline::{Destination, Route, Source};
use crate::model::Role;

/// Where the REST API is mounted.
pub const API_PREFIX: &str = "/api/v1";

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// Every verb, in the order an `Allow` header lists them.
    pub const ALL: [Verb; 5] = [Verb::Get, Verb::Post, Verb::Put, Verb::Patch, Verb::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    fn method(self) -> actix_web::http::Method {
        use actix_web::http::Method;
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// Who may call a route. Roles are ordered: viewer < pipeline engineer < operator < admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials (sign-in itself).
    Public,
    /// Any signed-in user or service account, whatever its role.
    Authenticated,
    /// Tenant-wide pipelines: pipeline engineers and up.
    ManagePipelines,
    /// Collectors and what is theirs (tokens, sources, destinations, routes): operators and up.
    ManageCollectors,
    /// Users and service accounts: admins.
    ManageAccess,
    /// Cluster administration (join tokens, membership): admins.
    ManageCluster,
}

impl Access {
    /// The least privileged role that may call the route; `None` when no sign-in is needed.
    pub fn min_role(self) -> Option<Role> {
        match self {
            Access::Public => None,
            Access::Authenticated => Some(Role::Viewer),
            Access::ManagePipelines => Some(Role::PipelineEngineer),
            Access::ManageCollectors => Some(Role::Operator),
            Access::ManageAccess | Access::ManageCluster => Some(Role::Admin),
        }
    }

    /// 403 (with the same message the handlers give) when `principal`'s role is below the minimum.
    pub fn check(self, principal: &Principal) -> Result<(), ApiError> {
        match self {
            Access::Public | Access::Authenticated => Ok(()),
            Access::ManagePipelines => principal.require_pipeline_admin(),
            Access::ManageCollectors => principal.require_collector_admin(),
            Access::ManageAccess => principal.require_access_admin(),
            Access::ManageCluster => principal.require_cluster_admin(),
        }
    }
}

/// One method on one path.
pub struct ApiRoute {
    pub verb: Verb,
    /// Relative to [`API_PREFIX`], with `{name}` path parameters.
    pub path: &'static str,
    pub access: Access,
    /// One line for the API description and reference page: what the call does.
    pub summary: &'static str,
    /// The success status when the handler's reply is untyped (a typed [`Reply`] states its own):
    /// 201 for `POST`, 204 for `DELETE`, 200 otherwise, unless [`ApiRoute::status`] says different.
    ///
    /// [`Reply`]: super::handler_types::Reply
    pub success_status: u16,
    /// Attaches the handler (`|route| route.to(handler)`).
    handler: fn(actix_web::Route) -> actix_web::Route,
    /// The same handler's body, parameters and reply type, for `openapi.rs`.
    describe: fn(&mut Generators) -> HandlerTypes,
    /// A read that is audited like a write: it hands out secrets (the backup's data key).
    audited_read: bool,
}

impl ApiRoute {
    const fn new(
        verb: Verb,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: fn(actix_web::Route) -> actix_web::Route,
        describe: fn(&mut Generators) -> HandlerTypes,
    ) -> Self {
        let success_status = match verb {
            Verb::Post => 201,
            Verb::Delete => 204,
            Verb::Get | Verb::Put | Verb::Patch => 200,
        };
        ApiRoute { verb, path, access, summary, success_status, handler, describe, audited_read: false }
    }

    /// Audits this `GET` like a write (who read it, from where, with what outcome).
    const fn audited(self) -> Self {
        ApiRoute { audited_read: true, ..self }
    }

    /// An untyped reply's success status, when it is not the verb's usual one.
    const fn status(self, success_status: u16) -> Self {
        ApiRoute { success_status, ..self }
    }

    /// The handler's request and reply types (see `handler_types.rs`).
    pub fn handler_types(&self, generators: &mut Generators) -> HandlerTypes {
        (self.describe)(generators)
    }

    /// Whether calls of this route get an audit record: every authenticated write, and reads marked
    /// [`ApiRoute::audited`].
    pub fn is_audited(&self) -> bool {
        self.access != Access::Public && (self.verb != Verb::Get || self.audited_read)
    }

    /// The path as served, with [`API_PREFIX`].
    pub fn full_path(&self) -> String {
        format!("{API_PREFIX}{}", self.path)
    }

    /// The actix route: the method guard, the handler, and the access check in front of both; in
    /// front of all of them, for every authenticated write, its audit record (`http/audit.rs`), so
    /// refusals by the access check are recorded too.
    pub(super) fn build(&self) -> actix_web::Route {
        let route = (self.handler)(web::method(self.verb.method()));
        match self.access {
            Access::Public => route,
            access => {
                let route = route.wrap(from_fn(move |request, next| require(access, request, next)));
                if !self.is_audited() {
                    route
                } else if self.verb == Verb::Get {
                    route.wrap(from_fn(crate::http::audit::record_request))
                } else {
                    route.wrap(from_fn(crate::http::audit::record_writes))
                }
            }
        }
    }
}

/// Authenticates and checks the role before anything else of the request is read; the principal is
/// left in the request for the handler's extractor. A refusal is answered here as a response (not
/// returned as an error), so the app's middleware still sees it — the default `no-store`/`nosniff`
/// headers among them.
async fn require(
    access: Access,
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let principal = match authenticate(request.request()).and_then(|principal| {
        access.check(&principal)?;
        Ok(principal)
    }) {
        Ok(principal) => principal,
        Err(refusal) => return Ok(request.error_response(refusal)),
    };
    request.extensions_mut().insert(principal);
    next.call(request).await
}

use Access::{Authenticated, ManageAccess, ManageCluster, ManageCollectors, ManagePipelines, Public};
use Verb::{Delete, Get, Patch, Post, Put};

/// One row of [`API_ROUTES`]: the handler is named once and serves both the router and the API
/// description.
macro_rules! route {
    ($verb:expr, $path:literal, $access:expr, $handler:expr, $summary:literal) => {
        ApiRoute::new(
            $verb,
            $path,
            $access,
            $summary,
            |route| route.to($handler),
            |generators| HandlerTypes::of(&$handler, generators),
        )
    };
}

/// Every route of the REST API. `api::configure` registers them in this order, one resource per path.
// One line per route, so the table reads as a table.
#[rustfmt::skip]
pub static API_ROUTES: &[ApiRoute] = &[
    // Sign-in (`auth.rs`).
    route!(Post, "/auth/login", Public, auth::login, "Sign in with a username and password; sets the session cookie").status(200),
    route!(Post, "/auth/logout", Authenticated, auth::logout, "Sign out: ends this session").status(204),
    route!(Get, "/auth/me", Authenticated, auth::me, "Who the caller is, and their role"),
    route!(Get, "/auth/sessions", Authenticated, auth::list_sessions, "The caller's sessions (an admin's: everyone's, or one user's)"),
    route!(Delete, "/auth/sessions/{id}", Authenticated, auth::delete_session, "End a session"),
    // Service accounts and their tokens (`service_accounts.rs`).
    route!(Get, "/service-accounts", ManageAccess, service_accounts::list, "List service accounts"),
    route!(Post, "/service-accounts", ManageAccess, service_accounts::create, "Create a service account"),
    route!(Delete, "/service-accounts/{id}", ManageAccess, service_accounts::delete, "Delete a service account and refuse all its tokens"),
    route!(Get, "/service-accounts/{id}/tokens", ManageAccess, service_accounts::list_tokens, "List a service account's tokens (never the tokens themselves)"),
    route!(Post, "/service-accounts/{id}/tokens", ManageAccess, service_accounts::create_token, "Mint a service-account token (shown this once)"),
    route!(Delete, "/service-accounts/{id}/tokens/{token_id}", ManageAccess, service_accounts::delete_token, "Revoke a service-account token"),
    // Collectors (`collectors.rs`).
    route!(Get, "/collectors", Authenticated, collectors_list::list, "List collectors: filtered (selector, attr, status, mode, q), sorted, paged with limit and cursor"),
    route!(Post, "/collectors", ManageCollectors, collectors::create, "Create a collector"),
    route!(Post, "/collectors:batch", ManageCollectors, collectors_batch::create_batch, "Create up to 1000 collectors, with their tokens if asked (shown this once), all or none"),
    route!(Post, "/collectors:bulk", ManageCollectors, collectors_bulk::bulk, "Label, rotate the tokens of, or delete up to 1000 collectors by ids or label selector, all or none").status(200),
    route!(Post, "/collectors:prune", ManageCollectors, collectors_bulk::prune, "Delete (or with dry_run, the default, list) up to 1000 collectors inactive for a given time").status(200),
    route!(Get, "/collectors/{id}", Authenticated, collectors::get, "Get a collector"),
    route!(Patch, "/collectors/{id}", ManageCollectors, collectors::update, "Change a collector's settings"),
    route!(Delete, "/collectors/{id}", ManageCollectors, collectors::delete, "Delete a collector; its token stops working at once"),
    route!(Post, "/collectors/{id}/token", ManageCollectors, collectors::mint_token, "Mint or rotate a collector's token, with its ready-to-paste config"),
    route!(Post, "/collectors/{id}/restart", ManageCollectors, collectors::restart, "Ask an OpenTelemetry Collector's OpAMP agent to restart it; the outcome arrives as an event").status(202),
    route!(Get, "/collectors/{id}/config", Authenticated, collectors::config_view, "The config the collector will receive"),
    route!(Get, "/collectors/{id}/events", Authenticated, collectors::events, "A collector's events, oldest first"),
    // OpAMP enrollment tokens (`enrollment_tokens.rs`).
    route!(Get, "/enrollment-tokens", Authenticated, enrollment_tokens::list, "List OpAMP enrollment tokens (never the tokens), with the collectors still using each"),
    route!(Post, "/enrollment-tokens", ManageCollectors, enrollment_tokens::create, "Create an OpAMP enrollment token (shown this once)"),
    route!(Delete, "/enrollment-tokens/{id}", ManageCollectors, enrollment_tokens::revoke, "Revoke an enrollment token: the agents using it are disconnected"),
    // The fleet model (`fleet_model.rs`): catalogue, pipelines, each collector's items, config versions.
    route!(Get, "/catalogue", Authenticated, fleet_model::catalogue_view, "The source, step and destination types linkmesh renders"),
    route!(Get, "/pipelines", Authenticated, fleet_model::list_pipelines, "List pipelines"),
    route!(Post, "/pipelines", ManagePipelines, fleet_model::create_pipeline, "Create a pipeline"),
    route!(Get, "/pipelines/{id}", Authenticated, fleet_model::get_pipeline, "Get a pipeline"),
    route!(Put, "/pipelines/{id}", ManagePipelines, fleet_model::replace_pipeline, "Replace a pipeline"),
    route!(Delete, "/pipelines/{id}", ManagePipelines, fleet_model::delete_pipeline, "Delete a pipeline no route uses"),
    route!(Get, "/collectors/{id}/sources", Authenticated, list::<Source>, "List a collector's sources"),
    route!(Post, "/collectors/{id}/sources", ManageCollectors, create::<Source>, "Add a source to a collector"),
    route!(Get, "/collectors/{id}/sources/{item}", Authenticated, get::<Source>, "Get a collector's source"),
    route!(Put, "/collectors/{id}/sources/{item}", ManageCollectors, replace::<Source>, "Replace a collector's source"),
    route!(Delete, "/collectors/{id}/sources/{item}", ManageCollectors, delete::<Source>, "Remove a collector's source"),
    route!(Get, "/collectors/{id}/destinations", Authenticated, list::<Destination>, "List a collector's destinations (credentials masked)"),
    route!(Post, "/collectors/{id}/destinations", ManageCollectors, create::<Destination>, "Add a destination to a collector"),
    route!(Get, "/collectors/{id}/destinations/{item}", Authenticated, get::<Destination>, "Get a collector's destination (credentials masked)"),
    route!(Put, "/collectors/{id}/destinations/{item}", ManageCollectors, replace::<Destination>, "Replace a collector's destination"),
    route!(Delete, "/collectors/{id}/destinations/{item}", ManageCollectors, delete::<Destination>, "Remove a collector's destination"),
    route!(Get, "/collectors/{id}/routes", Authenticated, list::<Route>, "List a collector's routes"),
    route!(Post, "/collectors/{id}/routes", ManageCollectors, create::<Route>, "Add a route to a collector"),
    route!(Get, "/collectors/{id}/routes/{item}", Authenticated, get::<Route>, "Get a collector's route"),
    route!(Put, "/collectors/{id}/routes/{item}", ManageCollectors, replace::<Route>, "Replace a collector's route"),
    route!(Delete, "/collectors/{id}/routes/{item}", ManageCollectors, delete::<Route>, "Remove a collector's route"),
    // Fleet-wide items (`fleet_items.rs`): attached to collectors by label selector.
    route!(Get, "/sources", Authenticated, fleet_items::list::<Source>, "List fleet-wide sources"),
    route!(Post, "/sources", ManageCollectors, fleet_items::create::<Source>, "Add a fleet-wide source, attached by label selector"),
    route!(Get, "/sources/{id}", Authenticated, fleet_items::get::<Source>, "Get a fleet-wide source"),
    route!(Put, "/sources/{id}", ManageCollectors, fleet_items::replace::<Source>, "Replace a fleet-wide source"),
    route!(Delete, "/sources/{id}", ManageCollectors, fleet_items::delete::<Source>, "Remove a fleet-wide source"),
    route!(Get, "/destinations", Authenticated, fleet_items::list::<Destination>, "List fleet-wide destinations (credentials masked)"),
    route!(Post, "/destinations", ManageCollectors, fleet_items::create::<Destination>, "Add a fleet-wide destination, attached by label selector"),
    route!(Get, "/destinations/{id}", Authenticated, fleet_items::get::<Destination>, "Get a fleet-wide destination (credentials masked)"),
    route!(Put, "/destinations/{id}", ManageCollectors, fleet_items::replace::<Destination>, "Replace a fleet-wide destination"),
    route!(Delete, "/destinations/{id}", ManageCollectors, fleet_items::delete::<Destination>, "Remove a fleet-wide destination no fleet-wide route uses"),
    route!(Get, "/routes", Authenticated, fleet_items::list::<Route>, "List fleet-wide routes"),
    route!(Post, "/routes", ManageCollectors, fleet_items::create::<Route>, "Add a fleet-wide route, attached by label selector"),
    route!(Get, "/routes/{id}", Authenticated, fleet_items::get::<Route>, "Get a fleet-wide route"),
    route!(Put, "/routes/{id}", ManageCollectors, fleet_items::replace::<Route>, "Replace a fleet-wide route"),
    route!(Delete, "/routes/{id}", ManageCollectors, fleet_items::delete::<Route>, "Remove a fleet-wide route"),
    route!(Get, "/collectors/{id}/config/versions", Authenticated, fleet_model::config_versions, "A collector's config versions"),
    route!(Get, "/collectors/{id}/config/diff", Authenticated, fleet_model::config_diff, "The difference between two of a collector's config versions"),
    // Rollouts (`rollouts.rs`): how changes reach the collectors they alter.
    route!(Get, "/rollouts", Authenticated, rollouts::list, "List rollouts, newest first"),
    route!(Get, "/rollouts/{id}", Authenticated, rollouts::get, "A rollout with each collector's progress"),
    route!(Post, "/rollouts/{id}/resume", ManageCollectors, rollouts::resume, "Resume a paused rollout").status(200),
    route!(Post, "/rollouts/{id}/abort", ManageCollectors, rollouts::abort, "Abort a running or paused rollout: every collector gets the previous version back").status(200),
    route!(Post, "/rollouts/{id}/rollback", ManageCollectors, rollouts::rollback, "Roll back a rollout's change for every collector").status(200),
    // Topology (`topology.rs`).
    route!(Get, "/collectors/{id}/topology", Authenticated, topology::topology, "A collector's rendered pipeline with items/s per node"),
    // Users (`users.rs`).
    route!(Get, "/users", ManageAccess, users::list, "List users"),
    route!(Post, "/users", ManageAccess, users::create, "Create a user"),
    route!(Patch, "/users/{id}", ManageAccess, users::update, "Change a user's role, or disable them"),
    route!(Delete, "/users/{id}", ManageAccess, users::delete, "Delete a user and end their sessions"),
    // Their own password and sessions for any user; anyone's for admins (checked by the handlers).
    route!(Post, "/users/{id}/password", Authenticated, users::change_password, "Change a password (one's own, or an admin anyone's)").status(204),
    route!(Delete, "/users/{id}/sessions", Authenticated, users::delete_sessions, "End all of a user's sessions"),
    // The audit log (`audit.rs`).
    route!(Get, "/audit", ManageAccess, audit::list, "The audit log, oldest first"),
    // Live updates for the UI (`stream.rs`).
    route!(Get, "/stream/collectors", Authenticated, stream::collectors_stream, "Server-sent events: the collector list whenever it changes"),
    route!(Get, "/stream/collectors/{id}", Authenticated, stream::collector_stream, "Server-sent events: one collector and its new events"),
    // The cluster (`cluster.rs`). The join is public: the join exchange's proof authenticates it.
    route!(Get, "/cluster", Authenticated, cluster::status, "The cluster's members, leader and progress"),
    route!(Post, "/cluster/join-tokens", ManageCluster, cluster::create_join_token, "Mint a join token for a new node (shown this once)"),
    route!(Post, "/cluster/join", Public, cluster::join, "The join exchange of a new node (authenticated by its proof, not by a sign-in)").status(200),
    route!(Get, "/cluster/slots", Authenticated, cluster::slots, "The slot table: which node owns which collectors' slot"),
    route!(Get, "/cluster/digest", Authenticated, cluster::digest, "A digest of this node's replica of the fleet"),
    route!(Delete, "/cluster/members/{id}", ManageCluster, cluster::remove_member, "Drain a member's slots, then remove it from the membership").status(202),
    route!(Post, "/cluster/leader", ManageCluster, cluster::transfer_leader, "Move leadership to another voter").status(202),
    route!(Post, "/cluster/rebalance", ManageCluster, cluster::rebalance, "Spread the slots evenly over the live members").status(202),
    // Backups (`backup.rs`): the whole fleet and the data key, so admins only, and audited.
    route!(Get, "/backup", ManageCluster, backup::backup, "A backup of the whole fleet and its data key").audited(),
    // This API's description (`openapi.rs` builds it, `openapi_json.rs` serves it), for anyone signed in, like the API's shape itself.
    route!(Get, "/openapi.json", Authenticated, openapi_json::document, "This API's OpenAPI 3.1 description"),
];

/// The distinct paths of the table, in table order (one actix resource each).
pub fn paths() -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = Vec::new();
    for route in API_ROUTES {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    paths
}

/// The `Allow` header of a path: its methods in [`Verb::ALL`] order.
pub fn allow_header(path: &str) -> String {
    Verb::ALL
        .into_iter()
        .filter(|verb| API_ROUTES.iter().any(|route| route.path == path && route.verb == *verb))
        .map(Verb::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_of_a_path_is_listed_once() {
        for (index, route) in API_ROUTES.iter().enumerate() {
            assert!(route.path.starts_with('/'), "{}", route.path);
            for other in &API_ROUTES[index + 1..] {
                assert!(
                    (route.verb, route.path) != (other.verb, other.path),
                    "{} {} is listed twice",
                    route.verb.as_str(),
                    route.path
                );
            }
        }
    }

    #[test]
    fn the_minimum_role_is_what_the_role_rules_allow() {
        let roles = [Role::Viewer, Role::PipelineEngineer, Role::Operator, Role::Admin];
        let accesses = [
            Access::Authenticated,
            Access::ManagePipelines,
            Access::ManageCollectors,
            Access::ManageAccess,
            Access::ManageCluster,
        ];
        for access in accesses {
            let min_role = access.min_role().expect("signed-in access");
            let rank = |role: Role| roles.iter().position(|r| *r == role).expect("role");
            for role in roles {
                let principal = Principal {
                    kind: crate::http::principal::PrincipalKind::ServiceAccount,
                    id: "sa_test".into(),
                    name: "test".into(),
                    role,
                    session_hash: None,
                };
                assert_eq!(
                    access.check(&principal).is_ok(),
                    rank(role) >= rank(min_role),
                    "{access:?} for {}",
                    role.as_str()
                );
            }
        }
        assert_eq!(Access::Public.min_role(), None);
    }

    #[test]
    fn allow_lists_a_paths_methods_in_a_fixed_order() {
        assert_eq!(allow_header("/collectors"), "GET, POST");
        assert_eq!(allow_header("/pipelines/{id}"), "GET, PUT, DELETE");
        assert_eq!(allow_header("/auth/login"), "POST");
    }

    /// Every resource the API serves comes from the table: no module under `http/api/` registers one
    /// of its own (`configure` in `api.rs` is the only caller of `web::resource`).
    #[test]
    fn only_the_table_registers_api_resources() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut files = vec![root.join("api.rs")];
        let mut directories = vec![root.join("api")];
        while let Some(directory) = directories.pop() {
            for entry in std::fs::read_dir(&directory).expect("read src/http/api") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    directories.push(path);
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    files.push(path);
                }
            }
        }
        let registrations =
            ["web::resource(", "web::scope(", ".service(", ".route(", "web::get()", "web::post()"];
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for needle in registrations {
                let count = code.matches(needle).count();
                let allowed = match (file.file_name().and_then(|name| name.to_str()), needle) {
                    (Some("api.rs"), "web::resource(" | "web::scope(") => 1,
                    (Some("api.rs"), ".service(") => 2,
                    (Some("api.rs"), ".route(") => 1,
                    (Some("routes.rs"), "web::method(") => 1,
                    _ => 0,
                };
                assert_eq!(
                    count,
                    allowed,
                    "{} registers routes outside the table ({needle})",
                    file.display()
                );
            }
        }
    }
}
