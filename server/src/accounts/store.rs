//! Where accounts live: in memory with the memory store (gone at restart, like its
//! history), in the DynamoDB state table with `STORE=dynamodb`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hubbub_persist_bridge::{Bridge, StoredAccount};

/// The store did not answer.
#[derive(Debug)]
pub struct Unavailable;

/// The accounts' store.
pub enum AccountStore {
    /// By user id.
    Memory(Mutex<HashMap<String, StoredAccount>>),
    /// The state table.
    Dynamo(Arc<Bridge>),
}

/// The bridge's answer, or `Unavailable` (logged) when it failed or its thread is gone.
fn answered<T>(
    answer: Result<
        Result<T, hubbub_persist_bridge::QueryError>,
        futures_channel::oneshot::Canceled,
    >,
    what: &str,
) -> Result<T, Unavailable> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "account {what} failed");
            Err(Unavailable)
        }
        Err(_) => Err(Unavailable),
    }
}

impl AccountStore {
    /// The account of `user_id`.
    pub async fn get(&self, user_id: &str) -> Result<Option<StoredAccount>, Unavailable> {
        match self {
            AccountStore::Memory(m) => Ok(m.lock().map_err(|_| Unavailable)?.get(user_id).cloned()),
            AccountStore::Dynamo(bridge) => answered(bridge.account(user_id).await, "lookup"),
        }
    }

    /// Stores `account` unless its user id is taken (`Ok(false)`).
    pub async fn create(&self, account: StoredAccount) -> Result<bool, Unavailable> {
        match self {
            AccountStore::Memory(m) => {
                let mut m = m.lock().map_err(|_| Unavailable)?;
                if m.contains_key(&account.user_id) {
                    return Ok(false);
                }
                m.insert(account.user_id.clone(), account);
                Ok(true)
            }
            AccountStore::Dynamo(bridge) => {
                answered(bridge.create_account(account).await, "creation")
            }
        }
    }
}
