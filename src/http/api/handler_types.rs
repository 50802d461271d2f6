//! What a handler's signature says about its request and its answer, for the API description
//! (`openapi.rs`): the JSON body, query and path parameters it extracts, and the typed [`Reply`] it
//! returns. [`HandlerTypes::of`] reads them from the handler's type through the same `Handler` trait
//! actix calls it with, so the description cannot name a body or a parameter the handler does not read.
//!
//! A handler that answers a plain `HttpResponse` (most build `serde_json::Value`s) has no typed reply;
//! the description then says only its status. Returning [`Reply<T>`] instead makes `T`'s schema the
//! documented response, and `T` is what the handler serializes.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

use crate::http::principal::Principal;

/// A JSON answer with a fixed status whose body type the API description shows: `Reply<View>` is
/// 200, `Reply<View, 201>` a creation.
pub struct Reply<T, const STATUS: u16 = 200>(pub T);

impl<T: Serialize, const STATUS: u16> Responder for Reply<T, STATUS> {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        HttpResponse::build(StatusCode::from_u16(STATUS).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .json(&self.0)
    }
}

/// Schema generators for the two directions: requests as serde reads them (defaults make fields
/// optional), replies as serde writes them. Named types land in each generator's definitions.
pub struct Generators {
    pub request: SchemaGenerator,
    pub reply: SchemaGenerator,
}

impl Generators {
    /// JSON Schema 2020-12 (OpenAPI 3.1's dialect), definitions under `#/components/schemas`.
    pub fn new() -> Generators {
        let settings = SchemaSettings::draft2020_12().with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        });
        Generators {
            request: settings.clone().for_deserialize().into_generator(),
            reply: settings.for_serialize().into_generator(),
        }
    }
}

impl Default for Generators {
    fn default() -> Self {
        Generators::new()
    }
}

/// The request body a handler reads.
pub enum Body {
    /// `web::Json<T>`: `T`'s schema (a `$ref` into the definitions).
    Json(Schema),
    /// `web::Payload`: bytes the handler parses itself.
    Raw,
}

/// A typed answer: its status, media type and, unless it is empty, its body's schema.
pub struct TypedReply {
    pub status: u16,
    pub media_type: &'static str,
    pub schema: Option<Schema>,
}

/// Everything the description learns from one handler's type.
pub struct HandlerTypes {
    /// `std::any::type_name` of the handler: `linkmesh::http::api::collectors::list`.
    pub name: &'static str,
    pub body: Option<Body>,
    /// The query struct's own schema (an object; its properties are the parameters).
    pub query: Option<Schema>,
    /// The `web::Path<T>` type's schema: one string, or a tuple (`prefixItems`) in path order.
    pub path: Option<Schema>,
    /// Whether the handler extracts a [`Principal`] (so it cannot run for a stranger).
    pub takes_principal: bool,
    pub reply: Option<TypedReply>,
}

impl HandlerTypes {
    /// Reads `handler`'s extractors and reply type. `F: Handler<Args>` is how actix itself infers
    /// `Args` from a handler function, so this accepts exactly what `Route::to` accepts.
    pub fn of<F, Args>(_handler: &F, generators: &mut Generators) -> HandlerTypes
    where
        F: actix_web::Handler<Args>,
        Args: DescribeArgs,
        F::Output: DescribeReply,
    {
        let mut types = HandlerTypes {
            name: std::any::type_name::<F>(),
            body: None,
            query: None,
            path: None,
            takes_principal: false,
            reply: None,
        };
        Args::describe(&mut types, generators);
        types.reply = F::Output::reply(generators);
        types
    }
}

/// One extractor's contribution to the description; most extractors contribute nothing.
pub trait DescribeArg {
    fn describe(_types: &mut HandlerTypes, _generators: &mut Generators) {}
}

impl DescribeArg for HttpRequest {}
impl<T: ?Sized> DescribeArg for web::Data<T> {}

impl DescribeArg for Principal {
    fn describe(types: &mut HandlerTypes, _generators: &mut Generators) {
        types.takes_principal = true;
    }
}

impl<T: JsonSchema> DescribeArg for web::Json<T> {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
        types.body = Some(Body::Json(generators.request.subschema_for::<T>()));
    }
}

impl<T: JsonSchema> DescribeArg for web::Query<T> {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
        types.query = Some(T::json_schema(&mut generators.request));
    }
}

impl<T: JsonSchema> DescribeArg for web::Path<T> {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
        types.path = Some(T::json_schema(&mut generators.request));
    }
}

impl DescribeArg for web::Payload {
    fn describe(types: &mut HandlerTypes, _generators: &mut Generators) {
        types.body = Some(Body::Raw);
    }
}

/// A handler's whole argument tuple.
pub trait DescribeArgs {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators);
}

macro_rules! describe_args {
    ($($arg:ident),*) => {
        impl<$($arg: DescribeArg),*> DescribeArgs for ($($arg,)*) {
            #[allow(unused_variables)]
            fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
                $($arg::describe(types, generators);)*
            }
        }
    };
}

describe_args!();
describe_args!(A);
describe_args!(A, B);
describe_args!(A, B, C);
describe_args!(A, B, C, D);
describe_args!(A, B, C, D, E);
describe_args!(A, B, C, D, E, G);

/// What a handler's output type says about its success answer.
pub trait DescribeReply {
    fn reply(_generators: &mut Generators) -> Option<TypedReply> {
        None
    }
}

/// Untyped: the handler builds its body itself.
impl DescribeReply for HttpResponse {}

impl<R: DescribeReply, E> DescribeReply for Result<R, E> {
    fn reply(generators: &mut Generators) -> Option<TypedReply> {
        R::reply(generators)
    }
}

impl<T: Serialize + JsonSchema, const STATUS: u16> DescribeReply for Reply<T, STATUS> {
    fn reply(generators: &mut Generators) -> Option<TypedReply> {
        Some(TypedReply {
            status: STATUS,
            media_type: "application/json",
            schema: Some(generators.reply.subschema_for::<T>()),
        })
    }
}

/// A stream of server-sent events (`text/event-stream`); its events are described in words.
pub struct EventStream(pub HttpResponse);

impl Responder for EventStream {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        self.0
    }
}

impl DescribeReply for EventStream {
    fn reply(_generators: &mut Generators) -> Option<TypedReply> {
        Some(TypedReply { status: 200, media_type: "text/event-stream", schema: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct NewThing {
        name: String,
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Filter {
        q: Option<String>,
    }

    #[derive(Serialize, JsonSchema)]
    struct View {
        id: String,
    }

    async fn typed(
        _principal: Principal,
        _path: web::Path<(String, String)>,
        _query: web::Query<Filter>,
        _body: web::Json<NewThing>,
    ) -> Result<Reply<View, 201>, crate::error::ApiError> {
        Ok(Reply(View { id: "x".into() }))
    }

    async fn untyped(_request: HttpRequest) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }

    #[test]
    fn a_handlers_extractors_and_reply_are_read_from_its_signature() {
        let mut generators = Generators::new();
        let types = HandlerTypes::of(&typed, &mut generators);
        assert!(types.name.ends_with("handler_types::tests::typed"), "{}", types.name);
        assert!(types.takes_principal);
        assert!(matches!(&types.body, Some(Body::Json(schema)) if schema.get("$ref").is_some()));
        assert!(types.query.is_some_and(|query| query.get("properties").is_some()));
        assert!(types.path.is_some_and(|path| path.get("prefixItems").is_some()));
        let reply = types.reply.expect("typed reply");
        assert_eq!(reply.status, 201);
        assert_eq!(
            reply.schema.and_then(|schema| schema.get("$ref").cloned()),
            Some(serde_json::json!("#/components/schemas/View"))
        );

        let types = HandlerTypes::of(&untyped, &mut generators);
        assert!(!types.takes_principal && types.body.is_none() && types.reply.is_none());
    }
}
