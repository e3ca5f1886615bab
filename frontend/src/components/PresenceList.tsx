import { presenceCount, sortedMembers, type Presence } from '../lib/presence';
import { Avatar } from './Avatar';

const CAP = 200;

function sinceLabel(since: string | undefined): string | undefined {
  const t = since ? Date.parse(since) : NaN;
  return Number.isFinite(t) ? `here since ${new Date(t).toLocaleTimeString()}` : undefined;
}

export function PresenceList({ presence, selfId }: { presence: Presence; selfId: string }) {
  const members = sortedMembers(presence, selfId);
  const shown = members.slice(0, CAP);
  // the server's count: it includes users beyond those listed (a truncated answer)
  const online = presenceCount(presence);
  return (
    <aside className="presence card" aria-label="Who is here">
      <h2>
        Here now <span className="count" data-testid="presence-count">{online.toLocaleString()}</span>
      </h2>
      <ul data-testid="presence">
        {shown.map((m) => (
          <li key={m.userId} data-testid="member" title={sinceLabel(m.since)}>
            <Avatar id={m.userId} name={m.username} size={26} />
            <span className="member-name">{m.username}</span>
            {m.userId === selfId && <span className="you">you</span>}
          </li>
        ))}
      </ul>
      {online > shown.length && (
        <p className="muted small" data-testid="presence-more">
          and {(online - shown.length).toLocaleString()} more
        </p>
      )}
    </aside>
  );
}
