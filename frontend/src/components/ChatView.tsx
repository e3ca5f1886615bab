import type { ChatState, Session } from '../hooks/useChat';
import { Announcer } from './Announcer';
import { Composer } from './Composer';
import { ConnIndicator } from './ConnIndicator';
import { ErrorBar } from './ErrorBar';
import { MessageList } from './MessageList';
import { useHistory } from '../hooks/useHistory';
import { useJump, useSearch } from '../hooks/useSearch';
import { SearchPanel } from './SearchPanel';
import { PresenceList } from './PresenceList';
import { presenceCount } from '../lib/presence';

export function ChatView({ session, chat, onLeave }: { session: Session; chat: ChatState; onLeave: () => void }) {
  const open = chat.status.status === 'open';
  const { items, history } = useHistory(chat.http, session.room, chat.log.items);
  const search = useSearch(chat.http, session.room);
  const jumps = useJump(session.room);
  return (
    <main className="chat" id="main" tabIndex={-1}>
      <section className="chat-main card" aria-label={`Room ${session.room}`}>
        <header className="chat-head">
          <div className="chat-title">
            <h1>#{session.room}</h1>
            <span className="muted small">
              as <strong>{session.username}</strong> · {presenceCount(chat.presence).toLocaleString()} here
            </span>
          </div>
          <div className="chat-actions">
            <ConnIndicator info={chat.status} onRetry={chat.retryNow} />
            <button type="button" className="btn btn-ghost btn-sm" onClick={onLeave} data-testid="leave">
              Leave
            </button>
          </div>
        </header>
        <SearchPanel key={`search:${session.room}`} search={search} roomId={session.room} onPick={jumps.pick} jump={jumps.status} />
        <MessageList items={items} selfId={session.userId} history={history} jumpTo={jumps.target} onJump={jumps.report} http={chat.http} />
        <Announcer items={chat.log.items} selfId={session.userId} />
        <ErrorBar errors={chat.errors} onDismiss={chat.dismissError} />
        <Composer canSend={open} onSend={chat.send} />
      </section>
      <PresenceList presence={chat.presence} selfId={session.userId} />
    </main>
  );
}
