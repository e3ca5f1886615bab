import type { InlineError } from '../hooks/useChat';

const FRIENDLY: Record<string, string> = {
  rate_limited: 'Slow down — you are sending too fast; that message was dropped.',
  content_too_long: 'That message is over the 1,000 character limit.',
  empty_content: 'Empty messages are not sent.',
  overloaded: 'The server is overloaded and did not accept that message. Try again shortly.',
  invalid_json: 'The server could not read that message.',
  invalid_type: 'The server rejected that message type.',
  // a message sharing files (v2 Rooms): it was not sent
  file_not_found: 'A file of that message is not on the server (its upload did not finish, or it expired); the message was not sent.',
  file_too_large: 'A file of that message is too large; the message was not sent.',
  too_many_attachments: 'At most 4 files per message; the message was not sent.',
  invalid_attachments: 'The server could not use the files of that message; it was not sent.',
  files_unavailable: 'File sharing is not available right now; the message was not sent. Try again shortly.',
};

export function ErrorBar({ errors, onDismiss }: { errors: InlineError[]; onDismiss: (id: number) => void }) {
  return (
    <div className="errorbar" role="alert" aria-live="assertive">
      {errors.map((e) => (
        <div key={e.id} className={`inline-error err-${e.code}`} data-testid="inline-error" data-code={e.code}>
          <span className="err-code">{e.code}</span>
          <span className="err-text">{FRIENDLY[e.code] ?? e.message}</span>
          <button type="button" className="btn btn-ghost btn-xs" onClick={() => onDismiss(e.id)} aria-label={`Dismiss ${e.code} error`}>
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}
