import { useCallback, useEffect, useMemo, useState } from 'react';
import { AnalyticsView } from './components/AnalyticsView';
import { ChatView } from './components/ChatView';
import { ConnIndicator } from './components/ConnIndicator';
import { JoinForm } from './components/JoinForm';
import { useAnalytics } from './hooks/useAnalytics';
import { useChat, type Session } from './hooks/useChat';
import { safeStorage, server, stableUserId } from './lib/config';
import { validateRoom, validateUsername } from './lib/text';

type Route = 'chat' | 'analytics';

function routeFromHash(hash: string): Route {
  return hash.replace(/^#\/?/, '').split(/[?/]/)[0] === 'analytics' ? 'analytics' : 'chat';
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

function loadSession(userId: string): Session | null {
  try {
    const raw = window.sessionStorage.getItem('hubbub.session');
    if (!raw) return null;
    const s = JSON.parse(raw) as { username?: string; room?: string };
    if (typeof s.username !== 'string' || typeof s.room !== 'string') return null;
    if (validateUsername(s.username) || validateRoom(s.room)) return null;
    return { userId, username: s.username, room: s.room };
  } catch {
    return null;
  }
}

export function App() {
  const route = useRoute();
  const userId = useMemo(() => stableUserId(), []);
  const [session, setSession] = useState<Session | null>(() => loadSession(userId));
  const chat = useChat(session);
  const analytics = useAnalytics(route === 'analytics');
  const store = safeStorage();

  useEffect(() => {
    document.title = route === 'analytics' ? 'Analytics · hubbub' : session ? `#${session.room} · hubbub` : 'hubbub';
  }, [route, session]);

  const join = useCallback(
    (username: string, room: string) => {
      try {
        store?.setItem('hubbub.username', username);
        store?.setItem('hubbub.room', room);
        window.sessionStorage.setItem('hubbub.session', JSON.stringify({ username, room }));
      } catch {
        /* ignore */
      }
      setSession({ userId, username, room });
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
          <a href="#/analytics" className={route === 'analytics' ? 'tab active' : 'tab'} aria-current={route === 'analytics' ? 'page' : undefined}>
            Analytics
          </a>
        </nav>
        <div className="topbar-right">{session && route === 'analytics' && <ConnIndicator info={chat.status} />}</div>
      </header>
      {route === 'analytics' ? (
        <AnalyticsView state={analytics} />
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
