import { sortedMembers, type Presence } from '../lib/presence';
import { Avatar } from './Avatar';

const CAP = 200;

export function PresenceList({ presence, selfId }: { presence: Presence; selfId: string }) {
  const members = sortedMembers(presence, selfId);
  const shown = members.slice(0, CAP);
  return (
    <aside className="presence card" aria-label="Who is here">
      <h2>
        Here now <span className="count">{members.length}</span>
      </h2>
      <ul data-testid="presence">
        {shown.map((m) => (
          <li key={m.userId} data-testid="member">
            <Avatar id={m.userId} name={m.username} size={26} />
            <span className="member-name">{m.username}</span>
            {m.userId === selfId && <span className="you">you</span>}
          </li>
        ))}
      </ul>
      {members.length > CAP && <p className="muted small">and {members.length - CAP} more</p>}
    </aside>
  );
}
