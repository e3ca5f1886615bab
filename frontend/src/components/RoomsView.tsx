import { useId, useMemo, useState } from 'react';
import type { RoomAdmin, RoomInfo } from '../hooks/useRoomAdmin';
import type { V2ChatState } from '../hooks/useV2Chat';
import { formatInt, validateRoom, validateUsername } from '../lib/text';
import type { RoomView } from '../lib/v2client';
import { lastSeenLabel, roomPeople, roomRefusalText, seenByMarkers, typingText } from '../lib/v2view';
import { Avatar } from './Avatar';
import { Composer } from './Composer';
import { ConnIndicator } from './ConnIndicator';
import { ErrorBar } from './ErrorBar';
import { MessageList } from './MessageList';
import { RoomAdminPanel } from './RoomAdminPanel';
import { useAttachments } from '../hooks/useAttachments';
import { useFileDrop } from '../hooks/useFileDrop';
import { useHistory } from '../hooks/useHistory';
import { useJump, useSearch } from '../hooks/useSearch';
import { SearchPanel } from './SearchPanel';
import { TokenField } from './TokenField';

const NO_ITEMS: RoomView['items'] = [];

/** Rooms typed as "a, b c": split, de-duplicated, in order. */
export function parseRoomList(text: string): string[] {
  const out: string[] = [];
  for (const r of text.split(/[\s,]+/)) if (r && !out.includes(r)) out.push(r);
  return out;
}

export function RoomsJoinForm({ initialUsername, initialRooms, onJoin }: { initialUsername: string; initialRooms: string; onJoin: (username: string, rooms: string[]) => void }) {
  const [username, setUsername] = useState(initialUsername);
  const [rooms, setRooms] = useState(initialRooms);
  const [touched, setTouched] = useState(false);
  const id = useId();
  const list = parseRoomList(rooms);
  const userErr = validateUsername(username);
  const roomErr = list.length === 0 ? 'Name at least one room.' : list.map((r) => validateRoom(r) && `#${r}: ${validateRoom(r)}`).find(Boolean) || null;
  return (
    <main className="join" id="main" tabIndex={-1}>
      <form
        className="card join-card"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (!userErr && !roomErr) onJoin(username.trim(), list);
        }}
      >
        <h1>Open rooms</h1>
        <p className="muted">Several rooms over one connection (protocol v2): unread counts, typing, read markers and who is online.</p>
        <div className="field">
          <label htmlFor={`${id}-user`}>Display name</label>
          <input id={`${id}-user`} data-testid="v2-username" autoComplete="nickname" maxLength={200} value={username} onChange={(e) => setUsername(e.target.value)} aria-invalid={touched && !!userErr} aria-describedby={`${id}-user-err`} />
          <span id={`${id}-user-err`} className="field-err">
            {touched ? userErr : ''}
          </span>
        </div>
        <div className="field">
          <label htmlFor={`${id}-rooms`}>Rooms</label>
          <input id={`${id}-rooms`} data-testid="v2-rooms" value={rooms} autoCapitalize="none" spellCheck={false} onChange={(e) => setRooms(e.target.value)} aria-invalid={touched && !!roomErr} aria-describedby={`${id}-rooms-hint ${id}-rooms-err`} />
          <span id={`${id}-rooms-hint`} className="field-hint">
            Separated by commas or spaces
          </span>
          <span id={`${id}-rooms-err`} className="field-err">
            {touched ? roomErr : ''}
          </span>
        </div>
        <TokenField />
        <button type="submit" className="btn btn-primary btn-block" data-testid="v2-join">
          Open {list.length === 1 ? `#${list[0]}` : `${list.length} rooms`}
        </button>
      </form>
    </main>
  );
}

function RoomList({ chat, admin }: { chat: V2ChatState; admin?: RoomAdmin }) {
  const [draft, setDraft] = useState('');
  const err = draft ? validateRoom(draft) : null;
  const limit = chat.state.hello?.limits.subscriptions;
  const full = limit != null && chat.state.rooms.length >= limit;
  return (
    <nav className="v2-rooms card" aria-label="Rooms">
      <h2>Rooms</h2>
      <ul data-testid="room-list">
        {chat.state.rooms.map((r) => (
          <RoomItem key={r.roomId} room={r} info={admin?.info.get(r.roomId)} active={r.roomId === chat.active} onOpen={() => chat.setActive(r.roomId)} onClose={() => chat.closeRoom(r.roomId)} />
        ))}
      </ul>
      <form
        className="v2-add"
        onSubmit={(e) => {
          e.preventDefault();
          if (draft && !err && chat.addRoom(draft)) setDraft('');
        }}
      >
        <label className="sr-only" htmlFor="v2-add-room">
          Add a room
        </label>
        <input id="v2-add-room" data-testid="add-room-input" placeholder="Add a room…" value={draft} autoCapitalize="none" spellCheck={false} onChange={(e) => setDraft(e.target.value.trim())} aria-invalid={!!err} title={err ?? undefined} />
        <button type="submit" className="btn btn-ghost btn-sm" data-testid="add-room" disabled={!draft || !!err || full} title={full ? `At most ${limit} rooms per connection` : undefined}>
          Add
        </button>
      </form>
      {admin?.me && <RoomAdminPanel admin={admin} roomId={chat.activeRoom?.roomId ?? null} />}
    </nav>
  );
}

function RoomItem({ room, info, active, onOpen, onClose }: { room: RoomView; info?: RoomInfo; active: boolean; onOpen: () => void; onClose: () => void }) {
  // a room made through the Rooms API has a name of its own (its id is "r-…")
  const name = info && info.name !== room.roomId ? info.name : `#${room.roomId}`;
  const label = room.unread > 0 ? `${name}, ${room.unread} unread` : name;
  return (
    <li className={`v2-room${active ? ' active' : ''}`}>
      <button
        type="button"
        className="v2-room-open"
        data-testid="room-item"
        data-room={room.roomId}
        data-state={room.status}
        data-unread={room.unread}
        aria-current={active ? 'true' : undefined}
        aria-label={label}
        title={room.error ? `${room.error.code}: ${room.error.message}` : name !== `#${room.roomId}` ? `#${room.roomId}` : undefined}
        onClick={onOpen}
      >
        <span className={`v2-room-dot st-${room.status}`} aria-hidden="true" />
        <span className="room-name">{name}</span>
        {room.unread > 0 && (
          <span className="unread-badge" data-testid="unread">
            {room.unread > 999 ? '999+' : room.unread}
          </span>
        )}
      </button>
      <button type="button" className="btn btn-ghost btn-xs" data-testid="room-close" aria-label={`Close ${name}`} onClick={onClose}>
        ✕
      </button>
    </li>
  );
}

function People({ room, chat }: { room: RoomView; chat: V2ChatState }) {
  const { online, offline } = useMemo(() => roomPeople(room, chat.state), [room, chat.state]);
  const now = new Date();
  return (
    <aside className="presence card" aria-label="Who is online">
      <h2>
        Online <span className="count" data-testid="online-count">{formatInt(Math.max(room.online, online.length))}</span>
      </h2>
      <ul data-testid="online-list">
        {online.slice(0, 200).map((p) => (
          <li key={p.userId} data-testid="v2-member" data-user={p.userId} data-online="true">
            <Avatar id={p.userId} name={p.username} size={26} />
            <span className="member-name">{p.username}</span>
            {p.self && <span className="you">you</span>}
            <span className="v2-online-dot" aria-label="online" />
          </li>
        ))}
      </ul>
      {offline.length > 0 && (
        <>
          <h2 className="v2-offline-head">Offline</h2>
          <ul data-testid="offline-list">
            {offline.slice(0, 200).map((p) => (
              <li key={p.userId} data-testid="v2-member" data-user={p.userId} data-online="false" className="offline">
                <Avatar id={p.userId} name={p.username} size={26} />
                <span className="v2-member-text">
                  <span className="member-name">{p.username}</span>
                  <span className="muted small" data-testid="last-seen" title={p.lastSeen ?? undefined}>
                    {lastSeenLabel(p.lastSeen, now)}
                  </span>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </aside>
  );
}

export function RoomsView({ chat, admin, username, onLeave }: { chat: V2ChatState; admin?: RoomAdmin; username: string; onLeave: () => void }) {
  const room = chat.activeRoom;
  const roomName = room ? admin?.info.get(room.roomId)?.name : undefined;
  const open = chat.state.status.status === 'open';
  const selfId = chat.state.selfId;
  const seen = useMemo(() => (room ? seenByMarkers(room, selfId, chat.state.names) : undefined), [room, selfId, chat.state.names]);
  const typing = room ? typingText(room.typing, selfId, room.typingCount) : '';
  const { items, history } = useHistory(chat.http, room?.roomId ?? null, room?.items ?? NO_ITEMS);
  const search = useSearch(chat.http, room?.roomId ?? null);
  const jumps = useJump(room?.roomId ?? null);
  const files = useAttachments(chat.http, room?.roomId ?? null);
  const drop = useFileDrop(files.add, !!room);
  return (
    <main className="chat v2" id="main" tabIndex={-1}>
      <RoomList chat={chat} admin={admin} />
      <section className={`chat-main card${drop.dragging ? ' dropping' : ''}`} aria-label={room ? `Room ${room.roomId}` : 'No room'} data-testid="drop-target" {...drop.handlers}>
        {drop.dragging && room && (
          <div className="dropzone" data-testid="drop-zone" aria-hidden="true">
            <span>Drop files to share them in #{room.roomId}</span>
          </div>
        )}
        <header className="chat-head">
          <div className="chat-title">
            <h1 data-testid="v2-room-title">{room ? `#${room.roomId}` : 'No room open'}</h1>
            <span className="muted small">
              {roomName && roomName !== room?.roomId && <span data-testid="v2-room-name">{roomName} · </span>}
              as <strong>{username}</strong>
              {room && ` · ${formatInt(room.online)} online`}
            </span>
          </div>
          <div className="chat-actions">
            <ConnIndicator info={chat.state.status} onRetry={chat.retryNow} />
            <button type="button" className="btn btn-ghost btn-sm" onClick={onLeave} data-testid="v2-leave">
              Leave
            </button>
          </div>
        </header>
        {room ? (
          <>
            {room.status === 'failed' && room.error && (
              <p className="v2-room-error" role="alert" data-testid="room-error">
                Could not open #{room.roomId}: {room.error.code} — {roomRefusalText(room.error.code, room.roomId) ?? room.error.message}
              </p>
            )}
            <SearchPanel key={`search:${room.roomId}`} search={search} roomId={room.roomId} onPick={jumps.pick} jump={jumps.status} />
            <MessageList key={`list:${room.roomId}`} items={items} selfId={selfId} seenBy={seen} history={history} jumpTo={jumps.target} onJump={jumps.report} http={chat.http} />
            {room.pending.length > 0 && (
              <ul className="v2-pending" aria-label="Sending">
                {room.pending.map((p) => (
                  <li key={p.clientMsgId} data-testid="pending">
                    <span className="muted small">sending…</span> {p.content}
                    {p.attachments?.length ? <span className="muted small"> 📎 {p.attachments.map((a) => a.name ?? a.fileId).join(', ')}</span> : null}
                  </li>
                ))}
              </ul>
            )}
            <div className="v2-typing" data-testid="typing" aria-live="polite">
              {typing}
            </div>
            <ErrorBar errors={chat.errors} onDismiss={chat.dismissError} />
            <Composer key={`composer:${room.roomId}`} canSend={open && room.status === 'subscribed'} onSend={chat.send} onTextChange={chat.typed} onBlur={chat.stopTyping} files={files} />
          </>
        ) : (
          <>
            <div className="msglist-empty">Add a room to start.</div>
            <ErrorBar errors={chat.errors} onDismiss={chat.dismissError} />
          </>
        )}
      </section>
      {room && <People room={room} chat={chat} />}
    </main>
  );
}
