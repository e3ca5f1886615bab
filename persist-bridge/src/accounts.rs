//! Accounts in the state table: `PK = "account#<userId>"`, `SK = "account"`, with
//! `Username` (as signed up), `Hash` (an argon2id PHC string) and `CreatedAt` (N, Unix
//! ms). A signup is a conditional put: of two racing for one name, one wins.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::dynamo::{classify, query_error};
use crate::error::QueryError;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredAccount {
    /// The user id (the username in lower case).
    pub user_id: String,
    /// The username as signed up.
    pub username: String,
    /// The password's argon2id hash (PHC string format).
    pub hash: String,
    /// When it was created, Unix ms.
    pub created_at: u64,
}

fn key(user_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "PK".to_owned(),
            AttributeValue::S(format!("account#{user_id}")),
        ),
        ("SK".to_owned(), AttributeValue::S("account".to_owned())),
    ])
}

/// The account of `user_id`, if there is one.
pub(crate) async fn get(
    client: &Client,
    table: &str,
    user_id: &str,
) -> Result<Option<StoredAccount>, QueryError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(user_id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| query_error(classify(&e)))?;
    let Some(item) = out.item() else {
        return Ok(None);
    };
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(QueryError::Service(format!(
            "account item of {user_id} lacks {name}"
        ))),
    };
    let created_at = match item.get("CreatedAt") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    };
    Ok(Some(StoredAccount {
        user_id: user_id.to_owned(),
        username: text("Username")?,
        hash: text("Hash")?,
        created_at,
    }))
}

/// Stores `account` unless its user id is taken: `Ok(false)` when it is.
pub(crate) async fn create(
    client: &Client,
    table: &str,
    account: &StoredAccount,
) -> Result<bool, QueryError> {
    let mut item = key(&account.user_id);
    item.insert(
        "Username".to_owned(),
        AttributeValue::S(account.username.clone()),
    );
    item.insert("Hash".to_owned(), AttributeValue::S(account.hash.clone()));
    item.insert(
        "CreatedAt".to_owned(),
        AttributeValue::N(account.created_at.to_string()),
    );
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .send()
        .await;
    match put {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(query_error(classify(&e))),
    }
}
