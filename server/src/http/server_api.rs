//! `POST /api/server/{publish,disconnect,unsubscribe}` (PROTOCOL.md §4.2): a backend's
//! requests, allowed only with `API_KEY` set and presented.

use hubbub_core::protocol::{BodyError, DisconnectRequest, PublishRequest, UnsubscribeRequest};
use hubbub_core::{Answer, Query};

use super::request::Head;
use super::response::Response;
use super::{render, Context};

/// What a server API request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Publish,
    Disconnect,
    Unsubscribe,
}

impl Action {
    /// The action at `name` in `/api/server/{name}`.
    pub(crate) fn named(name: &str) -> Option<Action> {
        match name {
            "publish" => Some(Action::Publish),
            "disconnect" => Some(Action::Disconnect),
            "unsubscribe" => Some(Action::Unsubscribe),
            _ => None,
        }
    }

    fn query(self, body: &[u8]) -> Result<Query, BodyError> {
        Ok(match self {
            Action::Publish => Query::Publish(PublishRequest::decode(body)?),
            Action::Disconnect => Query::Disconnect(DisconnectRequest::decode(body)?),
            Action::Unsubscribe => Query::Unsubscribe(UnsubscribeRequest::decode(body)?),
        })
    }

    /// The key of the count in a disconnect or unsubscribe answer.
    fn count_key(self) -> &'static str {
        match self {
            Action::Publish => "published",
            Action::Disconnect => "disconnected",
            Action::Unsubscribe => "unsubscribed",
        }
    }
}

/// Answers a POST to the server API (the method is checked by the caller).
pub(crate) async fn handle(ctx: &Context, action: Action, head: &Head, body: &[u8]) -> Response {
    let Some(key) = &ctx.site.api_key else {
        return Response::error(
            404,
            "not_found",
            "the server API is off: the server runs without API_KEY",
        );
    };
    if !key.authorizes(head.authorization.as_deref()) {
        return Response::error(
            401,
            "unauthorized",
            "the server API needs the header Authorization: apikey <API_KEY>",
        )
        .header("WWW-Authenticate", "apikey");
    }
    let query = match action.query(body) {
        Ok(query) => query,
        Err(e) => return Response::error(400, e.code(), &e.to_string()),
    };
    match ctx.engine.query(query).await {
        Some(Answer::Affected(n)) => {
            Response::json(200, format!("{{\"{}\":{n}}}", action.count_key()))
        }
        Some(answer) => render::answer(&answer),
        None => render::unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_by_name() {
        assert_eq!(Action::named("publish"), Some(Action::Publish));
        assert_eq!(Action::named("unsubscribe"), Some(Action::Unsubscribe));
        assert_eq!(Action::named("Publish"), None);
        assert_eq!(Action::Disconnect.count_key(), "disconnected");
        assert!(matches!(
            Action::Unsubscribe.query(br#"{"userId":"u"}"#),
            Err(BodyError::InvalidRoom)
        ));
    }
}
