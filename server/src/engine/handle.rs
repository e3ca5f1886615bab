//! What the HTTP side may ask of the engine: admit an upgrade, hand over an upgraded
//! connection, ask the hubs a question. Nothing else of the engine is reachable from it.

use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use hubbub_core::upgrade::{Refusal, UpgradeRequest};
use hubbub_core::{Admission, Answer, Query, QueryId};
use monoio::net::TcpStream;

use super::Engine;

/// How long an HTTP question waits for every worker's part of the answer.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The engine as the HTTP handlers see it; cheap to clone (one per connection task).
#[derive(Clone)]
pub(crate) struct Handle(Rc<Engine>);

impl Engine {
    /// The handle for this engine's HTTP side.
    pub(crate) fn handle(self: &Rc<Self>) -> Handle {
        Handle(self.clone())
    }
}

impl Handle {
    /// Decides an upgrade request (shutdown, origin, parameters, token, capacity).
    pub(crate) fn admit(&self, request: &UpgradeRequest<'_>) -> Result<Admission, Refusal> {
        // A decision with no outputs: nothing to drain after it.
        self.0.hub.borrow().admit(self.0.now(), request)
    }

    /// Takes over a connection whose 101 has been written: the hub opens it, the session
    /// table watches its socket, and `early` (bytes that came with the upgrade request)
    /// is decoded at once. A socket that cannot be watched is closed.
    pub(crate) fn open(&self, admission: Admission, stream: TcpStream, mut early: Vec<u8>) {
        let engine = &self.0;
        let opened = engine.with_hub(|hub, now| {
            let conn = hub.handle_open(now, admission);
            match engine.attach(stream, conn) {
                Ok(()) => Some(conn),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch a new connection; closing it");
                    hub.handle_close(now, conn);
                    None
                }
            }
        });
        if let Some(conn) = opened {
            if !early.is_empty() {
                engine.decode(conn, &mut early);
            }
        }
    }

    /// Asks the hubs a question; resolves when every worker involved has answered, or
    /// with `None` after [`QUERY_TIMEOUT`].
    pub(crate) async fn query(&self, query: Query) -> Option<Answer> {
        let engine = &self.0;
        let id = engine.next_query.get();
        engine.next_query.set(id + 1);
        let (tx, rx) = oneshot::channel();
        engine.queries.borrow_mut().insert(id, tx);
        engine.with_hub(|hub, now| hub.handle_query(now, QueryId(id), query));
        match monoio::time::timeout(QUERY_TIMEOUT, rx).await {
            Ok(Ok(answer)) => Some(answer),
            _ => {
                // A worker did not answer (wedged, or overloaded past reason): the HTTP
                // client gets a 503 instead of waiting forever. A late answer is dropped.
                engine.queries.borrow_mut().remove(&id);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use hubbub_core::{ConnectionGauge, HubConfig, WorkerId};

    use super::*;
    use crate::engine::host::NoStore;
    use crate::engine::mesh::Mesh;
    use crate::engine::Parts;
    use crate::figures::ServerFigures;

    #[test]
    fn a_question_a_worker_never_answers_times_out() {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            // Two workers in the mesh, but only the first ever runs.
            let engine = Engine::new(Parts {
                hub: HubConfig::new(WorkerId(0), 2),
                gauge: ConnectionGauge::new(10),
                persist: None,
                host: Box::new(NoStore),
                mesh: Mesh::new(2, 16),
                epoch: Instant::now(),
                figures: Arc::new(ServerFigures::new(2)),
                shared: None,
            })
            .unwrap();
            let started = Instant::now();
            assert!(engine.handle().query(Query::Stats).await.is_none());
            let waited = started.elapsed();
            assert!(
                waited >= QUERY_TIMEOUT && waited < QUERY_TIMEOUT * 2,
                "{waited:?}"
            );
            assert!(engine.queries.borrow().is_empty(), "nothing left waiting");
        });
    }
}
