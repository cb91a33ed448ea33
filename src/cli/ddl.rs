//! `ddl`: prints the SQL that recreates a catalog's schema (`GET /catalogs/{id}/ddl`), to load
//! into an empty database or to keep under version control.

use clap::Args;
use reqwest::Method;

use super::{Api, ApiClientConfig};

#[derive(Debug, Clone, Args)]
pub struct DdlArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
    /// The catalog's id.
    pub catalog_id: String,
    /// Only this schema.
    #[arg(long)]
    pub schema: Option<String>,
}

/// `ddl`: prints the export as the API answers it.
pub async fn ddl(args: DdlArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let id: String = form_urlencoded::byte_serialize(args.catalog_id.as_bytes()).collect();
    let mut path = format!("/catalogs/{id}/ddl");
    if let Some(schema) = &args.schema {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("schema", schema)
            .finish();
        path.push('?');
        path.push_str(&query);
    }
    let sql = api.call_text(api.request(Method::GET, &path)).await?;
    print!("{sql}");
    Ok(true)
}
