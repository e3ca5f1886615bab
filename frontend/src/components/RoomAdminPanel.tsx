import { useEffect, useId, useState } from 'react';
import type { RoomAdmin } from '../hooks/useRoomAdmin';
import { parseMembers, ROOM_NAME_MAX, VISIBILITIES, type NewRoom, type Visibility } from '../lib/roomsApi';

/** A new room: name, visibility and (optional) members, comma-separated. */
export function CreateRoomForm({ busy, onCreate }: { busy: boolean; onCreate: (room: NewRoom) => Promise<boolean> }) {
  const [name, setName] = useState('');
  const [visibility, setVisibility] = useState<Visibility>('private');
  const [members, setMembers] = useState('');
  const id = useId();
  const trimmed = name.trim();
  const tooLong = Array.from(trimmed).length > ROOM_NAME_MAX;
  return (
    <form
      className="v2-manage-form"
      aria-label="Create a room"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!trimmed || tooLong || busy) return;
        if (await onCreate({ name: trimmed, visibility, members: parseMembers(members) })) {
          setName('');
          setMembers('');
        }
      }}
    >
      <label className="sr-only" htmlFor={`${id}-name`}>
        Room name
      </label>
      <input id={`${id}-name`} data-testid="room-create-name" placeholder="New room name…" value={name} maxLength={ROOM_NAME_MAX * 2} onChange={(e) => setName(e.target.value)} aria-invalid={tooLong} title={tooLong ? `At most ${ROOM_NAME_MAX} characters` : undefined} />
      <div className="v2-add">
        <label className="sr-only" htmlFor={`${id}-vis`}>
          Visibility
        </label>
        <select id={`${id}-vis`} data-testid="room-create-visibility" value={visibility} onChange={(e) => setVisibility(e.target.value as Visibility)}>
          {VISIBILITIES.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
        <button type="submit" className="btn btn-ghost btn-sm" data-testid="room-create-submit" disabled={!trimmed || tooLong || busy}>
          Create
        </button>
      </div>
      <label className="sr-only" htmlFor={`${id}-members`}>
        Members (user ids, comma-separated)
      </label>
      <input id={`${id}-members`} data-testid="room-create-members" placeholder="Members: bob, carol (optional)" value={members} autoCapitalize="none" spellCheck={false} onChange={(e) => setMembers(e.target.value)} />
    </form>
  );
}

/** One user id and a button: invite to the open room, or message directly. */
function UserForm({ label, placeholder, button, testid, busy, onSubmit }: { label: string; placeholder: string; button: string; testid: string; busy: boolean; onSubmit: (userId: string) => Promise<boolean> }) {
  const [user, setUser] = useState('');
  const id = useId();
  return (
    <form
      className="v2-add"
      aria-label={label}
      onSubmit={async (e) => {
        e.preventDefault();
        if (user && !busy && (await onSubmit(user))) setUser('');
      }}
    >
      <label className="sr-only" htmlFor={id}>
        {label}
      </label>
      <input id={id} data-testid={`${testid}-user`} placeholder={placeholder} value={user} autoCapitalize="none" spellCheck={false} onChange={(e) => setUser(e.target.value.trim())} />
      <button type="submit" className="btn btn-ghost btn-sm" data-testid={`${testid}-submit`} disabled={!user || busy}>
        {button}
      </button>
    </form>
  );
}

/** Delete, after a second click within a few seconds. */
function DeleteButton({ busy, roomLabel, onDelete }: { busy: boolean; roomLabel: string; onDelete: () => void }) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return;
    const t = setTimeout(() => setArmed(false), 4_000);
    return () => clearTimeout(t);
  }, [armed]);
  return (
    <button
      type="button"
      className="btn btn-ghost btn-xs v2-danger"
      data-testid="room-delete"
      data-armed={armed}
      disabled={busy}
      aria-label={armed ? `Really delete ${roomLabel}?` : `Delete ${roomLabel}`}
      onClick={() => {
        if (!armed) return setArmed(true);
        setArmed(false);
        onDelete();
      }}
    >
      {armed ? 'Really delete?' : 'Delete'}
    </button>
  );
}

/**
 * Rooms management, for a token's user: create a room, invite to or leave the open room
 * (delete it when we are its admin), message a user directly.
 */
export function RoomAdminPanel({ admin, roomId }: { admin: RoomAdmin; roomId: string | null }) {
  const info = roomId ? admin.info.get(roomId) : undefined;
  const roomLabel = roomId ? (info?.name ?? `#${roomId}`) : '';
  return (
    <section className="v2-manage" aria-label="Manage rooms" data-testid="rooms-panel" data-listed={admin.listed}>
      <h2>Manage</h2>
      <CreateRoomForm busy={admin.busy} onCreate={admin.create} />
      {roomId && (
        <div className="v2-manage-room" aria-label={`Open room: ${roomLabel}`}>
          <span className="muted small v2-manage-label" title={`#${roomId}`}>
            {roomLabel}
            {info && ` · ${info.visibility}`}
          </span>
          <UserForm label={`Invite a user to ${roomLabel}`} placeholder="Invite user id…" button="Invite" testid="room-invite" busy={admin.busy} onSubmit={(u) => admin.invite(roomId, u)} />
          <div className="v2-manage-buttons">
            <button type="button" className="btn btn-ghost btn-xs" data-testid="room-leave" disabled={admin.busy} aria-label={`Leave ${roomLabel} (stop being a member)`} onClick={() => void admin.leave(roomId)}>
              Leave room
            </button>
            {info?.role === 'admin' && <DeleteButton busy={admin.busy} roomLabel={roomLabel} onDelete={() => void admin.remove(roomId)} />}
          </div>
        </div>
      )}
      <UserForm label="Message a user directly" placeholder="Message user id…" button="Message" testid="dm" busy={admin.busy} onSubmit={admin.message} />
      <p className="muted small v2-manage-done" data-testid="room-admin-done" aria-live="polite">
        {admin.done}
      </p>
    </section>
  );
}
