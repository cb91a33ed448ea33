//! Who may do what in a catalog: privileges, row-level security policies, default privileges
//! and roles. Every list follows the pagination convention.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::objects::{
    INCLUDE_EXTENSION_OBJECTS, RelationPath, SchemaList, check_empty_list, check_name, link_params,
    members, name_param,
};
use super::openapi::{
    CatalogId, ExtensionMembersParam, PageParams, PastParams, ReadErrors, SchemaParam,
};
use super::pagination::{PageRequest, document_page, page_response};
use super::past;
use crate::catalog::access::{Access, DefaultPrivilege, Role};
use crate::catalog::effective::{RelationAccess, RoleAccess, effective};
use crate::error::ApiError;
use crate::store::access_reads::{
    self, PolicyItem, PrivilegeCursor, PrivilegeFilter, PrivilegeItem,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_privileges))
        .routes(routes!(list_policies))
        .routes(routes!(list_default_privileges))
        .routes(routes!(list_roles))
        .routes(routes!(get_table_access))
}

/// The filters of the privilege list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct PrivilegeFilters {
    /// Only privileges granted to this role (`PUBLIC` for those granted to every role).
    grantee: Option<String>,
    /// Only this schema.
    schema: Option<String>,
    /// Only this object (a relation, sequence or type name, a function's
    /// `name(arguments)`, or a schema's own name).
    object: Option<String>,
}

/// The privileges on the catalog's schemas, relations, columns, sequences, functions and
/// types, one item per ACL entry as `aclexplode` gives it (an object whose ACL was never
/// changed has none), in (schema, object, object type, column, grantee, privilege, grantor)
/// order.
#[utoipa::path(
    get, path = "/catalogs/{id}/privileges", tag = "objects",
    params(CatalogId, PrivilegeFilters, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of privileges", body = Vec<PrivilegeItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_privileges(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&[
        "grantee",
        "schema",
        "object",
        INCLUDE_EXTENSION_OBJECTS,
        "limit",
        "cursor",
        "sync",
        "as_of",
    ])?;
    let c = parse_id("catalog_id", &id)?;
    let filter = PrivilegeFilter {
        grantee: name_param(&query, "grantee")?,
        schema: name_param(&query, "schema")?,
        object: query.get("object"),
        members: members(&query)?,
    };
    if let Some(object) = filter.object
        && object.contains('\0')
    {
        return Err(ApiError::validation("object", "must not contain NUL bytes"));
    }
    let page = PageRequest::<PrivilegeCursor>::from_query(&query)?;
    let at = past::snapshot(&state, c, &query).await?;
    let rows = access_reads::privileges(
        &state.pool,
        at.stored_as,
        &filter,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    if rows.is_empty() {
        check_empty_list(&state, &at, filter.schema).await?;
    }
    let path = format!("/catalogs/{c}/privileges");
    let snapshot = at.link_params();
    let params = link_params(
        &[
            ("grantee", filter.grantee),
            ("schema", filter.schema),
            ("object", filter.object),
            (INCLUDE_EXTENSION_OBJECTS, filter.members.param()),
        ],
        &snapshot,
    );
    Ok(page_response(
        rows,
        &page,
        &path,
        &params,
        PrivilegeItem::cursor,
    ))
}

/// The row-level security policies of the catalog's relations, in (schema, table, name)
/// order.
#[utoipa::path(
    get, path = "/catalogs/{id}/policies", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of policies", body = Vec<PolicyItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_policies(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String, String)>::with_members(&state, &id, &query).await?;
    let rows = access_reads::policies(
        &state.pool,
        list.at.stored_as,
        list.schema,
        list.members,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "policies", rows, |p| {
        (p.schema.clone(), p.table.clone(), p.name.clone())
    })
    .await
}

/// (role, schema or '', object type, grantee, privilege): a default privilege's place.
type DefaultCursor = (String, String, String, String, String);

fn default_cursor(d: &DefaultPrivilege) -> DefaultCursor {
    (
        d.role.clone(),
        d.schema.clone().unwrap_or_default(),
        d.object_type.clone(),
        d.grantee.clone(),
        d.privilege.clone(),
    )
}

/// The source database's default privileges (`ALTER DEFAULT PRIVILEGES`) that apply
/// everywhere or in one of the catalog's schemas, one item per ACL entry, in (role, schema,
/// object type, grantee, privilege) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/default_privileges", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of default privileges", body = Vec<DefaultPrivilege>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_default_privileges(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    facts_page(
        &state,
        &id,
        &query,
        "default_privileges",
        |facts| facts.default_privileges,
        default_cursor,
    )
    .await
}

/// The source server's roles that own or are granted anything in the catalog, and their
/// members, with their attributes and memberships (never a password), in name order.
#[utoipa::path(
    get, path = "/catalogs/{id}/roles", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of roles", body = Vec<Role>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_roles(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    facts_page(
        &state,
        &id,
        &query,
        "roles",
        |facts| facts.roles,
        |r: &Role| r.name.clone(),
    )
    .await
}

/// A page of a list taken from the catalog's whole-database access facts (`catalogs.access`),
/// sorted by `cursor`.
async fn facts_page<T: Serialize, C>(
    state: &AppState,
    id: &str,
    query: &QueryParams,
    kind: &str,
    items: impl FnOnce(Access) -> Vec<T>,
    cursor: impl Fn(&T) -> C,
) -> Result<Response, ApiError>
where
    C: Ord + Serialize + serde::de::DeserializeOwned,
{
    let load = |c, sync| access_reads::access_facts(&state.pool, c, sync);
    document_page(state, id, query, kind, load, items, cursor).await
}

/// What every role of a catalog may do on one relation.
#[derive(Serialize, utoipa::ToSchema)]
struct TableAccess {
    /// Each role of the catalog (see `/roles`), in name order.
    roles: Vec<RoleAccess>,
    rls_enabled: bool,
    rls_forced: bool,
}

/// For every role of the catalog, what it may do on the relation and on each of its columns,
/// resolving memberships (where the member INHERITs), `PUBLIC`, ownership and superusers as
/// `has_table_privilege` and `has_column_privilege` do, and which row-level security policies
/// restrict its rows.
#[utoipa::path(
    get, path = "/catalogs/{id}/tables/{schema}/{table}/access", tag = "objects",
    params(RelationPath, PastParams),
    responses((status = 200, description = "Each role's access", body = TableAccess), ReadErrors)
)]
async fn get_table_access(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
    query: QueryParams,
) -> Result<Json<TableAccess>, ApiError> {
    query.only(&past::PARAMS)?;
    check_name("schema", &schema)?;
    check_name("table", &table)?;
    let c = parse_id("catalog_id", &id)?;
    let at = past::snapshot(&state, c, &query).await?;
    let mut conn = state.pool.acquire().await?;
    let stored = access_reads::relation_access(&mut conn, at.stored_as, &schema, &table).await?;
    let Some(stored) = stored else {
        drop(conn);
        ensure_catalog(&state, c).await?;
        return Err(ApiError::NotFound(format!(
            "no relation {schema:?}.{table:?} in catalog {c}"
        )));
    };
    let access = access_reads::access_facts(&mut *conn, c, at.sync)
        .await?
        .unwrap_or_default();
    let relation = RelationAccess {
        owner: stored.owner.as_deref(),
        privileges: &stored.privileges,
        policies: &stored.policies,
        columns: &stored.columns,
        rls_enabled: stored.rls_enabled,
        rls_forced: stored.rls_forced,
    };
    let mut roles = access.roles;
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(TableAccess {
        roles: effective(&relation, &roles),
        rls_enabled: stored.rls_enabled,
        rls_forced: stored.rls_forced,
    }))
}
