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

use super::fleet_model;
// The collector items' handlers are generic over the kind of item: `list::<Source>` and so on.
use super::fleet_model::{
    create_item as create, delete_item as delete, get_item as get, list_items as list,
    replace_item as replace,
};
use super::{audit, auth, backup, cluster, collectors, service_accounts, stream, topology, users};
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
    /// Attaches the handler (`|route| route.to(handler)`).
    handler: fn(actix_web::Route) -> actix_web::Route,
    /// A read that is audited like a write: it hands out secrets (the backup's data key).
    audited_read: bool,
}

impl ApiRoute {
    const fn new(
        verb: Verb,
        path: &'static str,
        access: Access,
        handler: fn(actix_web::Route) -> actix_web::Route,
    ) -> Self {
        ApiRoute { verb, path, access, handler, audited_read: false }
    }

    /// Audits this `GET` like a write (who read it, from where, with what outcome).
    const fn audited(self) -> Self {
        ApiRoute { audited_read: true, ..self }
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

/// Every route of the REST API. `api::configure` registers them in this order, one resource per path.
pub static API_ROUTES: &[ApiRoute] = &[
    // Sign-in (`auth.rs`).
    ApiRoute::new(Post, "/auth/login", Public, |r| r.to(auth::login)),
    ApiRoute::new(Post, "/auth/logout", Authenticated, |r| r.to(auth::logout)),
    ApiRoute::new(Get, "/auth/me", Authenticated, |r| r.to(auth::me)),
    ApiRoute::new(Get, "/auth/sessions", Authenticated, |r| r.to(auth::list_sessions)),
    ApiRoute::new(Delete, "/auth/sessions/{id}", Authenticated, |r| r.to(auth::delete_session)),
    // Service accounts and their tokens (`service_accounts.rs`).
    ApiRoute::new(Get, "/service-accounts", ManageAccess, |r| r.to(service_accounts::list)),
    ApiRoute::new(Post, "/service-accounts", ManageAccess, |r| r.to(service_accounts::create)),
    ApiRoute::new(Delete, "/service-accounts/{id}", ManageAccess, |r| r.to(service_accounts::delete)),
    ApiRoute::new(Get, "/service-accounts/{id}/tokens", ManageAccess, |r| {
        r.to(service_accounts::list_tokens)
    }),
    ApiRoute::new(Post, "/service-accounts/{id}/tokens", ManageAccess, |r| {
        r.to(service_accounts::create_token)
    }),
    ApiRoute::new(Delete, "/service-accounts/{id}/tokens/{token_id}", ManageAccess, |r| {
        r.to(service_accounts::delete_token)
    }),
    // Collectors (`collectors.rs`).
    ApiRoute::new(Get, "/collectors", Authenticated, |r| r.to(collectors::list)),
    ApiRoute::new(Post, "/collectors", ManageCollectors, |r| r.to(collectors::create)),
    ApiRoute::new(Get, "/collectors/{id}", Authenticated, |r| r.to(collectors::get)),
    ApiRoute::new(Patch, "/collectors/{id}", ManageCollectors, |r| r.to(collectors::update)),
    ApiRoute::new(Delete, "/collectors/{id}", ManageCollectors, |r| r.to(collectors::delete)),
    ApiRoute::new(Post, "/collectors/{id}/token", ManageCollectors, |r| r.to(collectors::mint_token)),
    ApiRoute::new(Get, "/collectors/{id}/config", Authenticated, |r| r.to(collectors::config_view)),
    ApiRoute::new(Get, "/collectors/{id}/events", Authenticated, |r| r.to(collectors::events)),
    // The fleet model (`fleet_model.rs`): catalogue, pipelines, each collector's items, config versions.
    ApiRoute::new(Get, "/catalogue", Authenticated, |r| r.to(fleet_model::catalogue_view)),
    ApiRoute::new(Get, "/pipelines", Authenticated, |r| r.to(fleet_model::list_pipelines)),
    ApiRoute::new(Post, "/pipelines", ManagePipelines, |r| r.to(fleet_model::create_pipeline)),
    ApiRoute::new(Get, "/pipelines/{id}", Authenticated, |r| r.to(fleet_model::get_pipeline)),
    ApiRoute::new(Put, "/pipelines/{id}", ManagePipelines, |r| r.to(fleet_model::replace_pipeline)),
    ApiRoute::new(Delete, "/pipelines/{id}", ManagePipelines, |r| r.to(fleet_model::delete_pipeline)),
    ApiRoute::new(Get, "/collectors/{id}/sources", Authenticated, |r| r.to(list::<Source>)),
    ApiRoute::new(Post, "/collectors/{id}/sources", ManageCollectors, |r| r.to(create::<Source>)),
    ApiRoute::new(Get, "/collectors/{id}/sources/{item}", Authenticated, |r| r.to(get::<Source>)),
    ApiRoute::new(Put, "/collectors/{id}/sources/{item}", ManageCollectors, |r| r.to(replace::<Source>)),
    ApiRoute::new(Delete, "/collectors/{id}/sources/{item}", ManageCollectors, |r| r.to(delete::<Source>)),
    ApiRoute::new(Get, "/collectors/{id}/destinations", Authenticated, |r| r.to(list::<Destination>)),
    ApiRoute::new(Post, "/collectors/{id}/destinations", ManageCollectors, |r| r.to(create::<Destination>)),
    ApiRoute::new(Get, "/collectors/{id}/destinations/{item}", Authenticated, |r| r.to(get::<Destination>)),
    ApiRoute::new(Put, "/collectors/{id}/destinations/{item}", ManageCollectors, |r| {
        r.to(replace::<Destination>)
    }),
    ApiRoute::new(Delete, "/collectors/{id}/destinations/{item}", ManageCollectors, |r| {
        r.to(delete::<Destination>)
    }),
    ApiRoute::new(Get, "/collectors/{id}/routes", Authenticated, |r| r.to(list::<Route>)),
    ApiRoute::new(Post, "/collectors/{id}/routes", ManageCollectors, |r| r.to(create::<Route>)),
    ApiRoute::new(Get, "/collectors/{id}/routes/{item}", Authenticated, |r| r.to(get::<Route>)),
    ApiRoute::new(Put, "/collectors/{id}/routes/{item}", ManageCollectors, |r| r.to(replace::<Route>)),
    ApiRoute::new(Delete, "/collectors/{id}/routes/{item}", ManageCollectors, |r| r.to(delete::<Route>)),
    ApiRoute::new(Get, "/collectors/{id}/config/versions", Authenticated, |r| {
        r.to(fleet_model::config_versions)
    }),
    ApiRoute::new(Get, "/collectors/{id}/config/diff", Authenticated, |r| r.to(fleet_model::config_diff)),
    // Topology (`topology.rs`).
    ApiRoute::new(Get, "/collectors/{id}/topology", Authenticated, |r| r.to(topology::topology)),
    // Users (`users.rs`).
    ApiRoute::new(Get, "/users", ManageAccess, |r| r.to(users::list)),
    ApiRoute::new(Post, "/users", ManageAccess, |r| r.to(users::create)),
    ApiRoute::new(Patch, "/users/{id}", ManageAccess, |r| r.to(users::update)),
    ApiRoute::new(Delete, "/users/{id}", ManageAccess, |r| r.to(users::delete)),
    // Their own password and sessions for any user; anyone's for admins (checked by the handlers).
    ApiRoute::new(Post, "/users/{id}/password", Authenticated, |r| r.to(users::change_password)),
    ApiRoute::new(Delete, "/users/{id}/sessions", Authenticated, |r| r.to(users::delete_sessions)),
    // The audit log (`audit.rs`).
    ApiRoute::new(Get, "/audit", ManageAccess, |r| r.to(audit::list)),
    // Live updates for the UI (`stream.rs`).
    ApiRoute::new(Get, "/stream/collectors", Authenticated, |r| r.to(stream::collectors_stream)),
    ApiRoute::new(Get, "/stream/collectors/{id}", Authenticated, |r| r.to(stream::collector_stream)),
    // The cluster (`cluster.rs`). The join is public: the join exchange's proof authenticates it.
    ApiRoute::new(Get, "/cluster", Authenticated, |r| r.to(cluster::status)),
    ApiRoute::new(Post, "/cluster/join-tokens", ManageCluster, |r| r.to(cluster::create_join_token)),
    ApiRoute::new(Post, "/cluster/join", Public, |r| r.to(cluster::join)),
    ApiRoute::new(Get, "/cluster/slots", Authenticated, |r| r.to(cluster::slots)),
    ApiRoute::new(Get, "/cluster/digest", Authenticated, |r| r.to(cluster::digest)),
    ApiRoute::new(Delete, "/cluster/members/{id}", ManageCluster, |r| r.to(cluster::remove_member)),
    ApiRoute::new(Post, "/cluster/leader", ManageCluster, |r| r.to(cluster::transfer_leader)),
    ApiRoute::new(Post, "/cluster/rebalance", ManageCluster, |r| r.to(cluster::rebalance)),
    // Backups (`backup.rs`): the whole fleet and the data key, so admins only, and audited.
    ApiRoute::new(Get, "/backup", ManageCluster, |r| r.to(backup::backup)).audited(),
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
