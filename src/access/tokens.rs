//! API tokens: who a request comes from ([`Caller`]) and what it may do ([`Scope`]).
//!
//! `API_TOKENS` (or the file `API_TOKENS_FILE` names) lists entries separated by commas or
//! lines. A bare entry is a token with every scope; `name:scopes:token[:catalogs]` names the
//! token, gives it scopes joined by `+` and, optionally, limits it to catalog ids joined by `+`.
//! Tokens are kept as SHA-256 digests only.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::ids::CatalogId;

/// What a request needs of its token. `admin` implies the other two; `sync` does not imply
/// `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every read.
    Read,
    /// Enqueue, cancel and retry syncs; set and remove schedules.
    Sync,
    /// Delete catalogs; read the audit log.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Sync, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Sync => "sync",
            Self::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request comes from: a named token with its scopes and catalogs, or anyone when the
/// API runs without tokens.
#[derive(Debug, Clone)]
pub struct Caller {
    name: Option<Arc<str>>,
    scopes: Arc<[Scope]>,
    catalogs: Option<Arc<[CatalogId]>>,
}

impl Caller {
    /// Anyone, on an API without tokens: every scope, every catalog.
    pub fn anyone() -> Self {
        Self {
            name: None,
            scopes: Scope::ALL.into(),
            catalogs: None,
        }
    }

    /// The token's name; `None` on an API without tokens.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// Whether the caller may see and act on `catalog`.
    pub fn reaches(&self, catalog: CatalogId) -> bool {
        self.catalogs.as_ref().is_none_or(|c| c.contains(&catalog))
    }

    /// The catalogs the token is limited to, if it is.
    pub fn catalogs(&self) -> Option<&[CatalogId]> {
        self.catalogs.as_deref()
    }
}

/// Why `API_TOKENS` cannot be used. No message quotes a token.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("entry {0}: expected `token` or `name:scopes:token[:catalog+catalog...]`")]
    Shape(usize),
    #[error("token {name:?}: unknown scope {scope:?} (read, sync or admin)")]
    UnknownScope { name: String, scope: String },
    #[error("token {name:?}: {id:?} is not a catalog id")]
    Catalog { name: String, id: String },
    #[error("token {0:?}: the name is used twice")]
    DuplicateName(String),
    #[error("entry {0}: the same token is listed twice")]
    DuplicateToken(usize),
}

struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// The tokens the API accepts, compared as digests in constant time.
pub struct ApiTokens(Vec<Entry>);

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokens({} tokens)", self.0.len())
    }
}

impl ApiTokens {
    /// Entries separated by commas or lines; blank entries and lines starting with `#` are
    /// skipped. `None` when there are no entries.
    pub fn parse(text: &str) -> Result<Option<Self>, TokenError> {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        let (mut names, mut digests) = (HashSet::new(), HashSet::new());
        let mut tokens = Vec::new();
        for (index, entry) in entries.enumerate() {
            let number = index + 1;
            let (token, caller) = parse_entry(number, entry)?;
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            let caller = caller.unwrap_or_else(|| Caller {
                // A stable name that reveals nothing usable: the digest's first four bytes.
                name: Some(format!("token-{}", hex(&digest[..4])).into()),
                ..Caller::anyone()
            });
            if !digests.insert(digest) {
                return Err(TokenError::DuplicateToken(number));
            }
            let name = caller.name().unwrap_or_default().to_owned();
            if !names.insert(name.clone()) {
                return Err(TokenError::DuplicateName(name));
            }
            tokens.push(Entry { digest, caller });
        }
        Ok((!tokens.is_empty()).then_some(Self(tokens)))
    }

    /// The caller an `Authorization: Bearer <token>` header value names, if any.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Caller> {
        self.caller(authorization?.strip_prefix("Bearer ")?)
    }

    /// The caller `token` belongs to, if any. Every entry is compared, so the time taken does
    /// not tell which one matched, nor how much of a token was right.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut found = u32::MAX;
        for (index, entry) in self.0.iter().enumerate() {
            found.conditional_assign(&(index as u32), entry.digest.ct_eq(&digest));
        }
        self.0.get(found as usize).map(|e| e.caller.clone())
    }
}

/// One entry: its token, and its caller unless it is a bare token.
fn parse_entry(number: usize, entry: &str) -> Result<(&str, Option<Caller>), TokenError> {
    let fields: Vec<&str> = entry.split(':').map(str::trim).collect();
    let (name, scopes, token, catalogs) = match fields[..] {
        [token] => return Ok((token, None)),
        [name, scopes, token] => (name, scopes, token, None),
        [name, scopes, token, catalogs] => (name, scopes, token, Some(catalogs)),
        _ => return Err(TokenError::Shape(number)),
    };
    if name.is_empty() || token.is_empty() || scopes.is_empty() {
        return Err(TokenError::Shape(number));
    }
    let scopes = scopes
        .split('+')
        .map(|s| {
            Scope::parse(s.trim()).ok_or_else(|| TokenError::UnknownScope {
                name: name.to_owned(),
                scope: s.to_owned(),
            })
        })
        .collect::<Result<Arc<[Scope]>, _>>()?;
    let catalogs = catalogs
        .map(|list| {
            list.split('+')
                .map(|id| {
                    id.trim()
                        .parse::<CatalogId>()
                        .map_err(|_| TokenError::Catalog {
                            name: name.to_owned(),
                            id: id.to_owned(),
                        })
                })
                .collect::<Result<Arc<[CatalogId]>, _>>()
        })
        .transpose()?;
    let caller = Caller {
        name: Some(name.into()),
        scopes,
        catalogs,
    };
    Ok((token, Some(caller)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(tokens: &ApiTokens, token: &str) -> Caller {
        tokens.caller(token).expect("the token is accepted")
    }

    #[test]
    fn tokens_match_exactly() {
        let tokens = ApiTokens::parse("alpha, beta").unwrap().unwrap();
        assert!(tokens.authenticate(Some("Bearer alpha")).is_some());
        assert!(tokens.authenticate(Some("Bearer beta")).is_some());
        for refused in ["Bearer alph", "Bearer alphaa", "alpha", "Bearer "] {
            assert!(tokens.authenticate(Some(refused)).is_none(), "{refused}");
        }
        assert!(tokens.authenticate(None).is_none());
        assert!(ApiTokens::parse(" , \n# only a comment").unwrap().is_none());
    }

    #[test]
    fn a_bare_token_has_every_scope_and_a_name_that_does_not_quote_it() {
        let tokens = ApiTokens::parse("s3cret").unwrap().unwrap();
        let anyone = caller(&tokens, "s3cret");
        assert!(Scope::ALL.into_iter().all(|s| anyone.allows(s)));
        let name = anyone.name().unwrap();
        assert!(
            name.starts_with("token-") && !name.contains("s3cret"),
            "{name}"
        );
    }

    #[test]
    fn named_tokens_carry_their_scopes_and_admin_implies_the_others() {
        let text = "dashboard:read:t1,\nci: read+sync :t2\n# ops\nops:admin:t3";
        let tokens = ApiTokens::parse(text).unwrap().unwrap();
        let allowed = |token: &str| -> Vec<Scope> {
            let c = caller(&tokens, token);
            Scope::ALL.into_iter().filter(|s| c.allows(*s)).collect()
        };
        assert_eq!(allowed("t1"), [Scope::Read]);
        assert_eq!(allowed("t2"), [Scope::Read, Scope::Sync]);
        assert_eq!(allowed("t3"), Scope::ALL);
        assert_eq!(caller(&tokens, "t2").name(), Some("ci"));
    }

    #[test]
    fn a_fourth_field_limits_a_token_to_catalogs() {
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let tokens = ApiTokens::parse(&format!("team:read:t:{a}+{b},all:read:u"))
            .unwrap()
            .unwrap();
        let team = caller(&tokens, "t");
        assert!(team.reaches(a.into()) && team.reaches(b.into()));
        assert!(!team.reaches(uuid::Uuid::now_v7().into()));
        assert!(caller(&tokens, "u").reaches(uuid::Uuid::now_v7().into()));
    }

    #[test]
    fn bad_entries_are_refused_without_quoting_the_token() {
        let cases = [
            ("a:SECRET", TokenError::Shape(1)),
            ("ok, a:read:SECRET:c:d", TokenError::Shape(2)),
            (":read:SECRET", TokenError::Shape(1)),
            ("x::SECRET", TokenError::Shape(1)),
            (
                "x:read+write:SECRET",
                TokenError::UnknownScope {
                    name: "x".into(),
                    scope: "write".into(),
                },
            ),
            (
                "x:read:SECRET:nope",
                TokenError::Catalog {
                    name: "x".into(),
                    id: "nope".into(),
                },
            ),
            (
                "x:read:SECRET,x:sync:u",
                TokenError::DuplicateName("x".into()),
            ),
            ("x:read:SECRET,y:sync:SECRET", TokenError::DuplicateToken(2)),
        ];
        for (text, expected) in cases {
            let error = ApiTokens::parse(text).err();
            assert_eq!(error.as_ref(), Some(&expected), "{text}");
            let message = error.unwrap().to_string();
            assert!(!message.contains("SECRET"), "{message}");
        }
    }
}
