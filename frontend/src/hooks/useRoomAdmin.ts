import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { roomsApi, RoomsApiError, type NewRoom, type Room, type RoomRole, type RoomsApi, type Visibility } from '../lib/roomsApi';
import type { V2ChatState } from './useV2Chat';

/** What the Rooms API told us about a room: its name, and our role in it. */
export interface RoomInfo {
  name: string;
  visibility: Visibility;
  role: RoomRole;
}

export interface RoomAdmin {
  /** The user the token names (null: no token, nothing to manage). */
  me: string | null;
  /** Rooms the API named to us (made here, or listed by `GET /api/users/{me}/rooms`). */
  info: ReadonlyMap<string, RoomInfo>;
  /** A request is under way. */
  busy: boolean;
  /** What the last request did ("Invited bob to Team"), for the panel. */
  done: string;
  /** `GET /api/users/{me}/rooms`: not yet, answered, or the code it failed with. */
  listed: 'pending' | 'ok' | string;
  create: (room: NewRoom) => Promise<boolean>;
  invite: (roomId: string, userId: string) => Promise<boolean>;
  leave: (roomId: string) => Promise<boolean>;
  remove: (roomId: string) => Promise<boolean>;
  message: (userId: string) => Promise<boolean>;
}

/** Our rooms are listed again this often (an invitation comes with no frame). */
export const ROOMS_REFRESH_MS = 30_000;

const visible = () => typeof document === 'undefined' || document.visibilityState !== 'hidden';

/**
 * Rooms management for the v2 view, with the tab's token: make rooms, invite, leave,
 * delete, direct messages; each room made or joined is subscribed (`chat.addRoom`), and
 * refusals go to the error bar with the server's code and message. Once connected, the
 * rooms the server lists for `me` are added to the view (and again every
 * ROOMS_REFRESH_MS; a room is added once per page, so one closed stays closed).
 */
export function useRoomAdmin(chat: V2ChatState, me: string | null, api?: RoomsApi): RoomAdmin {
  const http = chat.http;
  const rooms = useMemo(() => api ?? roomsApi(http), [api, http]);
  const chatRef = useRef(chat);
  chatRef.current = chat;
  const [info, setInfo] = useState<ReadonlyMap<string, RoomInfo>>(new Map());
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const [listed, setListed] = useState<RoomAdmin['listed']>('pending');
  const offered = useRef(new Set<string>());

  const learn = useCallback((roomId: string, i: RoomInfo | null) => {
    setInfo((m) => {
      const next = new Map(m);
      if (i) next.set(roomId, i);
      else next.delete(roomId);
      return next;
    });
  }, []);

  useEffect(() => {
    offered.current = new Set();
    setInfo(new Map());
    setListed('pending');
    setDone('');
  }, [me]);

  // our rooms, once connected (hello) and now and then
  const ready = !!me && chat.state.hello != null;
  useEffect(() => {
    if (!ready || !me) return;
    let live = true;
    const list = async () => {
      if (!visible()) return;
      try {
        const mine = await rooms.userRooms(me);
        if (!live) return;
        setInfo((m) => {
          const next = new Map(m);
          for (const r of mine) next.set(r.roomId, { name: r.name, visibility: r.visibility, role: r.role });
          return next;
        });
        for (const r of mine) {
          if (offered.current.has(r.roomId)) continue;
          offered.current.add(r.roomId);
          chatRef.current.addRoom(r.roomId, false);
        }
        setListed('ok');
      } catch (e) {
        if (live) setListed(e instanceof RoomsApiError ? e.code : 'error');
      }
    };
    void list();
    const t = setInterval(() => void list(), ROOMS_REFRESH_MS);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [ready, me, rooms]);

  /** One request at a time; a refusal goes to the error bar. */
  const run = useCallback(async (what: () => Promise<string>, undo?: () => void): Promise<boolean> => {
    setBusy(true);
    try {
      setDone(await what());
      return true;
    } catch (e) {
      undo?.();
      const err = e instanceof RoomsApiError ? e : new RoomsApiError('error', String(e));
      chatRef.current.notify(err.code, err.message);
      setDone('');
      return false;
    } finally {
      setBusy(false);
    }
  }, []);

  const opened = useCallback(
    (room: Room) => {
      const role = room.members.find((m) => m.userId === me)?.role ?? (room.owner === me ? 'admin' : 'member');
      learn(room.roomId, { name: room.name, visibility: room.visibility, role });
      offered.current.add(room.roomId);
      const c = chatRef.current;
      if (c.addRoom(room.roomId)) return;
      if (c.state.rooms.some((r) => r.roomId === room.roomId)) c.setActive(room.roomId);
      else c.notify('too_many_rooms', `At most ${c.state.hello?.limits.subscriptions ?? 'so many'} rooms per connection: close one to open ${room.name}.`);
    },
    [me, learn],
  );
  const nameOf = useCallback((roomId: string) => info.get(roomId)?.name ?? `#${roomId}`, [info]);

  const create = useCallback(
    (n: NewRoom) =>
      run(async () => {
        const room = await rooms.createRoom(n);
        opened(room);
        return `Created ${room.name}.`;
      }),
    [rooms, run, opened],
  );
  const invite = useCallback(
    (roomId: string, userId: string) =>
      run(async () => {
        await rooms.inviteMember(roomId, userId);
        return `Invited ${userId} to ${nameOf(roomId)}.`;
      }),
    [rooms, run, nameOf],
  );
  const leave = useCallback(
    (roomId: string) => {
      if (!me) return Promise.resolve(false);
      chatRef.current.expectEnd(roomId);
      return run(
        async () => {
          await rooms.removeMember(roomId, me);
          const name = nameOf(roomId);
          learn(roomId, null);
          chatRef.current.closeRoom(roomId);
          return `You left ${name}.`;
        },
        () => chatRef.current.expectEnd(roomId, false),
      );
    },
    [me, rooms, run, nameOf, learn],
  );
  const remove = useCallback(
    (roomId: string) => {
      chatRef.current.expectEnd(roomId);
      return run(
        async () => {
          await rooms.deleteRoom(roomId);
          const name = nameOf(roomId);
          learn(roomId, null);
          chatRef.current.closeRoom(roomId);
          return `Deleted ${name}.`;
        },
        () => chatRef.current.expectEnd(roomId, false),
      );
    },
    [rooms, run, nameOf, learn],
  );
  const message = useCallback(
    (userId: string) => {
      if (!me) return Promise.resolve(false);
      return run(async () => {
        const room = await rooms.directMessage(me, userId);
        opened(room);
        return `Direct messages with ${userId}.`;
      });
    },
    [me, rooms, run, opened],
  );

  return { me, info, busy, done, listed, create, invite, leave, remove, message };
}
