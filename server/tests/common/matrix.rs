//! The matrix most black-box tests run on: WORKERS=1 and 2, each on the memory store and
//! (where a test asks) on DynamoDB against dynalite.

use hubbub_test_support::dynalite::Dynalite;

use super::v2::{self, V2};
use super::{dynamodb_env, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Memory,
    DynamoDb,
}

/// The memory store only.
pub const MEMORY: &[Store] = &[Store::Memory];
/// The memory store, then DynamoDB (dynalite).
pub const BOTH: &[Store] = &[Store::Memory, Store::DynamoDb];

/// One server of a test's matrix.
pub struct Run {
    pub server: Server,
    pub workers: u16,
    pub store: Store,
}

impl Run {
    /// One room per worker, named after `tag`.
    pub fn rooms(&self, tag: &str) -> Vec<String> {
        v2::rooms(tag, self.workers)
    }

    /// A v2 connection with `query` (`proto=2` is added).
    pub fn connect(&self, query: &str) -> V2 {
        V2::connect(&self.server, query)
    }
}

/// Runs `body` against a fresh server with `env` for each store of `stores` and
/// WORKERS=1 and 2. DynamoDB runs share one dynalite, each with its own table.
pub fn each_run(test: &str, stores: &[Store], env: &[(&str, &str)], body: impl Fn(&Run)) {
    let db = stores.contains(&Store::DynamoDb).then(Dynalite::start);
    for &store in stores {
        for workers in [1, 2] {
            eprintln!("-- {test}: WORKERS={workers} STORE={store:?}");
            let mut vars: Vec<(&str, String)> =
                env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            if let (Store::DynamoDb, Some(db)) = (store, &db) {
                vars.extend(dynamodb_env(&db.endpoint(), &format!("{test}-{workers}")));
            }
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let server = Server::start(workers, &vars);
            if store == Store::DynamoDb {
                server.wait_for_storage();
            }
            body(&Run {
                server,
                workers,
                store,
            });
        }
    }
}
