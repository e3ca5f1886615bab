//! HTTP/1.1 on the WebSocket port: one connection's requests ([`connection`]), the
//! WebSocket upgrade ([`upgrade`]), which endpoint answers ([`routes`]) and how answers
//! become bodies ([`render`], [`prometheus`], [`static_files`]). Handlers see the engine
//! only through its [`Handle`].

pub(crate) mod access;
pub(crate) mod connection;
pub(crate) mod files;
pub(crate) mod prometheus;
pub(crate) mod render;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod rooms;
pub(crate) mod routes;
pub(crate) mod server_api;
pub(crate) mod static_files;
pub(crate) mod upgrade;

use std::sync::Arc;

use hubbub_core::upgrade::AllowedOrigins;
use hubbub_core::ConnectionGauge;

use crate::engine::Handle;
use crate::figures::ServerFigures;
use static_files::StaticFiles;

/// What every HTTP handler of the process shares.
pub(crate) struct Site {
    /// The parsed origin allowlist of upgrades.
    pub origins: AllowedOrigins,
    /// Open connections and their limit, over every worker.
    pub gauge: ConnectionGauge,
    /// The dashboard.
    pub static_files: StaticFiles,
    /// The server's own figures (`/metrics`) and the HTTP connection count.
    pub figures: Arc<ServerFigures>,
    /// The DynamoDB bridge, with `STORE=dynamodb`: stored history and its figures.
    pub store: Option<Arc<hubbub_persist_bridge::Bridge>>,
    /// `API_KEY`: the server API answers only with it set, and only to it.
    pub api_key: Option<hubbub_core::auth::ApiKey>,
    /// The token checks, shared with every hub.
    pub auth: Arc<hubbub_core::auth::Authenticator>,
    /// The origins CORS grants ([`crate::config::Config::cors_origins`]).
    pub cors: AllowedOrigins,
    /// Signup and login, with `JWT_HS256_SECRET` set.
    pub accounts: Option<Arc<crate::accounts::Accounts>>,
    /// The message search index, unless `SEARCH=off`.
    pub search: Option<Arc<hubbub_search::SearchIndex>>,
    /// File sharing, unless `FILES=off`.
    pub files: Option<hubbub_files::Files>,
}

/// What one HTTP connection's handlers take: the process's site and its worker's engine.
#[derive(Clone)]
pub(crate) struct Context {
    /// Shared by every worker.
    pub site: Arc<Site>,
    /// This worker's engine.
    pub engine: Handle,
}
