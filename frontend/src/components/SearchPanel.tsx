import { memo, useId, useState } from 'react';
import type { JumpStatus, RoomSearch } from '../hooks/useSearch';
import { fileLabel } from '../lib/attachments';
import { highlight, SEARCH_QUERY_MAX } from '../lib/search';
import type { ChatMessage } from '../lib/types';

/** Text with the parts that match `query` in <mark>. */
export const Highlighted = memo(function Highlighted({ text, query }: { text: string; query: string }) {
  return (
    <>
      {highlight(text, query).map((s, i) => (s.match ? <mark key={i}>{s.text}</mark> : <span key={i}>{s.text}</span>))}
    </>
  );
});

function when(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

const JUMP_TEXT: Record<JumpStatus, string> = {
  finding: 'Finding the message in the room…',
  shown: '',
  missing: 'That message is no longer in the room’s history.',
  failed: 'Could not load the room’s history up to that message.',
};

export interface SearchPanelProps {
  search: RoomSearch;
  roomId: string;
  /** A result was picked: show it in the room. */
  onPick: (m: ChatMessage) => void;
  jump?: JumpStatus | null;
}

/** A search box for the room on screen, and its results (newest first) under it. */
export function SearchPanel({ search, roomId, onPick, jump }: SearchPanelProps) {
  const [text, setText] = useState('');
  const id = useId();
  const open = search.status !== 'idle';
  const submit = () => {
    const q = text.trim();
    if (q) search.search(q);
    else search.clear();
  };
  return (
    <div className="search" role="search" aria-label={`Search #${roomId}`}>
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <label className="sr-only" htmlFor={`${id}-q`}>
          Search messages in #{roomId}
        </label>
        <input
          id={`${id}-q`}
          type="search"
          data-testid="search-input"
          placeholder={`Search #${roomId}…`}
          maxLength={SEARCH_QUERY_MAX}
          value={text}
          autoComplete="off"
          spellCheck={false}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && open) {
              e.preventDefault();
              search.clear();
            }
          }}
          aria-controls={open ? `${id}-results` : undefined}
        />
        <button type="submit" className="btn btn-ghost btn-sm" data-testid="search-submit" disabled={!text.trim() || search.status === 'loading'}>
          Search
        </button>
      </form>
      {open && (
        <section className="search-results" id={`${id}-results`} data-testid="search-results" data-status={search.status} data-jump={jump ?? undefined} aria-label="Search results" aria-busy={search.status === 'loading'}>
          <header className="search-results-head">
            <span className="muted small" aria-live="polite">
              {search.status === 'loading'
                ? 'Searching…'
                : search.status === 'done'
                  ? `${search.results.length}${search.hasMore ? '+' : ''} result${search.results.length === 1 && !search.hasMore ? '' : 's'} for “${search.query}”`
                  : ''}
            </span>
            <button type="button" className="btn btn-ghost btn-xs" data-testid="search-close" aria-label="Close the search results" onClick={search.clear}>
              ✕
            </button>
          </header>
          {search.status === 'error' && search.error && (
            <p className="field-err small search-error" role="alert" data-testid="search-error" data-code={search.error.code}>
              {search.error.message}
            </p>
          )}
          {search.status === 'done' && search.results.length === 0 && (
            <p className="muted small search-empty" data-testid="search-empty">
              No messages match “{search.query}”. (A message sent in the last second may not be found yet.)
            </p>
          )}
          {search.results.length > 0 && (
            <ul className="search-list">
              {search.results.map((m) => (
                <li key={m.seq}>
                  <button type="button" className="search-result" data-testid="search-result" data-seq={m.seq} onClick={() => onPick(m)}>
                    <span className="search-result-meta">
                      <span className="msg-name">{m.username}</span>
                      <time dateTime={m.timestamp} title={new Date(m.timestamp).toLocaleString()}>
                        {when(m.timestamp)}
                      </time>
                    </span>
                    <span className="search-result-content">
                      <Highlighted text={m.content} query={search.query} />
                    </span>
                    {m.attachments && (
                      <span className="search-result-files muted small" data-testid="search-result-files">
                        📎 {m.attachments.map(fileLabel).join(', ')}
                      </span>
                    )}
                  </button>
                </li>
              ))}
            </ul>
          )}
          {search.status === 'done' && search.error && (
            <p className="field-err small" role="alert" data-testid="search-error" data-code={search.error.code}>
              Could not load more results: {search.error.message}
            </p>
          )}
          {search.status === 'done' && search.hasMore && (
            <button type="button" className="btn btn-ghost btn-sm search-more" data-testid="search-more" disabled={search.loadingMore} aria-busy={search.loadingMore} onClick={search.more}>
              {search.loadingMore ? 'Loading…' : 'More results'}
            </button>
          )}
          {jump && JUMP_TEXT[jump] && (
            <p className={`small ${jump === 'finding' ? 'muted' : 'field-err'}`} data-testid="search-jump" data-status={jump} role={jump === 'finding' ? 'status' : 'alert'}>
              {JUMP_TEXT[jump]}
            </p>
          )}
        </section>
      )}
    </div>
  );
}
