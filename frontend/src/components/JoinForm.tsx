import { useEffect, useId, useState } from 'react';
import { server } from '../lib/config';
import { apiHeaders } from '../lib/token';
import { TokenField } from './TokenField';
import { formatInt, validateRoom, validateUsername } from '../lib/text';
import type { RoomSummary } from '../lib/types';

export interface JoinFormProps {
  initialUsername: string;
  initialRoom: string;
  onJoin: (username: string, room: string) => void;
}

function useRooms(): { rooms: RoomSummary[] | null; error: boolean; locked: boolean } {
  const [rooms, setRooms] = useState<RoomSummary[] | null>(null);
  const [error, setError] = useState(false);
  const [locked, setLocked] = useState(false);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout>;
    const load = async () => {
      try {
        if (document.visibilityState !== 'hidden') {
          const r = await fetch(`${server().http}/api/rooms`, { headers: apiHeaders() });
          if (r.status === 401) {
            // The server has sign-in: the list needs a token (typed below, or wrong).
            if (!stop) setLocked(true);
            throw new Error('401');
          }
          if (!r.ok) throw new Error(String(r.status));
          const body = (await r.json()) as { rooms?: RoomSummary[] };
          if (!stop) setLocked(false);
          if (!stop) {
            setRooms(Array.isArray(body.rooms) ? body.rooms : []);
            setError(false);
          }
        }
      } catch {
        if (!stop) setError(true);
      }
      if (!stop) timer = setTimeout(load, 5000);
    };
    void load();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);
  return { rooms, error, locked };
}

export function JoinForm({ initialUsername, initialRoom, onJoin }: JoinFormProps) {
  const [username, setUsername] = useState(initialUsername);
  const [room, setRoom] = useState(initialRoom);
  const [touched, setTouched] = useState(false);
  const { rooms, error, locked } = useRooms();
  const id = useId();
  const userErr = validateUsername(username);
  const roomErr = validateRoom(room);

  const sorted = (rooms ?? []).slice().sort((a, b) => b.connections - a.connections || a.roomId.localeCompare(b.roomId));

  return (
    <main className="join" id="main" tabIndex={-1}>
      <form
        className="card join-card"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (!userErr && !roomErr) onJoin(username.trim(), room);
        }}
      >
        <h1>Join a room</h1>
        <p className="muted">Pick a display name and a room. Rooms are created when someone joins them.</p>

        <div className="field">
          <label htmlFor={`${id}-user`}>Display name</label>
          <input
            id={`${id}-user`}
            data-testid="username"
            autoComplete="nickname"
            maxLength={200}
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            aria-invalid={touched && !!userErr}
            aria-describedby={`${id}-user-err`}
          />
          <span id={`${id}-user-err`} className="field-err">
            {touched ? userErr : ''}
          </span>
        </div>

        <div className="field">
          <label htmlFor={`${id}-room`}>Room</label>
          <input
            id={`${id}-room`}
            data-testid="room"
            value={room}
            maxLength={128}
            autoCapitalize="none"
            spellCheck={false}
            onChange={(e) => setRoom(e.target.value.trim())}
            aria-invalid={touched && !!roomErr}
            aria-describedby={`${id}-room-hint ${id}-room-err`}
          />
          <span id={`${id}-room-hint`} className="field-hint">
            1–128 letters, digits and - _ . : @
          </span>
          <span id={`${id}-room-err`} className="field-err">
            {touched ? roomErr : ''}
          </span>
        </div>

        <TokenField />

        <button type="submit" className="btn btn-primary btn-block" data-testid="join">
          Join {room && !roomErr ? `#${room}` : ''}
        </button>

        <div className="rooms">
          <h2>Active rooms</h2>
          {rooms === null && !error && <p className="muted small">Loading…</p>}
          {error && locked && (
            <p className="muted small" data-testid="rooms-locked">
              This server has sign-in: enter your access token to see its rooms.
            </p>
          )}
          {error && !locked && <p className="muted small">Could not load the room list; you can still type a room name.</p>}
          {rooms !== null && sorted.length === 0 && <p className="muted small">No active rooms yet — start one.</p>}
          <ul className="room-list">
            {sorted.slice(0, 50).map((r) => (
              <li key={r.roomId}>
                <button
                  type="button"
                  className={`room-chip${r.roomId === room ? ' selected' : ''}`}
                  aria-pressed={r.roomId === room}
                  onClick={() => setRoom(r.roomId)}
                >
                  <span className="room-name">#{r.roomId}</span>
                  <span className="room-counts">
                    {formatInt(r.users)} {r.users === 1 ? 'user' : 'users'} · {formatInt(r.connections)} conn
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </div>
      </form>
    </main>
  );
}
