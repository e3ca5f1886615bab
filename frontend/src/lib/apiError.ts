/**
 * A request to the server's HTTP API that did not give what was asked: the server's
 * `error` code (`http_<status>` when its answer has none, or the client's own
 * `network` / `timeout` / `aborted` / `invalid_response`), a sentence, and the HTTP
 * status (null: no answer). Each client (rooms, search, files, uploads) has its own
 * subclass, so a caller can tell whose request failed.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}
