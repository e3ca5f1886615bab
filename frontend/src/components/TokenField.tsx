import { useId, useState } from 'react';
import { signIn, SignInError, type SignedIn } from '../lib/accounts';
import { server } from '../lib/config';
import { getToken, setToken } from '../lib/token';

/**
 * Sign-in for a server with token auth: log in or sign up with an account (the server's
 * own, §4.4 of docs/PROTOCOL.md), or paste a token issued elsewhere (a JWT or an
 * original-system token). The token is kept for this tab; it is sent on the WebSocket URL
 * and as `Authorization: Bearer` on API reads, and it names the user (the display name
 * field is then not used by the server).
 */
export function TokenField() {
  const [token, setValue] = useState(() => getToken() ?? '');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [who, setWho] = useState<SignedIn | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const id = useId();

  const submit = async (action: 'login' | 'signup') => {
    setPending(true);
    setError(null);
    try {
      const s = await signIn(server().http, action, username.trim(), password);
      setToken(s.token);
      setValue(s.token);
      setWho(s);
      setPassword('');
    } catch (e) {
      setError(e instanceof SignInError ? e.message : String(e));
    } finally {
      setPending(false);
    }
  };

  return (
    <fieldset className="field signin">
      <legend>Sign in (for a server with accounts or tokens)</legend>
      {who ? (
        <p className="muted small" data-testid="signed-in">
          Signed in as <strong>{who.username}</strong> until {new Date(who.expiresAt).toLocaleString()}.
        </p>
      ) : (
        <div className="signin-account">
          <label htmlFor={`${id}-acct`}>Username</label>
          <input id={`${id}-acct`} data-testid="account-username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
          <label htmlFor={`${id}-pw`}>Password</label>
          <input id={`${id}-pw`} data-testid="account-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          <div className="signin-buttons">
            <button type="button" className="btn" data-testid="login" disabled={pending || !username || !password} onClick={() => void submit('login')}>
              Log in
            </button>
            <button type="button" className="btn" data-testid="signup" disabled={pending || !username || !password} onClick={() => void submit('signup')}>
              Sign up
            </button>
          </div>
          <span className="field-err" role="alert" data-testid="signin-error">
            {error ?? ''}
          </span>
        </div>
      )}
      <label htmlFor={`${id}-token`}>Access token</label>
      <input
        id={`${id}-token`}
        data-testid="token"
        type="password"
        autoComplete="off"
        spellCheck={false}
        value={token}
        onChange={(e) => {
          setValue(e.target.value);
          setToken(e.target.value);
          setWho(null);
        }}
        aria-describedby={`${id}-token-hint`}
      />
      <span id={`${id}-token-hint`} className="field-hint">
        Filled in by signing in, or paste the token you were given. It names you.
      </span>
    </fieldset>
  );
}
