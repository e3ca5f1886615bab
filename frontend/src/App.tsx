import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from 'react';
import { ChatView } from './components/ChatView';
import { ConnIndicator } from './components/ConnIndicator';
import { JoinForm } from './components/JoinForm';
import { RoomsJoinForm, RoomsView } from './components/RoomsView';
import { useAnalytics } from './hooks/useAnalytics';
import { useChat, type Session } from './hooks/useChat';
import { useRoomAdmin } from './hooks/useRoomAdmin';
import { useV2Chat, type V2Session } from './hooks/useV2Chat';
import { safeStorage, server, stableUserId } from './lib/config';
import { validateRoom, validateUsername } from './lib/text';
import { tokenIdentity } from './lib/token';

// the charts (uPlot) load with the Analytics page, not with the chat
const AnalyticsView = lazy(() => import('./components/AnalyticsView').then((m) => ({ default: m.AnalyticsView })));

type Route = 'chat' | 'rooms' | 'analytics';

function routeFromHash(hash: string): Route {
  const r = hash.replace(/^#\/?/, '').split(/[?/]/)[0];
  return r === 'analytics' ? 'analytics' : r === 'rooms' ? 'rooms' : 'chat';
}

function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => routeFromHash(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(routeFromHash(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** The user the page runs as: the token's, when it has one (the server names it so). */
function withToken(userId: string, username: string): { userId: string; username: string } {
  const who = tokenIdentity();
  return who ? { userId: who.userId, username: who.username ?? who.userId } : { userId, username };
}

function loadSession(userId: string): Session | null {
  try {
    const raw = window.sessionStorage.getItem('hubbub.session');
    if (!raw) return null;
    const s = JSON.parse(raw) as { username?: string; room?: string };
    if (typeof s.username !== 'string' || typeof s.room !== 'string') return null;
    if (validateUsername(s.username) || validateRoom(s.room)) return null;
    return { ...withToken(userId, s.username), room: s.room };
  } catch {
    return null;
  }
}

const V2_SESSION_KEY = 'hubbub.v2session';

function loadV2Session(userId: string): V2Session | null {
  try {
    const raw = window.sessionStorage.getItem(V2_SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as { username?: string; rooms?: unknown };
    if (typeof s.username !== 'string' || validateUsername(s.username) || !Array.isArray(s.rooms)) return null;
    const rooms = s.rooms.filter((r): r is string => typeof r === 'string' && !validateRoom(r));
    return { ...withToken(userId, s.username), rooms };
  } catch {
    return null;
  }
}

function saveV2Session(s: V2Session | null): void {
  try {
    if (s) window.sessionStorage.setItem(V2_SESSION_KEY, JSON.stringify({ username: s.username, rooms: s.rooms }));
    else window.sessionStorage.removeItem(V2_SESSION_KEY);
  } catch {
    /* ignore */
  }
}

export function App() {
  const route = useRoute();
  const userId = useMemo(() => stableUserId(), []);
  const [session, setSession] = useState<Session | null>(() => loadSession(userId));
  const chat = useChat(session);
  const analytics = useAnalytics(route === 'analytics');
  const store = safeStorage();
  const [v2session, setV2Session] = useState<V2Session | null>(() => loadV2Session(userId));
  // the room list as it changes (rooms added or left) survives a reload, without a new connection
  const onRoomsChange = useCallback((rooms: string[]) => {
    const s = loadV2Session(userId);
    if (s) saveV2Session({ ...s, rooms });
  }, [userId]);
  const v2 = useV2Chat(v2session, onRoomsChange);
  // rooms management (and our rooms listed by the server) for the user a token names
  const rooms = useRoomAdmin(v2, v2session ? (tokenIdentity()?.userId ?? null) : null);

  useEffect(() => {
    document.title =
      route === 'analytics'
        ? 'Analytics · hubbub'
        : route === 'rooms'
          ? v2.active
            ? `#${v2.active} · hubbub`
            : 'Rooms · hubbub'
          : session
            ? `#${session.room} · hubbub`
            : 'hubbub';
  }, [route, session, v2.active]);

  const joinV2 = useCallback(
    (username: string, rooms: string[]) => {
      try {
        store?.setItem('hubbub.username', username);
        store?.setItem('hubbub.v2rooms', rooms.join(', '));
      } catch {
        /* ignore */
      }
      const s = { ...withToken(userId, username), rooms };
      saveV2Session(s);
      setV2Session(s);
    },
    [store, userId],
  );
  const leaveV2 = useCallback(() => {
    saveV2Session(null);
    setV2Session(null);
  }, []);

  const join = useCallback(
    (username: string, room: string) => {
      try {
        store?.setItem('hubbub.username', username);
        store?.setItem('hubbub.room', room);
        window.sessionStorage.setItem('hubbub.session', JSON.stringify({ username, room }));
      } catch {
        /* ignore */
      }
      setSession({ ...withToken(userId, username), room });
    },
    [store, userId],
  );
  const leave = useCallback(() => {
    try {
      window.sessionStorage.removeItem('hubbub.session');
    } catch {
      /* ignore */
    }
    setSession(null);
  }, []);

  return (
    <div className="app">
      <a className="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">◉</span>
          <span className="brand-name">hubbub</span>
          <span className="server-label muted small" title="Server">
            {server().label}
          </span>
        </div>
        <nav aria-label="Main">
          <a href="#/chat" className={route === 'chat' ? 'tab active' : 'tab'} aria-current={route === 'chat' ? 'page' : undefined}>
            Chat
          </a>
          <a href="#/rooms" className={route === 'rooms' ? 'tab active' : 'tab'} aria-current={route === 'rooms' ? 'page' : undefined} data-testid="tab-rooms">
            Rooms
          </a>
          <a href="#/analytics" className={route === 'analytics' ? 'tab active' : 'tab'} aria-current={route === 'analytics' ? 'page' : undefined}>
            Analytics
          </a>
        </nav>
        <div className="topbar-right">{session && route === 'analytics' && <ConnIndicator info={chat.status} />}</div>
      </header>
      {route === 'analytics' ? (
        <Suspense fallback={<main className="analytics" id="main" tabIndex={-1} aria-busy="true" />}>
          <AnalyticsView state={analytics} />
        </Suspense>
      ) : route === 'rooms' ? (
        v2session ? (
          <RoomsView chat={v2} admin={rooms} username={v2session.username} onLeave={leaveV2} />
        ) : (
          <RoomsJoinForm initialUsername={store?.getItem('hubbub.username') ?? ''} initialRooms={store?.getItem('hubbub.v2rooms') ?? 'global, random'} onJoin={joinV2} />
        )
      ) : session ? (
        <ChatView session={session} chat={chat} onLeave={leave} />
      ) : (
        <JoinForm
          initialUsername={store?.getItem('hubbub.username') ?? ''}
          initialRoom={store?.getItem('hubbub.room') ?? 'global'}
          onJoin={join}
        />
      )}
    </div>
  );
}
