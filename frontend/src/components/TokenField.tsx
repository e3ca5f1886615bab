import { useId, useState } from 'react';
import { getToken, setToken } from '../lib/token';

/**
 * The optional access token of a server with token auth (a JWT or an original-system
 * token). Saved for this tab as it is typed; sent on the WebSocket URL and as
 * `Authorization: Bearer` on API reads. With auth on, the server takes the name from the
 * token, not from the display name field.
 */
export function TokenField() {
  const [token, setValue] = useState(() => getToken() ?? '');
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={`${id}-token`}>Access token (optional)</label>
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
        }}
        aria-describedby={`${id}-token-hint`}
      />
      <span id={`${id}-token-hint`} className="field-hint">
        Only for a server with sign-in: paste the token you were given. It names you.
      </span>
    </div>
  );
}
